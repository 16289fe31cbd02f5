"""What an app builds, in numbers: nodes, accelerators, fabric, storage, where each workload lands, cost.

Each cluster construct records its own :class:`ClusterPlan` as construct metadata (type ``eks-ml:plan``)
when it is built, so the plan describes whatever app synthesizes it: the default app or a user's own, with
any number of stacks and clusters. ``eks-ml plan`` runs the app as ``cdk synth`` does and reads the plans
back from the cloud assembly (:func:`plans_from_assembly`). No AWS account is needed.

Costs are On-Demand list-price estimates from the dated table in ``eks_ml.catalog.prices``; they leave out
FSx, EBS, load balancers, NAT and data transfer. A node type without a price is never counted as free: the
total says which nodes it leaves out.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .catalog import InstanceSpec, lookup
from .catalog.prices import EKS_CLUSTER_USD_PER_HOUR, PRICE_REGION, PRICES_AS_OF, on_demand_price
from .placement import Placement

if TYPE_CHECKING:  # the eks-ml command reads plans without starting jsii
    from constructs import Construct

    from .cluster.system_nodes import SystemNodesProps
    from .inference.model_service import ModelServiceProps
    from .inference.pools import NodePoolProps
    from .inference.triton import TritonServiceProps
    from .training import LustreProps, TrainingNodeGroupProps
    from .training.karpenter_pool import TrainingKarpenterPoolProps
    from .training.storage_classes import StorageClassesProps

DEFAULT_CHECKPOINT_GIB = 500  # the example size; pass your own with --checkpoint-gib
METADATA_TYPE = "eks-ml:plan"


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

    def checkpoint_write_seconds(self, checkpoint_gib: float) -> float:
        # FSx throughput is in MB/s (10^6 bytes); checkpoints are sized in GiB (2^30 bytes).
        return round(checkpoint_gib * 2**30 / (self.throughput_mbps * 10**6), 1)


@dataclass(frozen=True)
class CapacityBlockLine:
    """A node group's Capacity Block: its window, when eks-ml winds work down, and its price beside On-Demand.
    Times are ISO-8601 UTC; prices are per instance-hour (the upfront fee spread over instances and hours)."""

    group: str
    reservation_id: str
    instance_type: str
    instances: int
    start: str
    end: str
    hours: float
    stop_admitting_at: str
    checkpoint_at: str
    termination_starts: str
    upfront_usd: float | None = None
    usd_per_instance_hour: float | None = None
    on_demand_usd_per_instance_hour: float | None = None

    @property
    def on_demand_usd(self) -> float | None:
        """What the same instance-hours would cost On-Demand."""
        if self.on_demand_usd_per_instance_hour is None:
            return None
        return self.on_demand_usd_per_instance_hour * self.instances * self.hours

    @property
    def saving_percent(self) -> float | None:
        """How much cheaper than On-Demand the block is (negative: dearer); None without both prices."""
        if self.usd_per_instance_hour is None or not self.on_demand_usd_per_instance_hour:
            return None
        return 100 * (1 - self.usd_per_instance_hour / self.on_demand_usd_per_instance_hour)


@dataclass(frozen=True)
class ServingLine:
    """What a model service sustains per replica within its SLO, from its benchmark, and what it costs."""

    service: str
    instance_type: str
    output_tokens_per_second: float
    latency_seconds: float
    slo_latency_seconds: float
    slo_percentile: float
    queue_target: int
    usd_per_million_output_tokens: float | None = None
    # Why the replica is slower or costlier than its hardware allows (e.g. FP8 weight-only on an A10G).
    note: str | None = None


@dataclass(frozen=True)
class ClusterPlan:
    name: str
    workload: str
    path: str  # the construct path, which tells clusters of the same name in different apps apart
    nodes: list[NodeLine]
    storage: StoragePlan | None = None
    pools: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # Where each workload lands, from the cluster model: "<workload> -> <node source> (<types>)".
    placements: list[str] = field(default_factory=list)
    # Training only: how often a job's gang is recreated before it fails for good, and the StorageClasses.
    max_restarts: int | None = None
    storage_classes: list[str] = field(default_factory=list)
    capacity_blocks: list[CapacityBlockLine] = field(default_factory=list)
    serving: list[ServingLine] = field(default_factory=list)

    @property
    def unpriced(self) -> list[NodeLine]:
        return [line for line in self.nodes if line.usd_per_node_hour is None]

    @property
    def usd_per_hour(self) -> float:
        """Known node prices plus the EKS control plane; see ``unpriced`` for what it leaves out."""
        return EKS_CLUSTER_USD_PER_HOUR + sum(line.usd_per_hour or 0.0 for line in self.nodes)

    def to_json(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "nodes": [{**asdict(line), "usd_per_hour": line.usd_per_hour} for line in self.nodes],
            "usd_per_hour": round(self.usd_per_hour, 2),
            "unpriced": [line.instance_type for line in self.unpriced],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ClusterPlan:
        storage = data.get("storage")
        return cls(
            name=data["name"],
            workload=data["workload"],
            path=data["path"],
            # Construct metadata drops null values: an unpriced node comes back without its price key.
            nodes=[
                NodeLine(**{"usd_per_node_hour": None, **{k: v for k, v in line.items() if k != "usd_per_hour"}})
                for line in data["nodes"]
            ],
            storage=StoragePlan(**storage) if storage else None,
            pools=list(data.get("pools") or []),
            notes=list(data.get("notes") or []),
            placements=list(data.get("placements") or []),
            max_restarts=data.get("max_restarts"),
            storage_classes=list(data.get("storage_classes") or []),
            capacity_blocks=[CapacityBlockLine(**block) for block in data.get("capacity_blocks") or []],
            serving=[ServingLine(**line) for line in data.get("serving") or []],
        )


@dataclass(frozen=True)
class AppPlan:
    clusters: list[ClusterPlan]
    prices_as_of: str = PRICES_AS_OF
    price_region: str = PRICE_REGION

    @property
    def usd_per_hour(self) -> float:
        return sum(cluster.usd_per_hour for cluster in self.clusters)

    @property
    def unpriced(self) -> list[NodeLine]:
        return [line for cluster in self.clusters for line in cluster.unpriced]

    def to_json(self, checkpoint_gib: float = DEFAULT_CHECKPOINT_GIB) -> dict[str, Any]:
        clusters = []
        for cluster in self.clusters:
            data = cluster.to_json()
            if cluster.storage:
                data["storage"]["checkpoint_gib"] = checkpoint_gib
                data["storage"]["checkpoint_write_seconds"] = cluster.storage.checkpoint_write_seconds(checkpoint_gib)
            clusters.append(data)
        return {
            "prices": {"as_of": self.prices_as_of, "region": self.price_region, "kind": "On-Demand list"},
            "usd_per_hour": round(self.usd_per_hour, 2),
            # False when some node has no price: usd_per_hour then covers only the priced ones.
            "complete": not self.unpriced,
            "unpriced": sorted({line.instance_type for line in self.unpriced}),
            "unpriced_nodes": sum(line.nodes for line in self.unpriced),
            "clusters": clusters,
        }


# ---- what each cluster construct records --------------------------------------------------------------


AUTO_MODE_NOTE = "EKS Auto Mode launches and bills the system nodes itself: not counted"
IMPORTED_NOTE = "the existing cluster's own nodes and control plane are counted as one EKS cluster, no nodes"


def system_nodes_of(base: Any) -> tuple[SystemNodesProps | None, list[str]]:
    """The system node group a BaseClusterProps creates (None with Auto Mode or without a base), and the
    note that says what is not counted."""
    if base is None:
        return None, [IMPORTED_NOTE]
    if base.auto_mode:
        return None, [AUTO_MODE_NOTE]
    return base.system_nodes, []


def record(construct: Construct, plan: ClusterPlan) -> None:
    """Attach ``plan`` to ``construct``; it reaches the cloud assembly as metadata of its stack."""
    construct.node.add_metadata(METADATA_TYPE, plan.to_json())


def training_plan(
    name: str,
    path: str,
    *,
    system: SystemNodesProps | None,
    groups: Sequence[TrainingNodeGroupProps],
    file_system: LustreProps | None,
    placements: Sequence[Placement],
    notes: Sequence[str] = (),
    max_restarts: int | None = None,
    storage_classes: StorageClassesProps | None = None,
    karpenter_pools: Sequence[TrainingKarpenterPoolProps] = (),
) -> ClusterPlan:
    lines = [_system_line(system)] if system else []
    lines += [_line(f"training ({g.name})", lookup(g.instance_type), g.desired_size) for g in groups]
    # Karpenter launches a pool's nodes only while jobs wait for them: none at rest, up to max_nodes.
    lines += [_line(f"training Karpenter pool ({p.name})", lookup(p.instance_type), 0) for p in karpenter_pools]
    notes = [
        *notes,
        *(
            f"Karpenter pool {p.name}: 0 nodes at rest, up to {p.max_nodes} {p.instance_type} while jobs wait "
            f"({'reserved capacity ' + str(p.capacity.reservation_id) if p.capacity.is_reserved else 'On-Demand'})"
            for p in karpenter_pools
        ),
    ]
    sources: list[TrainingNodeGroupProps | TrainingKarpenterPoolProps] = [*groups, *karpenter_pools]
    storage = (
        StoragePlan(file_system.storage_gib, file_system.throughput_mbps, file_system.efa_enabled)
        if file_system
        else None
    )
    return ClusterPlan(
        name,
        "training",
        path,
        lines,
        storage,
        notes=list(notes),
        placements=placement_lines(placements),
        max_restarts=max_restarts,
        storage_classes=storage_classes.summary() if storage_classes is not None else [],
        # Node groups and Karpenter pools alike: a pool on a block has the same window and price.
        capacity_blocks=[block for block in map(_capacity_block, sources) if block is not None],
    )


def _capacity_block(group: TrainingNodeGroupProps | TrainingKarpenterPoolProps) -> CapacityBlockLine | None:
    window, reservation_id = group.capacity.block_window, group.capacity.reservation_id
    if window is None or reservation_id is None:
        return None
    from .training.capacity_block import format_utc  # the eks-ml command reads plans without starting jsii
    from .training.karpenter_pool import TrainingKarpenterPoolProps

    most = group.max_nodes if isinstance(group, TrainingKarpenterPoolProps) else group.resolved_max_size
    instances = window.instance_count or most
    per_hour = window.usd_per_instance_hour(instances)
    return CapacityBlockLine(
        group=group.name,
        reservation_id=reservation_id,
        instance_type=group.instance_type,
        instances=instances,
        start=format_utc(window.start_time),
        end=format_utc(window.end_time),
        hours=round(window.hours, 2),
        stop_admitting_at=format_utc(window.stop_admitting_at),
        checkpoint_at=format_utc(window.checkpoint_at),
        termination_starts=format_utc(window.termination_starts),
        upfront_usd=window.upfront_usd,
        usd_per_instance_hour=None if per_hour is None else round(per_hour, 4),
        on_demand_usd_per_instance_hour=on_demand_price(group.instance_type),
    )


def inference_plan(
    name: str,
    path: str,
    *,
    system: SystemNodesProps | None,
    services: Sequence[ModelServiceProps],
    pools: Sequence[NodePoolProps],
    placements: Sequence[Placement],
    notes: Sequence[str] = (),
    triton: Sequence[TritonServiceProps] = (),
    ami_aliases: Mapping[str, str] | None = None,
) -> ClusterPlan:
    """``triton``: Triton services; a GPU one stands at one GPU per replica, a Fargate one is noted, not priced.
    ``ami_aliases``: node OS (eks_ml.inference.node_os value) -> pinned alias; None with EKS Auto Mode."""
    lines = [_system_line(system)] if system else []
    for service in services:
        spec = service.spec()
        nodes = math.ceil(
            service.min_replicas / max(1, spec.workers_per_node // service.resolved_tensor_parallel(spec))
        )
        lines.append(_line(f"model {service.name}", spec, nodes))
    notes = list(notes)
    for server in triton:
        if server.on_fargate:
            notes.append(
                f"triton {server.name}: {server.min_replicas} Fargate pod(s) of {server.fargate_cpu:g} vCPU / "
                f"{server.fargate_memory_gib:g} GB at the minimum, billed by Fargate (not priced here)"
            )
            continue
        spec = server.spec()
        lines.append(
            _line(f"triton {server.name}", spec, math.ceil(server.min_replicas / max(1, spec.workers_per_node)))
        )
    if services or any(not server.on_fargate for server in triton):
        notes.append(
            "model nodes are launched by Karpenter (Spot first where a pool allows it); the estimate is "
            "On-Demand at each service's minimum replicas"
        )
    return ClusterPlan(
        name,
        "inference",
        path,
        lines,
        pools=[_pool(pool, ami_aliases) for pool in pools],
        notes=notes,
        placements=placement_lines(placements),
        serving=[line for line in map(_serving, services) if line is not None],
    )


def _serving(service: ModelServiceProps) -> ServingLine | None:
    from .inference.quantization import fp8_compute_note  # the eks-ml command reads plans without starting jsii

    if service.benchmark is None:
        return None
    load = service.benchmark.sustainable(service.slo)
    spec = service.spec()
    quantization = service.quantization
    return ServingLine(
        service=service.name,
        instance_type=spec.name,
        output_tokens_per_second=load.output_tokens_per_second,
        latency_seconds=load.latency_seconds,
        slo_latency_seconds=service.slo.latency_seconds,
        slo_percentile=round(service.slo.latency_target * 100, 6),
        queue_target=load.queue_target,
        usd_per_million_output_tokens=load.usd_per_million_output_tokens,
        note=fp8_compute_note(spec) if quantization is not None and quantization.is_fp8 else None,
    )


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


def _system_line(system: SystemNodesProps) -> NodeLine:
    instance_type = system.instance_type.to_string()
    return NodeLine("system", instance_type, system.desired_size, "-", 0, 0, 0, on_demand_price(instance_type))


def _pool(pool: NodePoolProps, ami_aliases: Mapping[str, str] | None) -> str:
    # Which OS the pool's nodes boot: NVIDIA pools default to Bottlerocket, the rest to AL2023.
    os = (
        "on EKS Auto Mode's AMI"
        if ami_aliases is None
        else f"on {_OS_NAMES.get(pool.node_os.value, pool.node_os.value)} ({ami_aliases[pool.node_os.value]})"
    )
    if not pool.specs():
        return f"{pool.name}: CPU, up to {pool.cpu_limit} vCPUs, {os}"
    families = sorted({spec.family for spec in pool.specs()})
    return (
        f"{pool.name}: {', '.join(families)} ({len(pool.specs())} types), "
        f"up to {pool.accelerator_limit} accelerators, {' or '.join(pool.capacity_types)}, {os}"
    )


_OS_NAMES = {"al2023": "AL2023", "bottlerocket": "Bottlerocket"}


def placement_lines(placements: Sequence[Placement]) -> list[str]:
    """One line per workload: the node sources (and at most three of their instance types) it lands on."""
    lines = []
    for placement in placements:
        where = "; ".join(
            f"{source} ({', '.join(types[:3])}{', ...' if len(types) > 3 else ''})"
            for source, types in placement.landings
        )
        lines.append(f"{placement.workload.name} -> {where}")
    return lines


# ---- reading them back --------------------------------------------------------------------------------


def plans_from_assembly(outdir: Path) -> AppPlan:
    """Every cluster plan recorded in the cloud assembly at ``outdir`` (and the nested assemblies of its
    Stages), in stack and construct order."""
    return AppPlan(_cluster_plans(outdir))


def _cluster_plans(outdir: Path) -> list[ClusterPlan]:
    manifest = json.loads((outdir / "manifest.json").read_text())
    clusters: list[ClusterPlan] = []
    for artifact in manifest["artifacts"].values():
        if artifact.get("type") == "cdk:cloud-assembly":  # a Stage (a CDK Pipelines stage, say)
            clusters.extend(_cluster_plans(outdir / artifact["properties"]["directoryName"]))
        if artifact.get("type") != "aws:cloudformation:stack":
            continue
        metadata = dict(artifact.get("metadata") or {})
        if artifact.get("additionalMetadataFile"):
            metadata.update(json.loads((outdir / artifact["additionalMetadataFile"]).read_text()))
        clusters.extend(ClusterPlan.from_json(entry["data"]) for entry in _entries(metadata))
    return clusters


def _entries(metadata: dict[str, Iterable[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [entry for entries in metadata.values() for entry in entries if entry.get("type") == METADATA_TYPE]
