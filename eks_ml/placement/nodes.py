"""Node sources: every kind of node a cluster can have, with its labels, taints and allocatable capacity.

A node source (a managed node group, a Karpenter NodePool, an EKS Auto Mode pool) may launch several
instance types; each becomes a :class:`NodeShape`. Label values are sets: a Karpenter node may be Spot
or On-Demand, so a pod selecting either can land.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..catalog import NEURON_CORE_RESOURCE, InstanceSpec, lookup
from .quantity import CPU, MEMORY, PODS

if TYPE_CHECKING:
    from .fargate import FargateSelector

ARCH_LABEL = "kubernetes.io/arch"
OS_LABEL = "kubernetes.io/os"
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
NODEPOOL_LABEL = "karpenter.sh/nodepool"
CAPACITY_TYPE_LABEL = "karpenter.sh/capacity-type"


# Pods per node with VPC CNI prefix delegation (eks-ml turns it on): the EKS max-pods calculator's
# recommendation, 110 below 30 vCPUs and 250 above (amazon-eks-ami max-pods-calculator.sh).
def _max_pods(vcpus: int) -> int:
    return 110 if vcpus < 30 else 250


@dataclass(frozen=True)
class Taint:
    key: str
    value: str | None
    effect: str

    def __str__(self) -> str:
        return f"{self.key}{'=' + self.value if self.value else ''}:{self.effect}"


@dataclass(frozen=True)
class NodeShape:
    """One instance type of a node source: its labels (each a set of possible values) and allocatable."""

    instance_type: str
    labels: Mapping[str, frozenset[str]]
    allocatable: Mapping[str, int]
    # Extended resources the hardware has (GPUs, Neuron devices and cores, EFA interfaces). A pod can
    # use them only where a device plugin of the cluster (or Auto Mode) advertises them.
    devices: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class NodeSource:
    """What nodes a cluster can have from one source. ``builtin_resources`` are advertised without a
    device plugin of ours (EKS Auto Mode ships its own). ``fargate_selectors`` (a Fargate profile's,
    eks_ml.placement.fargate) make the source Fargate: it takes exactly the pods they select, and those
    pods go nowhere else."""

    name: str
    taints: tuple[Taint, ...]
    shapes: tuple[NodeShape, ...]
    builtin_resources: frozenset[str] = frozenset()
    fargate_selectors: tuple[FargateSelector, ...] = ()

    @property
    def is_fargate(self) -> bool:
        return bool(self.fargate_selectors)


def kubelet_reserved(vcpus: int, memory_mib: int, max_pods: int) -> dict[str, int]:
    """What the EKS AL2023 AMI's kubelet keeps for itself: 255 MiB + 11 MiB per pod, the hard eviction
    threshold of 100 MiB, and 6 % of the first core, 1 % of the second, 0.5 % of the next two and
    0.25 % of the rest (amazon-eks-ami, nodeadm kubelet config). Bottlerocket's kube-reserved memory is the
    same 255 MiB + 11 MiB per pod (bottlerocket-os/bottlerocket#4187, schnauzer's kube_reserve_memory) and its
    CPU reservation the same scale (70m on two vCPUs, #1472), so Bottlerocket pools use this too."""
    cpu = 60 + (10 if vcpus > 1 else 0) + 5 * min(max(vcpus - 2, 0), 2) + 2.5 * max(vcpus - 4, 0)
    return {CPU: int(cpu + 0.999), MEMORY: min(255 + 11 * max_pods + 100, memory_mib)}


def allocatable(vcpus: int, memory_mib: int, max_pods: int) -> dict[str, int]:
    reserved = kubelet_reserved(vcpus, memory_mib, max_pods)
    return {CPU: vcpus * 1000 - reserved[CPU], MEMORY: memory_mib - reserved[MEMORY], PODS: max_pods}


def accelerated_shape(spec: InstanceSpec, labels: Mapping[str, Iterable[str]]) -> NodeShape:
    devices = dict(spec.extended_resources())
    if spec.is_neuron:
        devices[NEURON_CORE_RESOURCE] = spec.neuron_cores
    return NodeShape(
        instance_type=spec.name,
        labels=_labels(labels, spec.name, "amd64"),
        allocatable=allocatable(spec.vcpus, spec.memory_mib, spec.max_pods),
        devices=devices,
    )


# General-purpose families for system and CPU nodes: memory per vCPU by category (EC2 instance types:
# compute optimized 2 GiB, general purpose and burstable 4 GiB, memory optimized 8 GiB per vCPU).
_GIB_PER_VCPU = {"c": 2, "m": 4, "t": 4, "r": 8}
_GENERAL = re.compile(r"^(?P<category>[cmrt])(?P<generation>\d+)(?P<options>[a-z-]*)\.(?P<size>\d*x?large|medium)$")


def general_purpose_shape(instance_type: str, labels: Mapping[str, Iterable[str]]) -> NodeShape | None:
    """The shape of a c/m/r/t instance type from its name (2 vCPUs per ``large``), or None if the name
    is not of that form."""
    match = _GENERAL.match(instance_type)
    if match is None:
        return None
    size = match.group("size")
    vcpus = {"medium": 1, "large": 2, "xlarge": 4}.get(size) or 4 * int(size.removesuffix("xlarge"))
    memory_mib = vcpus * _GIB_PER_VCPU[match.group("category")] * 1024
    arch = "arm64" if "g" in match.group("options") else "amd64"
    return NodeShape(
        instance_type=instance_type,
        labels=_labels(labels, instance_type, arch),
        allocatable=allocatable(vcpus, memory_mib, _max_pods(vcpus)),
    )


def _labels(labels: Mapping[str, Iterable[str]], instance_type: str, arch: str) -> dict[str, frozenset[str]]:
    return {
        **{key: frozenset(values) for key, values in labels.items()},
        INSTANCE_TYPE_LABEL: frozenset({instance_type}),
        ARCH_LABEL: frozenset({arch}),
        OS_LABEL: frozenset({"linux"}),
    }


def single(labels: Mapping[str, str]) -> dict[str, frozenset[str]]:
    return {key: frozenset({value}) for key, value in labels.items()}


def managed_node_group(
    name: str, instance_types: Sequence[str], labels: Mapping[str, str], taints: Sequence[Taint] = ()
) -> NodeSource:
    """An EKS managed node group: accelerated types from the catalog, others by their name's form."""
    shapes = []
    for instance_type in instance_types:
        shape = general_purpose_shape(instance_type, single(labels))
        shapes.append(shape if shape is not None else accelerated_shape(lookup(instance_type), single(labels)))
    return NodeSource(name=f"managed node group {name}", taints=tuple(taints), shapes=tuple(shapes))


# The biggest current-generation c/m/r instance a CPU pool may launch (m7i.48xlarge, r7i.48xlarge: 192 vCPUs,
# up to 1536 GiB); a pod that fits neither does not fit any.
CPU_POOL_SHAPES = ("m7i.48xlarge", "r7i.48xlarge")


def karpenter_pool(
    name: str,
    *,
    specs: Sequence[InstanceSpec],
    labels: Mapping[str, str],
    taints: Sequence[Taint],
    capacity_types: Sequence[str],
    builtin_resources: Iterable[str] = (),
    kind: str = "Karpenter NodePool",
) -> NodeSource:
    """A NodePool: each allowed catalog type, or for a CPU pool the largest general-purpose types."""
    pool_labels: dict[str, Iterable[str]] = {
        **single(labels),
        NODEPOOL_LABEL: {name},
        CAPACITY_TYPE_LABEL: set(capacity_types),
    }
    if specs:
        shapes = tuple(accelerated_shape(spec, pool_labels) for spec in specs)
    else:
        shapes = tuple(
            shape for shape in (general_purpose_shape(t, pool_labels) for t in CPU_POOL_SHAPES) if shape is not None
        )
    return NodeSource(
        name=f"{kind} {name}", taints=tuple(taints), shapes=shapes, builtin_resources=frozenset(builtin_resources)
    )


# EKS Auto Mode's built-in pools and what they run (EKS user guide, "Auto Mode built-in NodePools"):
# "system" for critical add-ons, tainted CriticalAddonsOnly, amd64 or arm64; "general-purpose", amd64.
# Auto Mode nodes ship their own NVIDIA and Neuron device plugins.
AUTO_MODE_DEVICE_RESOURCES = frozenset({"nvidia.com/gpu", "aws.amazon.com/neuron", NEURON_CORE_RESOURCE})
_AUTO_MODE_POOLS = {
    "system": (("m7i.48xlarge", "m7g.16xlarge"), (Taint("CriticalAddonsOnly", None, "NoSchedule"),)),
    "general-purpose": (("m7i.48xlarge",), ()),
}


def auto_mode_pools(pool_names: Iterable[str]) -> list[NodeSource]:
    sources = []
    for name in pool_names:
        types, taints = _AUTO_MODE_POOLS[name]
        labels = {
            NODEPOOL_LABEL: {name},
            CAPACITY_TYPE_LABEL: {"on-demand"},
            "eks.amazonaws.com/compute-type": {"auto"},
        }
        shapes = tuple(s for s in (general_purpose_shape(t, labels) for t in types) if s is not None)
        sources.append(
            NodeSource(
                name=f"EKS Auto Mode NodePool {name}",
                taints=taints,
                shapes=shapes,
                builtin_resources=AUTO_MODE_DEVICE_RESOURCES,
            )
        )
    return sources


def existing_nodes() -> NodeSource:
    """An imported cluster's own nodes, which eks-ml cannot see: any pod without accelerator or EFA
    requests is assumed to find a place (the usual general-purpose node of m7i.large size)."""
    shape = general_purpose_shape("m7i.large", {})
    assert shape is not None
    return NodeSource(name="the imported cluster's existing nodes (not known to eks-ml)", taints=(), shapes=(shape,))
