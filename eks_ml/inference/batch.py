"""Batch inference: an offline vLLM pass over JSONL prompts in S3, written back to S3, queued through Kueue.

Throughput over latency: no server, no load balancer, no autoscaler. One Indexed Job per batch, one input shard
per index, as many indexes at once as ``parallelism`` (and the Kueue quota) allow, on the same Karpenter pools
as the model services, Spot included. Kueue is installed on the inference cluster only when a batch job exists.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import cdk8s
from aws_cdk import Aws
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from constructs import Construct, IDependable

from .. import helm
from .._naming import pascal
from ..catalog import AcceleratorVendor, InstanceSpec, lookup
from ..cluster.pod_identity import associate, pod_identity_role
from ..cluster.system_nodes import SystemPlacement
from ..errors import Problems
from ..guards import expect_all, expect_instance, expect_int, expect_number, expect_str, expect_str_list
from ..k8s.batch_inference import CACHE_PATH, BatchInferenceChart, BatchJobValues
from ..k8s.kueue_queues import FlavorQuota, TrainingQueuesChart, TrainingQueuesValues
from ..kube_names import check_dns_label, check_dns_subdomain
from ..nag import PACK, acknowledge, acknowledge_inline_policy
from ..placement import ClusterModel
from ..placement.nodes import CAPACITY_TYPE_LABEL
from ..training.software import KUEUE_CONFIG, kueue_values
from .fit import check_fit, default_tensor_parallel, devices_for, pod_requests, shm_size
from .model_service import VLLM_NVIDIA_IMAGE, HubWeights, S3Weights
from .pools import CAPACITY_TYPES, INFERENCE_FAMILIES, POOL_LABEL, NodePoolProps

# Kueue on the inference cluster: the training cluster's controller settings without waitForPodsReady (a batch
# index is no gang: each pod runs alone, and a GPU node plus a vLLM image can take longer than its timeout to
# become Ready) and with only the Job integration (no JobSet or Trainer CRDs here).
BATCH_KUEUE_CONFIG: dict[str, Any] = {
    **{key: value for key, value in KUEUE_CONFIG.items() if key != "waitForPodsReady"},
    "integrations": {"frameworks": ["batch/job"]},
}
NAMESPACE = "batch"
QUEUE = "batch"
NAME_MAX = 40  # Indexed Job pods are named <job>-<index>-<suffix>; their hostname <job>-<index> must fit 63
SCRIPT = "batch_inference.py"
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_PREFIX = re.compile(r"^[A-Za-z0-9!_.*'()/-]+/$")


@dataclass(frozen=True, kw_only=True)
class S3Prefix:
    """Objects under ``s3://bucket/prefix`` (a folder-like key prefix ending in /)."""

    bucket: str
    prefix: str

    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def bucket_arn(self) -> str:
        return f"arn:{Aws.PARTITION}:s3:::{self.bucket}"

    def objects_arn(self) -> str:
        return f"{self.bucket_arn()}/{self.prefix}*"

    def overlaps(self, other: S3Prefix) -> bool:
        return self.bucket == other.bucket and (
            self.prefix.startswith(other.prefix) or other.prefix.startswith(self.prefix)
        )

    def check(self, field: str, problems: Problems) -> bool:
        if not expect_all(
            expect_str(self.bucket, f"{field}.bucket", problems), expect_str(self.prefix, f"{field}.prefix", problems)
        ):
            return False
        if not _BUCKET.match(self.bucket):
            problems.add(f"{field}.bucket", self.bucket, "an S3 bucket name", "give the bare bucket name, no s3://")
        if not _PREFIX.match(self.prefix) or self.prefix.startswith("/"):
            problems.add(
                f"{field}.prefix",
                self.prefix,
                "a key prefix ending in / without a leading / (e.g. prompts/2026-11/)",
                "name the folder the job reads or writes; the whole bucket is never granted",
            )
        return True


