"""ModelService: a vLLM server for one model on one instance type, sized and checked from the catalog."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from aws_cdk import Duration

from .. import helm
from ..catalog import InstanceSpec, lookup
from ..errors import Problems
from ..guards import (
    expect_all,
    expect_bool,
    expect_duration,
    expect_enum,
    expect_instance,
    expect_int,
    expect_number,
    expect_str,
    expect_str_list,
)
from ..k8s.model_service import (
    AutoscalingValues,
    KedaPrometheusValues,
    ModelServiceValues,
    S3VolumeValues,
    ServerNetworkValues,
)
from ..kube_names import check_dns_label, check_dns_subdomain
from .benchmark import BenchmarkResult, check_service_benchmark
from .cold_start import COMPILED_DIR, CompileCache, compiled_key, node_cache_gib
from .exposure import Exposure
from .fit import (
    check_fit,
    default_tensor_parallel,
    devices_for,
    pod_requests,
    shm_size,
    weight_gib,
)
from .metrics import PROMETHEUS_URL, QUEUE_METRIC, VLLM_QUEUE_SERIES
from .pools import INFERENCE_FAMILIES, POOL_LABEL
from .quantization import Quantization
from .slo import ServiceLevelObjective

VLLM_NVIDIA_IMAGE = "vllm/vllm-openai:v0.11.0"
# The Neuron DLC with vLLM for Inferentia2 and Trainium (Neuron SDK 2.28).
# Both images start whatever command they are given (the Neuron DLC's entrypoint runs its arguments as a
# program; aws-neuron/deep-learning-containers vllm_entrypoint.py), so the server command is explicit.
VLLM_COMMAND = ("vllm", "serve")
# vLLM on Neuron needs --num-gpu-blocks-override equal to --max-num-seqs when prefix caching and chunked
# prefill are off (AWS Neuron docs, "vLLM user guide", known issues, SDK 2.28); 8 concurrent sequences
# keep the compiled graphs small.
NEURON_MAX_NUM_SEQS = 8
# The Neuron runtime locks its host buffers (Neuron docs' Kubernetes examples add IPC_LOCK).
NEURON_CAPABILITIES = ("IPC_LOCK",)
VLLM_NEURON_IMAGE = "public.ecr.aws/neuron/pytorch-inference-vllm-neuronx:0.13.0-neuronx-py312-sdk2.28.0-ubuntu24.04"
MODEL_DIR = "/models"
CACHE_DIR = "/cache"  # node-local NVMe (RAID0 ephemeral storage) for downloaded weights and compiled graphs
DTYPE_BYTES = (0.5, 1.0, 2.0, 4.0)  # int4, int8/fp8, bf16/fp16, fp32
NAME_MAX = 40  # room for the suffixes of the objects named after the service (e.g. <name>-weights)
# vLLM flags eks-ml sets from the props; an extra_args copy would override them (argparse keeps the last),
# and the pod's sizing (accelerators per replica) follows tensor_parallel, not the override.
MANAGED_VLLM_FLAGS = (
    "--model",
    "--served-model-name",
    "--port",
    "--tensor-parallel-size",
    "-tp",
    "--max-model-len",
    "--max-num-seqs",
    "--num-gpu-blocks-override",
    "--quantization",
    "-q",
)
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


@dataclass(frozen=True, kw_only=True)
class S3Weights:
    """Weights in S3, mounted read-only with Mountpoint for Amazon S3 (no copy, lazy reads).

    node_cache: keep what Mountpoint reads in its local cache on the node (instance-store NVMe where the
        type has it), shared by the service's replicas on that node, so a second replica or a restarted
        container reads the node's copy (eks_ml.inference.cold_start). Default: True.
    """

    bucket: str
    prefix: str = ""
    node_cache: bool = True


@dataclass(frozen=True, kw_only=True)
class ClaimWeights:
    """Weights on an existing PersistentVolumeClaim of the namespace (e.g. FSx or EFS)."""

    claim_name: str
    path: str = ""


@dataclass(frozen=True, kw_only=True)
class HubWeights:
    """Weights downloaded at start-up from the Hugging Face Hub into node-local NVMe.

    token_secret: a Secret in the namespace with key ``token``, for gated models.
    """

    model_id: str
    token_secret: str | None = None


Weights = S3Weights | ClaimWeights | HubWeights


SCALED_TO_ZERO_WARNING = (
    "model service {name} may scale to zero (min_replicas=0 with Autoscaler.KEDA): with no replica there is no "
    "vLLM queue series, so nothing scales it back up and its load balancer answers 503 until something else "
    "raises the replica count; keep min_replicas >= 1 for interactive traffic, or use a QueueWorker"
)


class Autoscaler(StrEnum):
    """What scales a model service on its queue depth: a HorizontalPodAutoscaler reading it through
    prometheus-adapter (HPA), or KEDA's prometheus trigger reading the same series from the same Prometheus
    (KEDA), which also allows min_replicas=0."""

    HPA = "hpa"
    KEDA = "keda"


@dataclass(frozen=True, kw_only=True)
class ModelServiceProps:
    """One served model.

    instance_type: an inference type (g5, g6, g6e, inf2). Karpenter launches it from a matching pool.
    parameters_billions / bytes_per_parameter: the model's size; checked against the accelerator memory
        with room for the KV cache. Default bytes: the quantization's (1 for fp8 and int8, 0.5 for int4),
        else 2 (bf16).
    quantization: how the weights are stored (eks_ml.inference.quantization.Quantization); sets the bytes
        per parameter and, for FP8_DYNAMIC, vLLM's --quantization. Default: none (bf16/fp16).
    tensor_parallel: Default: every GPU of the instance, or every NeuronCore.
    min_replicas / max_replicas: Default: 1 to 4. queue_target: waiting requests per replica that
        trigger a scale-up. Default: 4. cpu_target: fallback CPU utilisation. Default: 80%.
    load_timeout: how long a replica may take to load the model before it counts as failed; also the
        scale-down stabilisation window. Default: 20 minutes (45 is typical when Neuron compiles).
    public: internet-facing load balancer (a bool). Default: internal. A public endpoint needs
        certificate_arn and either allowed_cidrs or allow_any_source=True (eks_ml.inference.exposure).
    certificate_arn: ACM certificate (in the cluster's region) for an HTTPS-only listener on 443.
        Default: none (internal endpoints then listen on HTTP 80).
    allowed_cidrs: client CIDR blocks the load balancer accepts. Default: none (internal: the VPC's
        networks; public: refused unless allow_any_source=True).
    allow_any_source: acknowledge that a public endpoint accepts connections from any address although
        vLLM does not authenticate requests. Default: False.
    benchmark: what the service sustains per replica, measured (eks_ml.inference.benchmark.load_benchmark of
        the benchmark Job's result file); sets queue_target from it and the plan's cost per million tokens.
        Default: none (queue_target as given).
    slo: the service's latency and availability objectives (eks_ml.inference.slo.ServiceLevelObjective);
        the observability add-on's Prometheus backend alerts when their error budgets burn too fast.
        Default: 99% of requests under 30 s end to end and 99.5% without a server error, over 30 days.
    autoscaler: Autoscaler.HPA or Autoscaler.KEDA (installs KEDA on the cluster; min_replicas may then be 0).
        At zero replicas no server exports the queue series, so nothing scales the service back up by itself
        and the load balancer answers 503: synth warns; see the README. Default: Autoscaler.HPA.
    compile_cache: a claim that keeps the Neuron compiled model across restarts and replicas
        (eks_ml.inference.cold_start.CompileCache); Neuron services only. Default: none (each pod compiles
        into node-local scratch).
    """

    name: str
    instance_type: str
    weights: Weights
    parameters_billions: float
    bytes_per_parameter: float | None = None
    quantization: Quantization | None = None
    tensor_parallel: int | None = None
    max_model_len: int = 8192
    min_replicas: int = 1
    max_replicas: int = 4
    queue_target: int = 4
    cpu_target: int = 80
    load_timeout: Duration = field(default_factory=lambda: Duration.minutes(20))
    public: bool = False
    certificate_arn: str | None = None
    allowed_cidrs: Sequence[str] = ()
    allow_any_source: bool = False
    image: str | None = None
    extra_args: Sequence[str] = ()
    slo: ServiceLevelObjective = field(default_factory=ServiceLevelObjective)
    benchmark: BenchmarkResult | None = None
    autoscaler: Autoscaler = Autoscaler.HPA
    compile_cache: CompileCache | None = None

    def spec(self) -> InstanceSpec:
        return lookup(self.instance_type, field="instance_type")

    def exposure(self) -> Exposure:
        return Exposure(self.public, self.certificate_arn, self.allowed_cidrs, self.allow_any_source)

    @property
    def resolved_bytes_per_parameter(self) -> float:
        if self.bytes_per_parameter is not None:
            return self.bytes_per_parameter
        return self.quantization.bytes_per_parameter if self.quantization is not None else 2.0

    @property
    def weights_gib(self) -> float:
        """The size of the served weights, at the quantization's bytes per parameter."""
        return weight_gib(self.parameters_billions, self.resolved_bytes_per_parameter)

    @property
    def resolved_queue_target(self) -> int:
        """Waiting requests per replica the HPA aims at: the benchmark's, or queue_target."""
        return self.benchmark.sustainable(self.slo).queue_target if self.benchmark else self.queue_target

    def resolved_tensor_parallel(self, spec: InstanceSpec) -> int:
        return self.tensor_parallel if self.tensor_parallel is not None else default_tensor_parallel(spec)

    def _check_shapes(self, field: str, problems: Problems) -> bool:
        return expect_all(
            expect_str(self.name, f"{field}.name", problems),
            expect_str(self.instance_type, f"{field}.instance_type", problems),
            expect_instance(
                self.weights,
                (S3Weights, ClaimWeights, HubWeights),
                f"{field}.weights",
                problems,
                fix="pass HubWeights(model_id=...), S3Weights(bucket=...) or ClaimWeights(claim_name=...)",
            )
            and self._check_weight_types(f"{field}.weights", problems),
            expect_number(self.parameters_billions, f"{field}.parameters_billions", problems),
            self.bytes_per_parameter is None
            or expect_number(self.bytes_per_parameter, f"{field}.bytes_per_parameter", problems),
            self.quantization is None
            or expect_enum(self.quantization, Quantization, f"{field}.quantization", problems),
            self.tensor_parallel is None or expect_int(self.tensor_parallel, f"{field}.tensor_parallel", problems),
            expect_int(self.max_model_len, f"{field}.max_model_len", problems),
            expect_int(self.min_replicas, f"{field}.min_replicas", problems),
            expect_int(self.max_replicas, f"{field}.max_replicas", problems),
            expect_int(self.queue_target, f"{field}.queue_target", problems),
            expect_int(self.cpu_target, f"{field}.cpu_target", problems),
            expect_duration(self.load_timeout, f"{field}.load_timeout", problems),
            expect_bool(self.public, f"{field}.public", problems),
            expect_bool(self.allow_any_source, f"{field}.allow_any_source", problems),
            expect_str(self.image, f"{field}.image", problems, optional=True),
            expect_str_list(self.extra_args, f"{field}.extra_args", problems),
            expect_instance(
                self.slo, ServiceLevelObjective, f"{field}.slo", problems, fix="pass ServiceLevelObjective(...)"
            ),
            self.benchmark is None
            or expect_instance(
                self.benchmark, BenchmarkResult, f"{field}.benchmark", problems, fix="pass load_benchmark(path)"
            ),
            expect_enum(self.autoscaler, Autoscaler, f"{field}.autoscaler", problems),
            self.compile_cache is None
            or expect_instance(
                self.compile_cache,
                CompileCache,
                f"{field}.compile_cache",
                problems,
                fix="pass CompileCache(claim_name=...) or None",
            ),
        )

    def _check_weight_types(self, field: str, problems: Problems) -> bool:
        weights = self.weights
        if isinstance(weights, S3Weights):
            return expect_all(
                expect_str(weights.bucket, f"{field}.bucket", problems),
                isinstance(weights.prefix, str) or expect_str(weights.prefix, f"{field}.prefix", problems),
                expect_bool(weights.node_cache, f"{field}.node_cache", problems),
            )
        if isinstance(weights, ClaimWeights):
            return expect_all(
                expect_str(weights.claim_name, f"{field}.claim_name", problems),
                isinstance(weights.path, str) or expect_str(weights.path, f"{field}.path", problems),
            )
        return expect_all(
            expect_str(weights.model_id, f"{field}.model_id", problems),
            expect_str(weights.token_secret, f"{field}.token_secret", problems, optional=True),
        )

    def check(self, field: str, problems: Problems) -> bool:
        """Add the service's problems; False when its types are wrong (then nothing else may read it)."""
        if not self._check_shapes(field, problems):
            return False
        check_dns_label(self.name, f"{field}.name", problems, max_length=NAME_MAX)
        self._check_extra_args(field, problems)
        spec = None
        with problems.collecting():
            spec = lookup(self.instance_type, field=f"{field}.instance_type")
        families = {family for group in INFERENCE_FAMILIES.values() for family in group}
        if spec is not None and spec.family not in families:
            problems.add(
                f"{field}.instance_type",
                self.instance_type,
                f"an inference type of the {', '.join(sorted(families))} families",
                "serve on g5, g6, g6e or inf2; training types belong to TrainingCluster",
            )
            spec = None
        if spec is not None and self.quantization is not None:
            self.quantization.check(spec, self.bytes_per_parameter, field, problems)
        if self.resolved_bytes_per_parameter not in DTYPE_BYTES or self.parameters_billions <= 0:
            problems.add(
                f"{field}.model_size",
                {
                    "parameters_billions": self.parameters_billions,
                    "bytes_per_parameter": self.resolved_bytes_per_parameter,
                },
                "a positive parameter count and 0.5, 1, 2 or 4 bytes per parameter",
                "give the model's size, e.g. 8 billion parameters at 2 bytes (bf16)",
            )
        elif spec is not None:
            self._check_fit(spec, field, problems)
        least = 0 if self.autoscaler is Autoscaler.KEDA else 1
        if not least <= self.min_replicas <= self.max_replicas or self.max_replicas < 1:
            problems.add(
                f"{field}.replicas",
                {"min": self.min_replicas, "max": self.max_replicas},
                f"{least} <= min_replicas <= max_replicas (0 only with autoscaler=Autoscaler.KEDA)",
                "keep at least one replica warm (or scale to zero with Autoscaler.KEDA), and max_replicas >= 1",
            )
        if self.queue_target < 1 or not 1 <= self.cpu_target <= 100:
            problems.add(
                f"{field}.targets",
                {"queue_target": self.queue_target, "cpu_target": self.cpu_target},
                "queue_target >= 1 and cpu_target from 1 to 100",
                "use the defaults: 4 waiting requests per replica, 80% CPU",
            )
        minutes = self.load_timeout.to_minutes()
        if not 1 <= minutes <= 60:
            problems.add(
                f"{field}.load_timeout", f"{minutes} min", "1 to 60 minutes", "give the model time to load, not hours"
            )
        if self.max_model_len < 128:
            problems.add(f"{field}.max_model_len", self.max_model_len, "at least 128 tokens", "use e.g. 8192")
        self._check_weights(field, problems)
        self._check_compile_cache(spec, field, problems)
        self.exposure().check(field, problems)
        self.slo.check(f"{field}.slo", problems)
        if self.benchmark is not None and spec is not None and not problems.found:
            check_service_benchmark(
                self.benchmark,
                field=f"{field}.benchmark",
                instance_type=spec.name,
                tensor_parallel=self.resolved_tensor_parallel(spec),
                queue_target=self.queue_target,
                slo=self.slo,
                problems=problems,
            )
        return True

    def _check_compile_cache(self, spec: InstanceSpec | None, field: str, problems: Problems) -> None:
        if self.compile_cache is None:
            return
        self.compile_cache.check(f"{field}.compile_cache", problems)
        if spec is not None and not spec.is_neuron:
            problems.add(
                f"{field}.compile_cache",
                self.compile_cache.claim_name,
                "a compile cache only on a Neuron (inf2) service",
                "remove compile_cache: vLLM on NVIDIA GPUs does not compile ahead of serving",
            )

    def _check_extra_args(self, field: str, problems: Problems) -> None:
        for arg in self.extra_args:
            flag = arg.split("=", 1)[0]
            if flag.startswith("--"):  # vLLM reads --tensor_parallel_size as --tensor-parallel-size
                flag = "--" + flag[2:].replace("_", "-")
            if flag in MANAGED_VLLM_FLAGS:
                prop = {
                    "--tensor-parallel-size": "tensor_parallel",
                    "-tp": "tensor_parallel",
                    "--max-model-len": "max_model_len",
                    "--served-model-name": "name",
                    "--quantization": "quantization",
                    "-q": "quantization",
                }.get(flag)
                problems.add(
                    f"{field}.extra_args",
                    arg,
                    f"flags other than those eks-ml sets ({', '.join(MANAGED_VLLM_FLAGS)})",
                    f"set the prop {prop} instead" if prop else f"remove {flag}: eks-ml sets it",
                )

    def _check_fit(self, spec: InstanceSpec, field: str, problems: Problems) -> None:
        check_fit(
            spec,
            self.resolved_tensor_parallel(spec),
            self.parameters_billions,
            self.resolved_bytes_per_parameter,
            field,
            problems,
        )

    def _check_weights(self, field: str, problems: Problems) -> None:
        weights = self.weights
        if isinstance(weights, S3Weights):
            if not _BUCKET.match(weights.bucket):
                problems.add(
                    f"{field}.weights.bucket", weights.bucket, "an S3 bucket name", "give the bare bucket name"
                )
            if weights.prefix.startswith("/"):
                problems.add(f"{field}.weights.prefix", weights.prefix, "a key prefix", "drop the leading /")
        elif isinstance(weights, HubWeights):
            if weights.model_id.count("/") != 1:
                problems.add(
                    f"{field}.weights.model_id", weights.model_id, "an org/name Hub id", "use e.g. Qwen/Qwen3-8B"
                )
            if weights.token_secret is not None:
                check_dns_subdomain(weights.token_secret, f"{field}.weights.token_secret", problems)
        else:
            check_dns_subdomain(weights.claim_name, f"{field}.weights.claim_name", problems)

    def values(
        self,
        *,
        namespace: str,
        region: str,
        load_balancer_cidrs: Sequence[str],
        scraper_cidrs: Sequence[str] = (),
        pool: str | None = None,
    ) -> ModelServiceValues:
        """``load_balancer_cidrs``: the subnets the service's load balancer sends from; ``scraper_cidrs``:
        those of a metrics scraper outside the cluster. The server's NetworkPolicy admits both to its port."""
        spec = self.spec()
        tp = self.resolved_tensor_parallel(spec)
        devices = devices_for(spec, tp)
        accelerators = {spec.accelerator_resource: str(devices)}
        requests = pod_requests(spec, devices)
        model, volumes, mounts, env, s3 = self._weights(region, namespace)
        args = [
            "--model",
            model,
            "--served-model-name",
            self.name,
            "--port",
            "8000",
            "--tensor-parallel-size",
            str(tp),
            "--max-model-len",
            str(self.max_model_len),
            *(
                ["--max-num-seqs", str(NEURON_MAX_NUM_SEQS), "--num-gpu-blocks-override", str(NEURON_MAX_NUM_SEQS)]
                if spec.is_neuron
                else []
            ),
            *self._benchmark_args(spec),
            *(self.quantization.server_args if self.quantization is not None else []),
            *self.extra_args,
        ]
        image = self.image or (VLLM_NVIDIA_IMAGE if spec.is_nvidia else VLLM_NEURON_IMAGE)
        if spec.is_neuron and self.compile_cache is not None:
            self._add_compile_cache(self.compile_cache, image, args, volumes, mounts, env)
        node_selector = {"node.kubernetes.io/instance-type": spec.name}
        if pool:
            node_selector[POOL_LABEL] = pool
        load_seconds = int(self.load_timeout.to_seconds())
        return ModelServiceValues(
            name=self.name,
            namespace=namespace,
            image=image,
            command=list(VLLM_COMMAND),
            args=args,
            capabilities=list(NEURON_CAPABILITIES) if spec.is_neuron else [],
            env=env,
            node_selector=node_selector,
            tolerations=[{"key": spec.accelerator_resource, "operator": "Exists", "effect": "NoSchedule"}],
            requests=requests,
            limits=accelerators,
            shm_size=shm_size(spec, devices),
            volumes=volumes,
            volume_mounts=mounts,
            startup_failure_threshold=math.ceil(load_seconds / 10),
            termination_grace_seconds=120,
            autoscaling=AutoscalingValues(
                min_replicas=self.min_replicas,
                max_replicas=self.max_replicas,
                queue_metric=QUEUE_METRIC,
                queue_target=self.resolved_queue_target,
                cpu_target=self.cpu_target,
                scale_down_window_seconds=max(300, load_seconds),
                keda=(
                    KedaPrometheusValues(
                        server_address=PROMETHEUS_URL,
                        # vLLM labels its series with model_name = --served-model-name = the service name
                        # (vllm-project/vllm @ v0.11.0, vllm/v1/metrics/loggers.py).
                        query=f'sum({VLLM_QUEUE_SERIES}{{namespace="{namespace}",model_name="{self.name}"}})',
                    )
                    if self.autoscaler is Autoscaler.KEDA
                    else None
                ),
            ),
            ingress_annotations=self.exposure().annotations(),
            network=ServerNetworkValues(
                load_balancer_cidrs=list(load_balancer_cidrs),
                scraper_namespaces=[helm.PROMETHEUS.namespace],
                scraper_cidrs=list(scraper_cidrs),
                # Only Hub weights are fetched by the server itself; S3 and claim weights are mounted by
                # node-level CSI drivers, outside the pod's network policy.
                https_egress=isinstance(self.weights, HubWeights),
            ),
            s3_volume=s3,
            secret_env=(
                {"HF_TOKEN": (self.weights.token_secret, "token")}
                if isinstance(self.weights, HubWeights) and self.weights.token_secret
                else {}
            ),
        )

    def _benchmark_args(self, spec: InstanceSpec) -> list[str]:
        """Cap a GPU replica's concurrent sequences at the benchmark's sustainable concurrency: beyond it requests
        wait, so vLLM's waiting-requests metric, which the HPA reads, rises when the SLO is at risk. (On Neuron
        the compiled graphs already fix --max-num-seqs.)"""
        if self.benchmark is None or not spec.is_nvidia:
            return []
        return ["--max-num-seqs", str(max(1, math.floor(self.benchmark.sustainable(self.slo).concurrency)))]

    def _weights(
        self, region: str, namespace: str
    ) -> tuple[str, list[dict[str, object]], list[dict[str, object]], dict[str, str], S3VolumeValues | None]:
        cache: dict[str, object] = {"name": "cache", "emptyDir": {}}
        cache_mount: dict[str, object] = {"name": "cache", "mountPath": CACHE_DIR}
        env = {"HF_HOME": f"{CACHE_DIR}/huggingface", "NEURON_COMPILED_ARTIFACTS": f"{CACHE_DIR}/neuron"}
        weights = self.weights
        if isinstance(weights, HubWeights):
            return weights.model_id, [cache], [cache_mount], env, None
        claim = weights.claim_name if isinstance(weights, ClaimWeights) else f"{self.name}-weights"
        path = weights.path if isinstance(weights, ClaimWeights) else ""
        volume: dict[str, object] = {"name": "weights", "persistentVolumeClaim": {"claimName": claim, "readOnly": True}}
        mount: dict[str, object] = {"name": "weights", "mountPath": MODEL_DIR, "readOnly": True}
        s3 = (
            S3VolumeValues(
                bucket=weights.bucket,
                prefix=weights.prefix,
                region=region,
                cache_gib=(node_cache_gib(self.weights_gib) if weights.node_cache else None),
            )
            if isinstance(weights, S3Weights)
            else None
        )
        model = f"{MODEL_DIR}/{path}".rstrip("/")
        return model, [cache, volume], [cache_mount, mount], env, s3

    def _add_compile_cache(
        self,
        cache: CompileCache,
        image: str,
        args: Sequence[str],
        volumes: list[dict[str, object]],
        mounts: list[dict[str, object]],
        env: dict[str, str],
    ) -> None:
        """Mount the claim and point NEURON_COMPILED_ARTIFACTS at this configuration's directory on it."""
        volumes.append({"name": "compiled", "persistentVolumeClaim": {"claimName": cache.claim_name}})
        mounts.append({"name": "compiled", "mountPath": COMPILED_DIR})
        key = compiled_key(source=self._weights_source(), image=image, args=args)
        parts = (COMPILED_DIR, cache.path.strip("/"), self.name, key)
        env["NEURON_COMPILED_ARTIFACTS"] = "/".join(part for part in parts if part)

    def _weights_source(self) -> str:
        weights = self.weights
        if isinstance(weights, S3Weights):
            return f"s3://{weights.bucket}/{weights.prefix}"
        if isinstance(weights, ClaimWeights):
            return f"pvc://{weights.claim_name}/{weights.path}"
        return f"hub://{weights.model_id}"
