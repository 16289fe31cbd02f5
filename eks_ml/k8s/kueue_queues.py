"""Kueue objects for a training namespace: a ResourceFlavor per node group, one ClusterQueue with each
group's quota, and the LocalQueue that jobs name in their ``kueue.x-k8s.io/queue-name`` label."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import cdk8s
from constructs import Construct

from . import pod_security
from .kueue_topology import add_topology, topology_name

KUEUE_API = "kueue.x-k8s.io/v1beta2"
QUEUE_NAME_LABEL = "kueue.x-k8s.io/queue-name"
# Covered resources in a stable order; a ClusterQueue's flavors must all list the same resources.
RESOURCE_ORDER = (
    "cpu",
    "memory",
    "nvidia.com/gpu",
    "aws.amazon.com/neuron",
    "aws.amazon.com/neuroncore",
    "vpc.amazonaws.com/efa",
)


@dataclass(frozen=True, kw_only=True)
class FlavorQuota:
    """One node group as a Kueue ResourceFlavor: how to land on it and how much of it there is."""

    name: str
    node_labels: Mapping[str, str]
    taint_key: str
    quotas: Mapping[str, int | str]
    # EC2 network layers EKS labels the group's nodes with (eks_ml.catalog.topology); 0: no Topology-Aware
    # Scheduling for this flavor.
    topology_layers: int = 0


@dataclass(frozen=True, kw_only=True)
class TrainingQueuesValues:
    namespace: str = "training"
    cluster_queue: str = "training"
    local_queue: str = "training"
    flavors: Sequence[FlavorQuota]
    # With teams (eks_ml.k8s.kueue_teams): the cohort the production queue shares quota in, and its preemption.
    cohort: str | None = None
    preemption: Mapping[str, Any] | None = None


def covered_resources(flavors: Sequence[FlavorQuota]) -> list[str]:
    present = {resource for flavor in flavors for resource in flavor.quotas}
    unknown = present - set(RESOURCE_ORDER)
    if unknown:
        # A quota the ClusterQueue silently left out would make every job requesting it inadmissible.
        raise ValueError(f"no place in RESOURCE_ORDER for {sorted(unknown)}")
    return [resource for resource in RESOURCE_ORDER if resource in present]


class TrainingQueuesChart(cdk8s.Chart):
    """The namespace jobs run in and its Kueue queues.

    Each flavor carries the node group's labels and a toleration for its accelerator taint; Kueue
    injects both into the pods it admits, so jobs only name the queue. Admission is all-or-nothing
    through the controller's waitForPodsReady setting (see eks_ml.training.software).
    """

    def __init__(self, scope: Construct, construct_id: str, values: TrainingQueuesValues) -> None:
        super().__init__(scope, construct_id, disable_resource_name_hashes=True)
        self.local_queue = values.local_queue
        self.cluster_queue = values.cluster_queue
        # baseline, not restricted: the training images (PyTorch, NeMo and Neuron deep learning containers) run as
        # root, which restricted refuses; their pods need nothing beyond baseline (devices come from device plugins).
        self.namespace_object = pod_security.namespace(
            self, "Namespace", values.namespace, pod_security.PodSecurityLevel.BASELINE
        )
        resources = covered_resources(values.flavors)
        # One Topology per layer count in use; a flavor naming it lets Kueue place gangs by network proximity.
        for layers in sorted({flavor.topology_layers for flavor in values.flavors if flavor.topology_layers}):
            add_topology(self, layers)
        for flavor in values.flavors:
            self._object(
                f"Flavor-{flavor.name}",
                "ResourceFlavor",
                flavor.name,
                {
                    "nodeLabels": dict(flavor.node_labels),
                    "tolerations": [{"key": flavor.taint_key, "operator": "Exists", "effect": "NoSchedule"}],
                    **({"topologyName": topology_name(flavor.topology_layers)} if flavor.topology_layers else {}),
                },
            )
        cluster_queue = self._object(
            "ClusterQueue",
            "ClusterQueue",
            values.cluster_queue,
            {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": values.namespace}},
                # Large gang jobs keep their place instead of being overtaken by small ones.
                "queueingStrategy": "StrictFIFO",
                **({"cohortName": values.cohort} if values.cohort else {}),
                **({"preemption": dict(values.preemption)} if values.preemption else {}),
                "resourceGroups": [
                    {
                        "coveredResources": resources,
                        "flavors": [
                            {
                                "name": flavor.name,
                                "resources": [
                                    {"name": resource, "nominalQuota": flavor.quotas.get(resource, 0)}
                                    for resource in resources
                                ],
                            }
                            for flavor in values.flavors
                        ],
                    }
                ],
            },
        )
        local_queue = self._object(
            "LocalQueue", "LocalQueue", values.local_queue, {"clusterQueue": values.cluster_queue}, values.namespace
        )
        local_queue.add_dependency(self.namespace_object)
        local_queue.add_dependency(cluster_queue)

    def _object(
        self, construct_id: str, kind: str, name: str, spec: dict[str, Any], namespace: str | None = None
    ) -> cdk8s.ApiObject:
        obj = cdk8s.ApiObject(
            self,
            construct_id,
            api_version=KUEUE_API,
            kind=kind,
            metadata=cdk8s.ApiObjectMetadata(name=name, namespace=namespace),
        )
        obj.add_json_patch(cdk8s.JsonPatch.add("/spec", spec))
        return obj