@dataclass(frozen=True, kw_only=True)
class BatchInferenceJobProps:
    """One offline pass of a model over every ``*.jsonl`` file under ``input`` (lines ``{"prompt": ..., "id":
    ...}``), writing ``shard-<i>/<file>-<chunk>.jsonl`` and a ``shard-<i>/_SUCCESS`` marker under ``output``.

    instance_type: an NVIDIA inference type (g5, g6, g6e) some pool may launch; each index takes
        ``tensor_parallel`` of its GPUs. Sized and checked like ModelServiceProps (eks_ml.inference.fit).
    model: HubWeights (downloaded at start) or S3Weights (copied from S3 to the node first).
    shards: indexes of the Job; input files are dealt to them round-robin. Default: 4.
    parallelism: indexes running at once. Default: all of them (Kueue admits what the quota allows).
    retries_per_index: failed attempts of one shard before it is given up (backoffLimitPerIndex); Spot
        reclaims and drains do not count. Default: 3.
    capacity_types: ("spot",) runs only on Spot nodes (("on-demand",) only on On-Demand ones); the default,
        both, lets Karpenter take Spot when it can. The pool must allow them (the cluster model checks it).
    max_tokens / temperature: sampling settings for every prompt. Default: 512, 0 (greedy).
    chunk_size: prompts per output object, the unit a resumed shard skips. Default: 256.
    """

    name: str
    instance_type: str
    model: HubWeights | S3Weights
    parameters_billions: float
    input: S3Prefix
    output: S3Prefix
    bytes_per_parameter: float = 2.0
    tensor_parallel: int | None = None
    max_model_len: int = 8192
    shards: int = 4
    parallelism: int | None = None
    retries_per_index: int = 3
    capacity_types: Sequence[str] = CAPACITY_TYPES
    max_tokens: int = 512
    temperature: float = 0.0
    chunk_size: int = 256
    image: str | None = None

    def spec(self) -> InstanceSpec:
        return lookup(self.instance_type, field="instance_type")

    def resolved_tensor_parallel(self, spec: InstanceSpec) -> int:
        return self.tensor_parallel if self.tensor_parallel is not None else default_tensor_parallel(spec)

    def service_account(self) -> str:
        return f"batch-{self.name}"

    def capacity_selector(self) -> dict[str, str]:
        """The pods' capacity-type selector: one type pins it; both leave the choice to Karpenter (Spot first)."""
        types = tuple(self.capacity_types)
        return {CAPACITY_TYPE_LABEL: types[0]} if len(types) == 1 else {}

    def _check_shapes(self, field: str, problems: Problems) -> bool:
        return expect_all(
            expect_str(self.name, f"{field}.name", problems),
            expect_str(self.instance_type, f"{field}.instance_type", problems),
            expect_instance(
                self.model,
                (HubWeights, S3Weights),
                f"{field}.model",
                problems,
                fix="pass HubWeights(model_id=...) or S3Weights(bucket=..., prefix=...)",
            ),
            expect_number(self.parameters_billions, f"{field}.parameters_billions", problems),
            expect_number(self.bytes_per_parameter, f"{field}.bytes_per_parameter", problems),
            expect_instance(self.input, S3Prefix, f"{field}.input", problems, fix="pass S3Prefix(bucket=, prefix=)")
            and self.input.check(f"{field}.input", problems),
            expect_instance(self.output, S3Prefix, f"{field}.output", problems, fix="pass S3Prefix(bucket=, prefix=)")
            and self.output.check(f"{field}.output", problems),
            self.tensor_parallel is None or expect_int(self.tensor_parallel, f"{field}.tensor_parallel", problems),
            expect_int(self.max_model_len, f"{field}.max_model_len", problems, minimum=128),
            expect_int(self.shards, f"{field}.shards", problems, minimum=1, maximum=1000),
            self.parallelism is None or expect_int(self.parallelism, f"{field}.parallelism", problems, minimum=1),
            expect_int(self.retries_per_index, f"{field}.retries_per_index", problems, minimum=0, maximum=10),
            expect_str_list(self.capacity_types, f"{field}.capacity_types", problems),
            expect_int(self.max_tokens, f"{field}.max_tokens", problems, minimum=1),
            expect_number(self.temperature, f"{field}.temperature", problems),
            expect_int(self.chunk_size, f"{field}.chunk_size", problems, minimum=1),
            expect_str(self.image, f"{field}.image", problems, optional=True),
        )

    def check(self, field: str, problems: Problems) -> bool:
        """Add the job's problems; False when its types are wrong (then nothing else may read it)."""
        if not self._check_shapes(field, problems):
            return False
        check_dns_label(self.name, f"{field}.name", problems, max_length=NAME_MAX)
        spec = None
        with problems.collecting():
            spec = lookup(self.instance_type, field=f"{field}.instance_type")
        if spec is not None and spec.family not in INFERENCE_FAMILIES[AcceleratorVendor.NVIDIA]:
            problems.add(
                f"{field}.instance_type",
                self.instance_type,
                f"an NVIDIA inference type ({', '.join(INFERENCE_FAMILIES[AcceleratorVendor.NVIDIA])} families)",
                "run batch jobs on g5, g6 or g6e; Inferentia batch jobs are not supported yet",
            )
            spec = None
        if self.bytes_per_parameter not in (0.5, 1.0, 2.0, 4.0) or self.parameters_billions <= 0:
            problems.add(
                f"{field}.model_size",
                {"parameters_billions": self.parameters_billions, "bytes_per_parameter": self.bytes_per_parameter},
                "a positive parameter count and 0.5, 1, 2 or 4 bytes per parameter",
                "give the model's size, e.g. 8 billion parameters at 2 bytes (bf16)",
            )
        elif spec is not None:
            check_fit(
                spec,
                self.resolved_tensor_parallel(spec),
                self.parameters_billions,
                self.bytes_per_parameter,
                field,
                problems,
            )
        if self.parallelism is not None and self.parallelism > self.shards:
            problems.add(
                f"{field}.parallelism",
                self.parallelism,
                f"at most shards ({self.shards})",
                "raise shards to run more pods at once, or leave parallelism unset",
            )
        bad = [c for c in self.capacity_types if c not in CAPACITY_TYPES]
        if bad or not self.capacity_types or len(set(self.capacity_types)) != len(self.capacity_types):
            problems.add(
                f"{field}.capacity_types",
                list(self.capacity_types),
                "spot, on-demand or both, each once",
                "use ('spot',) for Spot only, or the default to let Karpenter fall back to On-Demand",
            )
        if not 0 <= self.temperature <= 2:
            problems.add(f"{field}.temperature", self.temperature, "0 to 2", "use 0 for greedy decoding")
        self._check_model(field, problems)
        if self.input.overlaps(self.output):
            problems.add(
                f"{field}.output",
                self.output.url(),
                f"a prefix outside the input {self.input.url()} (and not containing it)",
                "write results beside the prompts, e.g. results/ next to prompts/: outputs under the input "
                "would be read as prompts by the next run",
            )
        return True

    def _check_model(self, field: str, problems: Problems) -> None:
        model = self.model
        if isinstance(model, HubWeights):
            if model.model_id.count("/") != 1:
                problems.add(f"{field}.model.model_id", model.model_id, "an org/name Hub id", "use e.g. Qwen/Qwen3-8B")
            if model.token_secret is not None:
                check_dns_subdomain(model.token_secret, f"{field}.model.token_secret", problems)
            return
        S3Prefix(bucket=model.bucket, prefix=model.prefix).check(f"{field}.model", problems)

    def model_prefix(self) -> S3Prefix | None:
        return (
            S3Prefix(bucket=self.model.bucket, prefix=self.model.prefix) if isinstance(self.model, S3Weights) else None
        )

    def values(self, *, namespace: str, queue: str, pool: str) -> BatchJobValues:
        spec = self.spec()
        tp = self.resolved_tensor_parallel(spec)
        devices = devices_for(spec, tp)
        model_prefix = self.model_prefix()
        model = model_prefix.url() if model_prefix else self.model.model_id  # type: ignore[union-attr]
        node_selector = {"node.kubernetes.io/instance-type": spec.name, POOL_LABEL: pool}
        node_selector.update(self.capacity_selector())
        token = self.model.token_secret if isinstance(self.model, HubWeights) else None
        return BatchJobValues(
            name=self.name,
            namespace=namespace,
            queue=queue,
            service_account=self.service_account(),
            image=self.image or VLLM_NVIDIA_IMAGE,
            args=[
                f"--input={self.input.url()}",
                f"--output={self.output.url()}",
                f"--shards={self.shards}",
                f"--model={model}",
                f"--tensor-parallel={tp}",
                f"--max-model-len={self.max_model_len}",
                f"--max-tokens={self.max_tokens}",
                f"--temperature={self.temperature:g}",
                f"--chunk-size={self.chunk_size}",
                f"--cache-dir={CACHE_PATH}",
            ],
            shards=self.shards,
            parallelism=self.parallelism or self.shards,
            retries_per_index=self.retries_per_index,
            node_selector=node_selector,
            tolerations=[{"key": spec.accelerator_resource, "operator": "Exists", "effect": "NoSchedule"}],
            requests=pod_requests(spec, devices),
            limits={spec.accelerator_resource: str(devices)},
            shm_size=shm_size(spec, devices),
            env={"HF_HOME": f"{CACHE_PATH}/huggingface"},
            secret_env={"HF_TOKEN": (token, "token")} if token else {},
        )


