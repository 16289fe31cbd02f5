"""Kueue flavors and quotas derived from the training node groups and the catalog."""

from __future__ import annotations

from ..catalog.topology import network_layers
from ..k8s import FlavorQuota
from ..k8s.burn_in import BURN_IN_KEY, PASSED
from .node_group import NODE_GROUP_LABEL, TrainingNodes


def flavor_quota(group: TrainingNodes, *, topology_aware: bool = True) -> FlavorQuota:
    """The whole group at its maximum size: every vCPU, MiB and device-plugin resource it can have.

    Device resources are the catalog's ``advertised_resources`` (GPUs or Neuron devices, logical
    NeuronCores, EFA devices), so a job that asks for NeuronCores instead of devices is admitted too.
    """
    spec, nodes = group.spec, group.max_size
    quotas: dict[str, int | str] = {"cpu": spec.vcpus * nodes, "memory": f"{spec.memory_mib * nodes}Mi"}
    quotas.update({resource: count * nodes for resource, count in spec.advertised_resources().items()})
    # Jobs land only on nodes whose burn-in passed (the flavor's labels become the pods' node selector).
    return FlavorQuota(
        name=group.name,
        node_labels={NODE_GROUP_LABEL: group.name, BURN_IN_KEY: PASSED},
        taint_key=group.taint_key,
        quotas=quotas,
        topology_layers=network_layers(spec.name) if topology_aware else 0,
    )
