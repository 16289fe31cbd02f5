"""What the observability add-on needs to know about the cluster it watches, from either cluster type."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import aws_eks_v2 as eks

from ..catalog import InstanceSpec
from ..cluster import EndpointAccessMode
from ..cluster._typing import as_icluster
from ..cluster.system_nodes import SystemPlacement
from ..inference import InferenceCluster
from ..inference.slo import ServiceLevelObjective
from ..placement import ClusterModel
from ..training import TrainingCluster


@dataclass(frozen=True)
class ObservedCluster:
    """``workload`` is "training" or "inference"; ``namespace`` is where its jobs or model servers run;
    ``endpoint_access`` is None for an imported cluster (eks-ml does not know it); ``model`` is the
    cluster model the add-on's own pods join; ``placement`` is where the cluster's controllers run;
    ``instance_types``: the accelerated instance types its node groups or pools can launch (priced by the
    idle-accelerator alert); ``service_objectives``: (model service name, its SLO) for each model service."""

    cluster: eks.ICluster
    name: str
    workload: str
    namespace: str
    nvidia: bool
    neuron: bool
    efa: bool
    endpoint_access: EndpointAccessMode | None
    model: ClusterModel
    placement: SystemPlacement
    instance_types: tuple[str, ...] = ()
    service_objectives: tuple[tuple[str, ServiceLevelObjective], ...] = ()


def observe(cluster: TrainingCluster | InferenceCluster) -> ObservedCluster:
    if isinstance(cluster, TrainingCluster):
        specs = [group.spec for group in cluster.node_groups.values()]
        return ObservedCluster(
            cluster=cluster.cluster,
            name=cluster.base_cluster_name,
            workload="training",
            namespace=cluster.namespace,
            nvidia=any(spec.is_nvidia for spec in specs),
            neuron=any(spec.is_neuron for spec in specs),
            efa=any(spec.supports_efa for spec in specs),
            endpoint_access=cluster.base.endpoint_access if cluster.base else None,
            model=cluster.model,
            placement=cluster.base.system_placement if cluster.base else SystemPlacement({}),
            instance_types=_accelerated(specs),
        )
    specs = cluster.pool_specs
    return ObservedCluster(
        cluster=as_icluster(cluster.cluster),
        name=cluster.base.cluster_name,
        workload="inference",
        namespace=cluster.namespace,
        nvidia=any(spec.is_nvidia for spec in specs),
        neuron=any(spec.is_neuron for spec in specs),
        efa=False,  # inference pods request no EFA devices (Karpenter pools attach none)
        endpoint_access=cluster.base.endpoint_access,
        model=cluster.model,
        placement=cluster.base.system_placement,
        instance_types=_accelerated(specs),
        service_objectives=tuple((service.name, service.slo) for service in cluster.model_services),
    )


def _accelerated(specs: Sequence[InstanceSpec]) -> tuple[str, ...]:
    return tuple(sorted({spec.name for spec in specs if spec.is_nvidia or spec.is_neuron}))