def flavor_quotas(jobs: Sequence[BatchInferenceJobProps], pools: Mapping[str, NodePoolProps]) -> list[FlavorQuota]:
    """One ResourceFlavor per pool the jobs use, with the pool's limits as its quota: Kueue admits no more than
    the NodePool may launch. Its node labels are the pool's, which Kueue adds to the admitted pods' node
    selector, so they match the pool's nodes; a job's capacity type stays in its own pod template (a flavor per
    capacity type would count the pool's limits twice)."""
    flavors: dict[str, FlavorQuota] = {}
    for job in jobs:
        pool = pools[job.instance_type]
        if pool.name in flavors:
            continue
        specs = pool.specs()
        # Memory: the pool's vCPU limit at its types' largest memory per vCPU (the NodePool limits only vCPUs
        # and accelerators).
        mib_per_vcpu = max(s.memory_mib // s.vcpus for s in specs)
        flavors[pool.name] = FlavorQuota(
            name=pool.name,
            node_labels={POOL_LABEL: pool.name},
            taint_key=specs[0].accelerator_resource,
            quotas={
                "cpu": pool.cpu_limit,
                "memory": f"{pool.cpu_limit * mib_per_vcpu}Mi",
                specs[0].accelerator_resource: pool.accelerator_limit,
            },
        )
    return [flavors[name] for name in sorted(flavors)]


def batch_script() -> str:
    return resources.files("eks_ml.inference.workloads").joinpath(SCRIPT).read_text()


class BatchInference(Construct):
    """Kueue (pinned chart), a Pod Identity role per job (read its input and model prefixes, write its output
    prefix) and the charts the cluster applies after Kueue: ``queues_chart`` (namespace, flavors, ClusterQueue,
    LocalQueue) and ``jobs_chart`` (script, ServiceAccounts, Jobs). Attributes also: ``kueue``, ``roles``,
    ``associations`` (apply the Jobs after them)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster: eks.ICluster,
        model: ClusterModel,
        placement: SystemPlacement,
        jobs: Sequence[BatchInferenceJobProps],
        pools: Sequence[NodePoolProps],
        after: Sequence[IDependable] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        self.kueue = helm.install(
            self,
            "Kueue",
            cluster,
            helm.KUEUE,
            kueue_values(placement, BATCH_KUEUE_CONFIG),
            model=model,
            wait=True,
            after=after,
        )
        pool_of = {job.instance_type: next(p for p in pools if p.allows(job.instance_type)) for job in jobs}
        self.queues_chart = TrainingQueuesChart(
            cdk8s.App(),
            "BatchQueues",
            TrainingQueuesValues(
                namespace=NAMESPACE, cluster_queue=QUEUE, local_queue=QUEUE, flavors=flavor_quotas(jobs, pool_of)
            ),
        )
        self.jobs_chart = BatchInferenceChart(
            cdk8s.App(),
            "BatchJobs",
            namespace=NAMESPACE,
            script=batch_script(),
            jobs=[job.values(namespace=NAMESPACE, queue=QUEUE, pool=pool_of[job.instance_type].name) for job in jobs],
        )
        self.roles: dict[str, iam.Role] = {}
        self.associations: list[eks.CfnPodIdentityAssociation] = []
        for job in jobs:
            role = pod_identity_role(
                self, f"Role{pascal(job.name)}", description=f"Batch inference job {job.name}: its S3 prefixes only"
            )
            _grant(role, job)
            acknowledge_inline_policy(
                role,
                "The job's role holds only its own S3 prefix statements; a managed policy would be shared by no "
                "other role and outlive the job.",
            )
            association = associate(
                self,
                f"Identity{pascal(job.name)}",
                cluster=cluster,
                namespace=NAMESPACE,
                service_account=job.service_account(),
                role=role,
            )
            self.roles[job.name] = role
            self.associations.append(association)


def _grant(role: iam.Role, job: BatchInferenceJobProps) -> None:
    """List and read the input (and S3 model) prefixes; list and write the output prefix. Listing is limited to
    each prefix by the s3:prefix condition; nothing may read what it wrote or delete anything."""
    readable = [job.input, *([job.model_prefix()] if job.model_prefix() else [])]
    for prefix, actions in [*((p, ["s3:GetObject"]) for p in readable if p), (job.output, ["s3:PutObject"])]:
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[prefix.bucket_arn()],
                conditions={"StringLike": {"s3:prefix": [f"{prefix.prefix}*"]}},
            )
        )
        role.add_to_policy(iam.PolicyStatement(actions=actions, resources=[prefix.objects_arn()]))
        acknowledge(
            role,
            f"{PACK}-IAM5[Resource::arn:<AWS::Partition>:s3:::{prefix.bucket}/{prefix.prefix}*]",
            f"{actions[0]} on the objects under the batch job's own prefix {prefix.prefix}; the keys are the job's "
            "input files or its per-shard outputs, not known in advance.",
        )
