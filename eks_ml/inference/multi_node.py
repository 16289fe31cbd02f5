"""Models bigger than one node: vLLM across a group of EFA-wired nodes, one LeaderWorkerSet group per replica.

Tensor parallel inside a node (every GPU of it), pipeline parallel across nodes: the fit check
(eks_ml.inference.fit) decides how many nodes a replica needs, ceil(weights / what one node holds with
KV-cache headroom). A model that fits one node is refused here: a ModelService serves it without the
cross-node hop.

How vLLM runs across nodes (vLLM v0.11.0, docs "Parallelism and scaling" / examples/online_serving/
multi-node-serving.sh, which the vllm/vllm-openai image ships under /vllm-workspace; the LWS example
kubernetes-sigs/lws @ v0.10.0 docs/examples/vllm/GPU/lws.yaml runs it the same way): the leader starts the
Ray head and waits for ``--ray_cluster_size`` nodes, each worker runs ``ray start --address`` against the
leader, then the leader runs ``vllm serve --tensor-parallel-size N --pipeline-parallel-size M`` on the Ray
cluster. LWS injects LWS_LEADER_ADDRESS and LWS_GROUP_SIZE into every pod.

Each service gets a Karpenter pool of its own instance type whose EC2NodeClass carries the catalog's EFA
interface layout and the EFA security group; every pod requests all of its node's GPUs and EFA interfaces,
served by the EFA device plugin the cluster then installs. Nothing here has been deployed.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from aws_cdk import Duration

from .. import helm
from ..catalog import EFA_RESOURCE, AcceleratorVendor, InstanceSpec, all_instance_types, lookup
from ..errors import Problems
from ..guards import (
    expect_all,
    expect_duration,
    expect_instance,
    expect_int,
    expect_number,
    expect_str,
    expect_str_list,
)
from ..k8s.karpenter_pools import PoolValues
from ..k8s.multi_node import MultiNodeServiceValues
from ..kube_names import check_dns_label, check_namespace
from .fit import KV_CACHE_HEADROOM, fits, pod_requests, shm_size, usable_gib, weight_gib
from .model_service import (
    CACHE_DIR,
    DTYPE_BYTES,
    MANAGED_VLLM_FLAGS,
    MODEL_DIR,
    VLLM_NVIDIA_IMAGE,
    ClaimWeights,
    HubWeights,
)
from .node_os import NodeOS
from .pools import CAPACITY_TYPES, INFERENCE_FAMILIES, POOL_LABEL, NodePoolProps, PoolKind

# The NVIDIA training families that also serve: their nodes have the most GPU memory and EFA interfaces.
P_FAMILIES = ("p4d", "p4de", "p5", "p5e", "p5en")
# Tensor parallel spans a node's GPUs; a node with fewer is not worth a cross-node pipeline.
MIN_GPUS_PER_NODE = 4
# More pipeline stages than this means a smaller dtype or a larger instance type would serve better.
MAX_STAGES = 8
# GPUDirect RDMA over EFA (FI_EFA_USE_DEVICE_RDMA): the p4d/p5 families have it, the g families do not
# (EFA user guide, "Supported instance types" / aws-ofi-nccl's platform notes).
RDMA_FAMILIES = frozenset(P_FAMILIES)
# Ships with the vLLM images (see the module docstring); run with bash, as the LWS example does.
MULTI_NODE_SCRIPT = "/vllm-workspace/examples/online_serving/multi-node-serving.sh"
EXTRA_FLAGS = ("--pipeline-parallel-size", "-pp", "--distributed-executor-backend")
NAME_MAX = 31  # the name is also the service's Karpenter pool name (eks_ml.inference.pools.NAME_MAX)


def multi_node_types() -> list[InstanceSpec]:
    """NVIDIA types a multi-node service may use: EFA-capable, at least MIN_GPUS_PER_NODE GPUs."""
    families = (*INFERENCE_FAMILIES[AcceleratorVendor.NVIDIA], *P_FAMILIES)
    return [
        s
        for s in all_instance_types()
        if s.is_nvidia and s.family in families and s.supports_efa and s.accelerator_count >= MIN_GPUS_PER_NODE
    ]


def per_node_gib(spec: InstanceSpec) -> float:
    """The weights one node of ``spec`` holds with KV-cache headroom (the fit check's rule, all its GPUs)."""
    return usable_gib(spec, spec.accelerator_count) * (1 - KV_CACHE_HEADROOM)


@dataclass(frozen=True, kw_only=True)
class MultiNodeServiceProps:
    """One model served by groups of nodes (tensor parallel within a node, pipeline parallel across nodes).

    instance_type: an EFA-capable NVIDIA type with 4 or more GPUs (g5/g6/g6e .12xlarge and up, p4d, p4de, p5,
        p5e, p5en). The service gets a Karpenter pool of this type alone, with EFA interfaces.
    parameters_billions / bytes_per_parameter: the model's size; the number of nodes per replica (pipeline
        stages) follows from it. A model that fits one node is refused: use ModelServiceProps.
    groups: replicas of the whole model (LeaderWorkerSet groups). Default: 1.
    spare_groups: groups' worth of nodes the pool may launch beyond ``groups`` (for a rolling update or a
        replacement). Default: 0.
    capacity_types: Default: On-Demand only (a reclaimed Spot node restarts its whole group).
    client_namespaces: namespaces whose pods may call the server (the leader's Service, port 8000).
        Default: none besides the metrics scrapers.
    load_timeout: how long the group may take to load the model. Default: 45 minutes.
    """

    name: str
    instance_type: str
    weights: HubWeights | ClaimWeights
    parameters_billions: float
    bytes_per_parameter: float = 2.0
    max_model_len: int = 8192
    groups: int = 1
    spare_groups: int = 0
    capacity_types: Sequence[str] = ("on-demand",)
    client_namespaces: Sequence[str] = ()
    load_timeout: Duration = field(default_factory=lambda: Duration.minutes(45))
    image: str | None = None
    extra_args: Sequence[str] = ()

    def spec(self) -> InstanceSpec:
        return lookup(self.instance_type, field="instance_type")

    def weights_gib(self) -> float:
        return weight_gib(self.parameters_billions, self.bytes_per_parameter)

    def stages(self, spec: InstanceSpec) -> int:
        """Nodes per replica: pipeline stages of a model that no single node holds."""
        return math.ceil(self.weights_gib() / per_node_gib(spec))

    def _check_shapes(self, field: str, problems: Problems) -> bool:
        return expect_all(
            expect_str(self.name, f"{field}.name", problems),
            expect_str(self.instance_type, f"{field}.instance_type", problems),
            expect_instance(
                self.weights,
                (HubWeights, ClaimWeights),
                f"{field}.weights",
                problems,
                fix="pass HubWeights(model_id=...) or ClaimWeights(claim_name=...)",
            ),
            expect_number(self.parameters_billions, f"{field}.parameters_billions", problems),
            expect_number(self.bytes_per_parameter, f"{field}.bytes_per_parameter", problems),
            expect_int(self.max_model_len, f"{field}.max_model_len", problems, minimum=128),
            expect_int(self.groups, f"{field}.groups", problems, minimum=1, maximum=100),
            expect_int(self.spare_groups, f"{field}.spare_groups", problems, minimum=0, maximum=100),
            expect_str_list(self.capacity_types, f"{field}.capacity_types", problems),
            expect_str_list(self.client_namespaces, f"{field}.client_namespaces", problems),
            expect_duration(self.load_timeout, f"{field}.load_timeout", problems),
            expect_str(self.image, f"{field}.image", problems, optional=True),
            expect_str_list(self.extra_args, f"{field}.extra_args", problems),
        )

    def check(self, field: str, problems: Problems) -> bool:
        """Add the service's problems; False when its types are wrong (then nothing else may read it)."""
        if not self._check_shapes(field, problems):
            return False
        check_dns_label(self.name, f"{field}.name", problems, max_length=NAME_MAX)
        for index, namespace in enumerate(self.client_namespaces):
            check_namespace(namespace, f"{field}.client_namespaces[{index}]", problems)
        bad_capacity = [c for c in self.capacity_types if c not in CAPACITY_TYPES]
        if bad_capacity or not self.capacity_types:
            problems.add(
                f"{field}.capacity_types",
                list(self.capacity_types),
                "one or both of spot, on-demand",
                "keep ('on-demand',): a reclaimed Spot node restarts its whole group",
            )
        minutes = self.load_timeout.to_minutes()
        if not 1 <= minutes <= 120:
            problems.add(
                f"{field}.load_timeout", f"{minutes} min", "1 to 120 minutes", "give the group time to load, not hours"
            )
        for arg in self.extra_args:
            flag = arg.split("=", 1)[0]
            flag = "--" + flag[2:].replace("_", "-") if flag.startswith("--") else flag
            if flag in (*MANAGED_VLLM_FLAGS, *EXTRA_FLAGS):
                problems.add(
                    f"{field}.extra_args",
                    arg,
                    "flags other than those eks-ml sets (model, name, port, parallel sizes, executor, lengths)",
                    f"remove {flag}: the parallel sizes follow from instance_type and the model's size",
                )
        self._check_weights(field, problems)
        if self.bytes_per_parameter not in DTYPE_BYTES or self.parameters_billions <= 0:
            problems.add(
                f"{field}.model_size",
                {"parameters_billions": self.parameters_billions, "bytes_per_parameter": self.bytes_per_parameter},
                "a positive parameter count and 0.5, 1, 2 or 4 bytes per parameter",
                "give the model's size, e.g. 405 billion parameters at 2 bytes (bf16)",
            )
            return True
        spec = None
        with problems.collecting():
            spec = lookup(self.instance_type, field=f"{field}.instance_type")
        if spec is None:
            return True
        allowed = multi_node_types()
        if spec not in allowed:
            problems.add(
                f"{field}.instance_type",
                self.instance_type,
                f"an EFA-capable NVIDIA type with {MIN_GPUS_PER_NODE}+ GPUs: {', '.join(s.name for s in allowed)}",
                "pick one of those: pipeline stages talk over EFA, tensor parallel spans a node's GPUs",
            )
            return True
        self._check_fit(spec, field, problems)
        return True

    def _check_fit(self, spec: InstanceSpec, field: str, problems: Problems) -> None:
        weights = self.weights_gib()
        if fits(spec, spec.accelerator_count, weights):
            problems.add(
                f"{field}.instance_type",
                self.instance_type,
                f"a type one node of which cannot hold the model ({weights:.1f} GiB of weights fit one "
                f"{spec.name}: {per_node_gib(spec):.1f} GiB with KV-cache headroom)",
                "serve it with ModelServiceProps in model_services (one node per replica, no cross-node hop)",
            )
            return
        stages = self.stages(spec)
        if stages > MAX_STAGES:
            problems.add(
                f"{field}.instance_type",
                self.instance_type,
                f"at most {MAX_STAGES} nodes per replica ({weights:.1f} GiB needs {stages} {spec.name} nodes "
                f"of {per_node_gib(spec):.1f} GiB)",
                "use a type with more GPU memory (p5e, p5en) or a smaller dtype (bytes_per_parameter)",
            )

    def _check_weights(self, field: str, problems: Problems) -> None:
        weights = self.weights
        if isinstance(weights, HubWeights):
            if not isinstance(weights.model_id, str) or weights.model_id.count("/") != 1:
                problems.add(
                    f"{field}.weights.model_id",
                    weights.model_id,
                    "an org/name Hub id",
                    "use e.g. meta-llama/Llama-3.1-405B-Instruct",
                )
        elif not isinstance(weights.claim_name, str) or not weights.claim_name:
            problems.add(f"{field}.weights.claim_name", weights.claim_name, "a claim name", "name the PVC")

    # -- what the cluster builds ------------------------------------------------------------------------

    def pool(self) -> NodePoolProps:
        """The service's own pool: its instance type only, sized for groups plus spares."""
        spec = self.spec()
        nodes = (self.groups + self.spare_groups) * self.stages(spec)
        return NodePoolProps(
            name=self.name,
            kind=PoolKind.NVIDIA,
            instance_types=(spec.name,),
            capacity_types=tuple(self.capacity_types),
            accelerator_limit=nodes * spec.accelerator_count,
            cpu_limit=nodes * spec.vcpus,
            # Empty nodes of a group that is being replaced come back for the new group; keep them a while.
            consolidate_after="30m",
            root_volume_gib=500,
            # AL2023 with the cluster's NVIDIA device plugin (why not Bottlerocket: eks_ml.inference.node_os).
            os=NodeOS.AL2023,
        )

    def pool_values(self, efa_group_tags: Mapping[str, str]) -> PoolValues:
        """The pool's values with the catalog's EFA interfaces and the EFA security group."""
        spec = self.spec()
        interfaces = [
            {
                "networkCardIndex": slot.network_card_index,
                "deviceIndex": slot.device_index,
                "interfaceType": slot.interface_type,
            }
            for slot in spec.network_interface_layout()
        ]
        return replace(
            self.pool().values(), network_interfaces=interfaces, extra_security_group_tags=[dict(efa_group_tags)]
        )

    def values(self, *, namespace: str) -> MultiNodeServiceValues:
        spec = self.spec()
        stages = self.stages(spec)
        resources = {spec.accelerator_resource: str(spec.accelerator_count), EFA_RESOURCE: str(spec.efa_interfaces)}
        model, volumes, mounts = self._weights()
        serve = [
            "vllm",
            "serve",
            model,
            "--served-model-name",
            self.name,
            "--port",
            "8000",
            "--tensor-parallel-size",
            str(spec.accelerator_count),
            "--pipeline-parallel-size",
            str(stages),
            "--distributed-executor-backend",
            "ray",
            "--max-model-len",
            str(self.max_model_len),
            *self.extra_args,
        ]
        # $(VAR) is expanded by the kubelet from the container's environment (LWS injects both variables).
        leader = f"bash {MULTI_NODE_SCRIPT} leader --ray_cluster_size=$(LWS_GROUP_SIZE) && exec {shlex.join(serve)}"
        worker = f"bash {MULTI_NODE_SCRIPT} worker --ray_address=$(LWS_LEADER_ADDRESS)"
        return MultiNodeServiceValues(
            name=self.name,
            namespace=namespace,
            image=self.image or VLLM_NVIDIA_IMAGE,
            groups=self.groups,
            group_size=stages,
            leader_command=["sh", "-c", leader],
            worker_command=["sh", "-c", worker],
            env={**nccl_env(spec), "HF_HOME": f"{CACHE_DIR}/huggingface"},
            node_selector={"node.kubernetes.io/instance-type": spec.name, POOL_LABEL: self.name},
            tolerations=[{"key": spec.accelerator_resource, "operator": "Exists", "effect": "NoSchedule"}],
            # The whole node: every GPU with its host share (as model services are sized), and every EFA interface.
            requests={**pod_requests(spec, spec.accelerator_count), **resources},
            limits=resources,
            shm_size=shm_size(spec, spec.accelerator_count),
            startup_failure_threshold=math.ceil(self.load_timeout.to_seconds() / 10),
            scraper_namespaces=[helm.PROMETHEUS.namespace],
            client_namespaces=list(self.client_namespaces),
            https_egress=isinstance(self.weights, HubWeights),
            volumes=volumes,
            volume_mounts=mounts,
            secret_env=(
                {"HF_TOKEN": (self.weights.token_secret, "token")}
                if isinstance(self.weights, HubWeights) and self.weights.token_secret
                else {}
            ),
        )

    def _weights(self) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]]]:
        cache: list[dict[str, Any]] = [{"name": "cache", "emptyDir": {}}]
        cache_mount: list[dict[str, Any]] = [{"name": "cache", "mountPath": CACHE_DIR}]
        weights = self.weights
        if isinstance(weights, HubWeights):
            return weights.model_id, cache, cache_mount
        volume = {"name": "weights", "persistentVolumeClaim": {"claimName": weights.claim_name, "readOnly": True}}
        mount = {"name": "weights", "mountPath": MODEL_DIR, "readOnly": True}
        return f"{MODEL_DIR}/{weights.path}".rstrip("/"), [*cache, volume], [*cache_mount, mount]


