"""Kueue flavors and quotas derived from the training node groups and the catalog."""

from __future__ import annotations

from ..k8s import FlavorQuota
from .node_group import NODE_GROUP_LABEL, TrainingNodeGroup


def flavor_quota(group: TrainingNodeGroup) -> FlavorQuota:
    """The whole group at its maximum size: every accelerator, EFA interface, vCPU and MiB it can have."""
    spec, nodes = group.spec, group.max_size
    quotas: dict[str, int | str] = {
        "cpu": spec.vcpus * nodes,
        "memory": f"{spec.memory_mib * nodes}Mi",
        spec.accelerator_resource: spec.accelerator_count * nodes,
    }
    if spec.efa_interfaces:
        quotas["vpc.amazonaws.com/efa"] = spec.efa_interfaces * nodes
    return FlavorQuota(
        name=group.name, node_labels={NODE_GROUP_LABEL: group.name}, taint_key=group.taint_key, quotas=quotas
    )
