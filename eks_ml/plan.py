"""What the default app's configuration will build, in numbers: nodes, accelerators, fabric, storage, cost.

``plan_app`` reads the same AppConfig as the app (so a bad configuration raises the same
ValidationError) and needs no AWS account. Costs are On-Demand list-price estimates from the dated table
in ``eks_ml.catalog.prices``; they leave out FSx, EBS, load balancers, NAT and data transfer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from .catalog import InstanceSpec, lookup
from .catalog.prices import EKS_CLUSTER_USD_PER_HOUR, PRICE_REGION, PRICES_AS_OF, on_demand_price
from .cluster.system_nodes import SystemNodesProps
from .config import AppConfig
from .inference.model_service import ModelServiceProps
from .inference.pools import NodePoolProps, default_pools
from .placement import ClusterModel
from .training import LustreProps

DEFAULT_CHECKPOINT_GIB = 500  # the example size; pass your own with --checkpoint-gib


@dataclass(frozen=True)
class NodeLine:
    """One group of identical nodes (a node group, or a model service's nodes at its minimum)."""

    role: str
    instance_type: str
    nodes: int
    accelerators: str
    accelerator_memory_gib: float
    efa_interfaces: int
    network_gbps: float
    usd_per_node_hour: float | None
    # Ranks a distributed job runs per node: GPUs, or logical NeuronCores under the default LNC.
    workers_per_node: int = 0

    @property
    def usd_per_hour(self) -> float | None:
        return None if self.usd_per_node_hour is None else self.usd_per_node_hour * self.nodes


@dataclass(frozen=True)
class StoragePlan:
    storage_gib: int
    throughput_mbps: float
    efa_enabled: bool
    checkpoint_gib: float
    checkpoint_write_seconds: float


@dataclass(frozen=True)
class ClusterPlan:
    name: str
    workload: str
    nodes: list[NodeLine]
    storage: StoragePlan | None = None
    pools: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # Where each workload lands, from the cluster model: "<workload> -> <node source> (<types>)".
    placements: list[str] = field(default_factory=list)

    @property
    def usd_per_hour(self) -> float:
        """Known node prices plus the EKS control plane; unpriced nodes are named in ``notes``."""
        return EKS_CLUSTER_USD_PER_HOUR + sum(line.usd_per_hour or 0.0 for line in self.nodes)


@dataclass(frozen=True)
class AppPlan:
    region: str
    clusters: list[ClusterPlan]
    prices_as_of: str = PRICES_AS_OF
    price_region: str = PRICE_REGION

    @property
    def usd_per_hour(self) -> float:
        return sum(cluster.usd_per_hour for cluster in self.clusters)

    def to_json(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "prices": {"as_of": self.prices_as_of, "region": self.price_region, "kind": "On-Demand list"},
            "usd_per_hour": round(self.usd_per_hour, 2),
            "clusters": [
                {
                    **asdict(cluster),
                    "nodes": [{**asdict(line), "usd_per_hour": line.usd_per_hour} for line in cluster.nodes],
                    "usd_per_hour": round(cluster.usd_per_hour, 2),
                }
                for cluster in self.clusters
            ],
        }


def _line(role: str, spec: InstanceSpec, nodes: int) -> NodeLine:
    return NodeLine(
        role=role,
        instance_type=spec.name,
        nodes=nodes,
        accelerators=_accelerators(spec),
        accelerator_memory_gib=round(spec.total_accelerator_memory_gib, 1),
        efa_interfaces=spec.efa_interfaces,
        network_gbps=spec.network_bandwidth_gbps,
        usd_per_node_hour=on_demand_price(spec.name),
        workers_per_node=spec.workers_per_node,
    )


def _accelerators(spec: InstanceSpec) -> str:
    devices = f"{spec.accelerator_count} x {spec.accelerator_name}"
    return f"{devices} ({spec.neuron_cores} NeuronCores)" if spec.is_neuron else devices


def _system_line(config: AppConfig) -> NodeLine:
    nodes = SystemNodesProps().desired_size
    return NodeLine(
        "system", config.system_instance_type, nodes, "-", 0, 0, 0, on_demand_price(config.system_instance_type)
    )


def _unpriced(lines: list[NodeLine]) -> list[str]:
    return [
        f"no {PRICE_REGION} On-Demand price for {line.instance_type} in the table: left out of the total"
        for line in lines
        if line.usd_per_node_hour is None
    ]


def storage_plan(props: LustreProps, checkpoint_gib: float) -> StoragePlan:
    throughput = props.throughput_mbps
    # FSx throughput is in MB/s (10^6 bytes); checkpoints are sized in GiB (2^30 bytes).
    seconds = checkpoint_gib * 2**30 / (throughput * 10**6)
    return StoragePlan(props.storage_gib, throughput, props.efa_enabled, checkpoint_gib, round(seconds, 1))


def _replicas_per_node(service: ModelServiceProps, spec: InstanceSpec) -> int:
    return max(1, spec.workers_per_node // service.resolved_tensor_parallel(spec))


def _pool(pool: NodePoolProps) -> str:
    if not pool.specs():
        return f"{pool.name}: CPU, up to {pool.cpu_limit} vCPUs"
    families = sorted({spec.family for spec in pool.specs()})
    return (
        f"{pool.name}: {', '.join(families)} ({len(pool.specs())} types), "
        f"up to {pool.accelerator_limit} accelerators, {' or '.join(pool.capacity_types)}"
    )


def placement_lines(model: ClusterModel) -> list[str]:
    """One line per workload: the node sources (and at most three of their instance types) it lands on."""
    lines = []
    for placement in model.prove():
        where = "; ".join(
            f"{source} ({', '.join(types[:3])}{', ...' if len(types) > 3 else ''})"
            for source, types in placement.landings
        )
        lines.append(f"{placement.workload.name} -> {where}")
    return lines


def plan_app(
    config: AppConfig,
    *,
    checkpoint_gib: float = DEFAULT_CHECKPOINT_GIB,
    models: Mapping[str, ClusterModel] | None = None,
) -> AppPlan:
    """The plan of the default app's ``config``; with ``models`` (cluster name -> model of the built
    app) also where each workload lands."""
    models = models or {}
    group = config.training_node_group()
    training_lines = [_line(f"training ({group.name})", lookup(group.instance_type), group.desired_size)]
    if not config.auto_mode:
        training_lines.insert(0, _system_line(config))
    training = ClusterPlan(
        name=config.training_cluster_name,
        workload="training",
        nodes=training_lines,
        storage=storage_plan(LustreProps(), checkpoint_gib),
        notes=_unpriced(training_lines),
        placements=placement_lines(models[config.training_cluster_name])
        if config.training_cluster_name in models
        else [],
    )
    inference_lines = [_system_line(config)] if not config.auto_mode else []
    for service in config.model_services():
        spec = service.spec()
        nodes = math.ceil(service.min_replicas / _replicas_per_node(service, spec))
        inference_lines.append(_line(f"model {service.name}", spec, nodes))
    inference = ClusterPlan(
        name=config.inference_cluster_name,
        workload="inference",
        nodes=inference_lines,
        pools=[_pool(pool) for pool in default_pools()],
        notes=[
            *_unpriced(inference_lines),
            "model nodes are launched by Karpenter (Spot first where a pool allows it); the estimate is "
            "On-Demand at each service's minimum replicas",
        ],
        placements=placement_lines(models[config.inference_cluster_name])
        if config.inference_cluster_name in models
        else [],
    )
    return AppPlan(region=config.region, clusters=[training, inference])