def nccl_env(spec: InstanceSpec) -> dict[str, str]:
    """NCCL over EFA through the aws-ofi-nccl plugin: the libfabric EFA provider, and GPUDirect RDMA where the
    type has it. The plugin must be in the image (AWS's vLLM Deep Learning Containers carry it; the upstream
    vllm/vllm-openai image does not, and NCCL then falls back to TCP sockets)."""
    env = {"FI_PROVIDER": "efa"}
    if spec.family in RDMA_FAMILIES:
        env["FI_EFA_USE_DEVICE_RDMA"] = "1"
    return env


def check_services(
    services: Sequence[MultiNodeServiceProps],
    *,
    pool_names: Sequence[str],
    auto_mode: bool,
    namespace: str,
    problems: Problems,
) -> None:
    """Every service's own problems, then what concerns the cluster: unique names, no clash with the
    cluster's pools (each service's pool is named after it), a Karpenter cluster."""
    names = [s.name for s in services if isinstance(s.name, str)]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.add("multi_node_services.name", name, "unique service names", "rename one of the services")
    for name in sorted(set(names) & set(pool_names)):
        problems.add(
            "multi_node_services.name",
            name,
            "a name no pool of the cluster has (each multi-node service gets a pool of its own, named after it)",
            "rename the service or the pool",
        )
    if services and auto_mode:
        problems.add(
            "multi_node_services",
            [s.name for s in services],
            "a cluster with self-managed Karpenter (base.auto_mode=False)",
            "EFA-wired node classes need Karpenter's EC2NodeClass; serve these models on a Karpenter cluster",
        )
    if services:
        check_namespace(namespace, "multi_node_namespace", problems)
    for index, service in enumerate(services):
        service.check(f"multi_node_services[{index}]", problems)


def efa_instance_types(services: Sequence[MultiNodeServiceProps]) -> list[str]:
    return sorted({s.instance_type for s in services})


def lws_values(placement: Mapping[str, Any]) -> dict[str, Any]:
    """The LeaderWorkerSet controller on the system nodes, sized down from the chart's 1 CPU and 1 GiB (it
    reconciles a handful of sets), with the RuntimeDefault seccomp profile that Pod Security restricted needs."""
    return {
        **placement,
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}},
        "podSecurityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
    }
