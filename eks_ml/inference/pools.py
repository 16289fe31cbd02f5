"""Typed Karpenter pool specs for inference: NVIDIA GPUs, AWS Inferentia2, and CPU."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum

from ..catalog import AcceleratorVendor, InstanceSpec, all_instance_types, lookup
from ..errors import Problems
from ..guards import expect_all, expect_enum, expect_int, expect_str, expect_str_list, expect_str_map
from ..k8s.karpenter_pools import PoolValues
from ..kube_names import check_dns_label, check_labels
from .node_os import NODE_OS_LABEL, NodeOS

INFERENCE_FAMILIES = {
    AcceleratorVendor.NVIDIA: ("g5", "g6", "g6e"),
    AcceleratorVendor.AWS_NEURON: ("inf2",),
}
POOL_LABEL = "eks-ml.io/pool"
NODE_ROLE_LABEL = "eks-ml.io/node-role"
ACCELERATOR_LABEL = "eks-ml.io/accelerator"
CAPACITY_TYPES = ("spot", "on-demand")
# Current-generation general purpose families for CPU-only pods (routers, tokenizer services, jobs).
CPU_CATEGORIES = ("c", "m", "r")
MIN_CPU_GENERATION = 6
NAME_MAX = 31  # the name is a NodePool name, a node label value and part of construct ids
MIN_ROOT_VOLUME_GIB = 20  # the AL2023 AMI's own root volume; Karpenter's default Bottlerocket data volume
MAX_GP3_GIB = 16384  # the largest gp3 volume (16 TiB)
_DURATION = re.compile(r"^\d+[smh]$")


class PoolKind(Enum):
    NVIDIA = "nvidia"
    NEURON = "neuron"
    CPU = "cpu"

    @property
    def vendor(self) -> AcceleratorVendor | None:
        return {PoolKind.NVIDIA: AcceleratorVendor.NVIDIA, PoolKind.NEURON: AcceleratorVendor.AWS_NEURON}.get(self)


@dataclass(frozen=True, kw_only=True)
class NodePoolProps:
    """One Karpenter pool.

    kind: NVIDIA, NEURON or CPU. instance_types: catalog types to allow. Default: every catalog type
        of the kind's inference families (g5, g6, g6e for NVIDIA; inf2 for Neuron); CPU pools use
        current-generation c, m and r families.
    capacity_types: Default: Spot and On-Demand; Karpenter takes Spot when it can and falls back.
    accelerator_limit: most GPUs or Neuron devices the pool may hold. Default: 32.
    cpu_limit: most vCPUs the pool may hold. Default: 1024.
    consolidate_after: how long a node must be empty before removal. Default: 10m (model images are
        large; keep warm nodes a while).
    expire_after: node lifetime before replacement with a fresh AMI. Default: 720h (30 days).
    disruption_budget: share of nodes Karpenter may disrupt at once. Default: 10%.
    root_volume_gib: Default: 200 GiB (model server images), 50 GiB for CPU pools. On Bottlerocket it is the
        data volume (/dev/xvdb: images, logs), beside the 4 GiB OS volume.
    os: the nodes' AMI (eks_ml.inference.node_os). Default: Bottlerocket for NVIDIA pools (it ships the NVIDIA
        device plugin), AL2023 otherwise; only NVIDIA pools may run Bottlerocket. Not allowed with EKS Auto Mode
        (it picks its own AMI).
    """

    name: str
    kind: PoolKind
    instance_types: Sequence[str] = ()
    capacity_types: Sequence[str] = CAPACITY_TYPES
    accelerator_limit: int = 32
    cpu_limit: int = 1024
    consolidate_after: str = "10m"
    expire_after: str = "720h"
    disruption_budget: str = "10%"
    root_volume_gib: int | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    os: NodeOS | None = None

    @property
    def node_os(self) -> NodeOS:
        if self.os is not None:
            return self.os
        return NodeOS.BOTTLEROCKET if self.kind is PoolKind.NVIDIA else NodeOS.AL2023

    def specs(self) -> list[InstanceSpec]:
        vendor = self.kind.vendor
        if vendor is None:
            return []
        if self.instance_types:
            return [lookup(name) for name in self.instance_types]
        return [s for s in all_instance_types() if s.family in INFERENCE_FAMILIES[vendor]]

    def allows(self, instance_type: str) -> bool:
        return instance_type in {spec.name for spec in self.specs()}

    def _check_shapes(self, field: str, problems: Problems) -> bool:
        return expect_all(
            expect_str(self.name, f"{field}.name", problems),
            expect_enum(self.kind, PoolKind, f"{field}.kind", problems),
            expect_str_list(self.instance_types, f"{field}.instance_types", problems),
            expect_str_list(self.capacity_types, f"{field}.capacity_types", problems),
            expect_int(self.accelerator_limit, f"{field}.accelerator_limit", problems),
            expect_int(self.cpu_limit, f"{field}.cpu_limit", problems),
            expect_str(self.consolidate_after, f"{field}.consolidate_after", problems),
            expect_str(self.expire_after, f"{field}.expire_after", problems),
            expect_str(self.disruption_budget, f"{field}.disruption_budget", problems),
            self.root_volume_gib is None
            or expect_int(
                self.root_volume_gib,
                f"{field}.root_volume_gib",
                problems,
                minimum=MIN_ROOT_VOLUME_GIB,
                maximum=MAX_GP3_GIB,
            ),
            expect_str_map(self.labels, f"{field}.labels", problems),
            self.os is None or expect_enum(self.os, NodeOS, f"{field}.os", problems),
        )

    def check(self, field: str, problems: Problems) -> bool:
        """Add the pool's problems; False when its types are wrong (then nothing else may read it)."""
        if not self._check_shapes(field, problems):
            return False
        check_dns_label(self.name, f"{field}.name", problems, max_length=NAME_MAX)
        check_labels(self.labels, f"{field}.labels", problems)
        vendor = self.kind.vendor
        if self.node_os is NodeOS.BOTTLEROCKET and self.kind is not PoolKind.NVIDIA:
            problems.add(
                f"{field}.os",
                self.node_os.value,
                "Bottlerocket only for NVIDIA pools (Neuron and CPU pools run AL2023)",
                "drop os (or set NodeOS.AL2023) for this pool",
            )
        if self.kind is PoolKind.CPU and self.instance_types:
            problems.add(
                f"{field}.instance_types",
                list(self.instance_types),
                "no explicit types for a CPU pool (it picks current c, m and r families)",
                "remove instance_types, or use an NVIDIA or NEURON pool for accelerated types",
            )
        if vendor is not None:
            self._check_types(vendor, field, problems)
        bad_capacity = [c for c in self.capacity_types if c not in CAPACITY_TYPES]
        if bad_capacity or not self.capacity_types:
            problems.add(
                f"{field}.capacity_types",
                list(self.capacity_types),
                "one or both of spot, on-demand",
                "use ('spot', 'on-demand') to fall back to On-Demand when Spot is short",
            )
        if self.accelerator_limit < 1 or self.cpu_limit < 1:
            problems.add(
                f"{field}.limits",
                {"accelerators": self.accelerator_limit, "cpu": self.cpu_limit},
                "positive limits",
                "raise the limit: it caps what the pool may launch, not what it starts with",
            )
        for name, value in (("consolidate_after", self.consolidate_after), ("expire_after", self.expire_after)):
            if not _DURATION.match(value):
                problems.add(f"{field}.{name}", value, "a duration like 10m or 720h", "use a number and s, m or h")
        if not re.match(r"^(\d{1,2}%|100%|\d+)$", self.disruption_budget):
            problems.add(
                f"{field}.disruption_budget", self.disruption_budget, "a node count or a percentage", "use e.g. 10%"
            )
        return True

    def _check_types(self, vendor: AcceleratorVendor, field: str, problems: Problems) -> None:
        for name in self.instance_types:
            with problems.collecting():
                spec = lookup(name, field=f"{field}.instance_types")
                if spec.vendor is not vendor:
                    problems.add(
                        f"{field}.instance_types",
                        name,
                        f"{self.kind.value} types ({', '.join(INFERENCE_FAMILIES[vendor])} families)",
                        "put the type in a pool of its own accelerator kind",
                    )

    def values(self, *, auto_mode: bool = False) -> PoolValues:
        """Pool values; EKS Auto Mode names the instance-category and generation labels differently."""
        label_prefix = "eks.amazonaws.com" if auto_mode else "karpenter.k8s.aws"
        specs = self.specs()
        vendor = self.kind.vendor
        requirements: list[dict[str, object]] = [
            {"key": "karpenter.sh/capacity-type", "operator": "In", "values": list(self.capacity_types)},
            {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
        ]
        if specs:
            requirements.append(
                {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": sorted(s.name for s in specs)}
            )
        else:
            requirements += [
                {"key": f"{label_prefix}/instance-category", "operator": "In", "values": list(CPU_CATEGORIES)},
                {"key": f"{label_prefix}/instance-generation", "operator": "Gt", "values": [str(MIN_CPU_GENERATION)]},
            ]
        limits = {"cpu": str(self.cpu_limit)}
        taints = []
        if vendor is not None:
            resource = specs[0].accelerator_resource
            limits[resource] = str(self.accelerator_limit)
            taints.append({"key": resource, "value": "true", "effect": "NoSchedule"})
        labels = {NODE_ROLE_LABEL: "inference", POOL_LABEL: self.name, **self.labels}
        if vendor is not None:
            labels[ACCELERATOR_LABEL] = vendor.value
        if not auto_mode:  # Auto Mode picks its own AMI
            labels[NODE_OS_LABEL] = self.node_os.value
        return PoolValues(
            name=self.name,
            requirements=requirements,
            labels=labels,
            taints=taints,
            limits=limits,
            root_volume_gib=self.root_volume_gib or (200 if vendor else 50),
            consolidate_after=self.consolidate_after,
            expire_after=self.expire_after,
            disruption_budget=self.disruption_budget,
            ami_family=self.node_os.value,
        )


def plugin_vendors(pools: Sequence[NodePoolProps]) -> set[AcceleratorVendor]:
    """The accelerator vendors whose nodes need a device plugin of the cluster: every pool's, but for the
    resources its OS advertises itself (Bottlerocket's NVIDIA nodes)."""
    return {
        spec.vendor
        for pool in pools
        for spec in pool.specs()
        if spec.accelerator_resource not in pool.node_os.builtin_device_resources
    }


def default_pools() -> tuple[NodePoolProps, ...]:
    return (
        NodePoolProps(name="gpu", kind=PoolKind.NVIDIA),
        NodePoolProps(name="inferentia", kind=PoolKind.NEURON),
        NodePoolProps(name="cpu", kind=PoolKind.CPU),
    )
