"""AWS Fargate as a node source: one microVM per pod, chosen by a Fargate profile's selectors.

Facts from the Amazon EKS User Guide (checked 2026-11): "Simplify compute management with AWS Fargate"
(considerations: no DaemonSets, no privileged containers, no hostNetwork or hostPort, no GPUs, ALB/NLB with
IP targets only) and "Understand Fargate Pod configuration details" (the vCPU/memory table below, 256 MB
added to every pod for the kubelet, kube-proxy and containerd, requests rounded up to the next combination,
20 GiB of ephemeral storage by default and up to 175 GiB on request; AWS "Fargate adds support for larger
ephemeral volumes", 2023-08). Pods that match a profile's selector (its namespace and every label it lists)
are scheduled by the Fargate scheduler and nowhere else; other pods never reach Fargate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .nodes import ARCH_LABEL, INSTANCE_TYPE_LABEL, OS_LABEL, NodeShape, NodeSource
from .pods import Workload
from .quantity import CPU, MEMORY, PODS

COMPUTE_TYPE_LABEL = "eks.amazonaws.com/compute-type"
EPHEMERAL_STORAGE = "ephemeral-storage"
# Memory Fargate adds to every pod's request for the Kubernetes components it runs beside it.
KUBERNETES_OVERHEAD_MIB = 256
DEFAULT_EPHEMERAL_GIB = 20
MAX_EPHEMERAL_GIB = 175
# vCPU (millicores) -> the memory sizes (GiB) Fargate offers with it.
FARGATE_SIZES: tuple[tuple[int, tuple[float, ...]], ...] = (
    (250, (0.5, 1, 2)),
    (500, (1, 2, 3, 4)),
    (1000, tuple(range(2, 9))),
    (2000, tuple(range(4, 17))),
    (4000, tuple(range(8, 31))),
    (8000, tuple(range(16, 61, 4))),
    (16000, tuple(range(32, 121, 8))),
)
MAX_CPU = FARGATE_SIZES[-1][0]
MAX_MEMORY_MIB = int(FARGATE_SIZES[-1][1][-1] * 1024)


@dataclass(frozen=True)
class FargateSelector:
    """One selector of a Fargate profile: a namespace and, optionally, labels every selected pod carries."""

    namespace: str
    labels: Mapping[str, str] = field(default_factory=dict)

    def selects(self, workload: Workload) -> bool:
        return self.matches(workload.namespace, workload.labels)

    def matches(self, namespace: str | None, labels: Mapping[str, str]) -> bool:
        return namespace == self.namespace and all(labels.get(key) == value for key, value in self.labels.items())

    def __str__(self) -> str:
        labels = ",".join(f"{k}={v}" for k, v in sorted(self.labels.items()))
        return f"namespace {self.namespace}" + (f" with labels {labels}" if labels else "")


def fargate_size(cpu_millicores: int, memory_mib: int) -> tuple[int, int] | None:
    """The (millicores, MiB) Fargate provisions for a pod's requests (the 256 MB it adds included), or None
    when no combination is that large."""
    needed = memory_mib + KUBERNETES_OVERHEAD_MIB
    for cpu, memories in FARGATE_SIZES:
        if cpu < cpu_millicores:
            continue
        for gib in memories:
            if gib * 1024 >= needed:
                return cpu, int(gib * 1024)
    return None


def fargate_profile(name: str, selectors: tuple[FargateSelector, ...]) -> NodeSource:
    """The node source of one Fargate profile: a single shape, the largest Fargate pod."""
    shape = NodeShape(
        instance_type="Fargate",
        labels={
            COMPUTE_TYPE_LABEL: frozenset({"fargate"}),
            INSTANCE_TYPE_LABEL: frozenset({"fargate"}),
            ARCH_LABEL: frozenset({"amd64"}),
            OS_LABEL: frozenset({"linux"}),
        },
        # One pod per node: the whole microVM is the pod's, less what Fargate adds for Kubernetes.
        allocatable={CPU: MAX_CPU, MEMORY: MAX_MEMORY_MIB - KUBERNETES_OVERHEAD_MIB, PODS: 1},
    )
    return NodeSource(name=f"Fargate profile {name}", taints=(), shapes=(shape,), fargate_selectors=selectors)


def selects(source: NodeSource, workload: Workload) -> bool:
    return any(selector.selects(workload) for selector in source.fargate_selectors)


def fargate_refusal(source: NodeSource, workload: Workload) -> str | None:
    """Why Fargate cannot run ``workload`` (None when it can); selection and size, not node labels."""
    if not selects(source, workload):
        return "no selector of the profile matches the pod (" + "; ".join(map(str, source.fargate_selectors)) + ")"
    if workload.is_daemon_set:
        return "Fargate runs no DaemonSets (run the agent as a sidecar, or keep the namespace off Fargate)"
    if workload.host_access:
        return f"Fargate gives pods no host access ({', '.join(workload.host_access)})"
    devices = sorted(r for r in workload.requests if r not in (CPU, MEMORY, PODS, EPHEMERAL_STORAGE))
    if devices:
        return f"Fargate has no GPUs or other devices (the pod asks for {', '.join(devices)})"
    cpu, memory = workload.requests.get(CPU, 0), workload.requests.get(MEMORY, 0)
    if fargate_size(cpu, memory) is None:
        return (
            f"no Fargate size holds {cpu}m CPU and {memory}Mi memory plus {KUBERNETES_OVERHEAD_MIB} MiB "
            f"(the largest is {MAX_CPU // 1000} vCPU with {MAX_MEMORY_MIB // 1024} GB)"
        )
    storage_gib = workload.requests.get(EPHEMERAL_STORAGE, 0) / 2**30
    if storage_gib > MAX_EPHEMERAL_GIB:
        return f"Fargate pods get at most {MAX_EPHEMERAL_GIB} GiB of ephemeral storage, the pod asks {storage_gib:g}"
    return None
