"""An opt-in training pool provisioned by Karpenter (pinned 1.14.1), beside the managed node groups.

One instance type per pool: the EC2NodeClass's network interfaces are a per-type layout (EFA-only on every
EFA-capable card), so a pool that mixed types would get the wrong layout on some of them. Facts from the
pinned CRDs (karpenter chart 1.14.1, crds/karpenter.k8s.aws_ec2nodeclasses.yaml and karpenter.sh_nodepools.yaml):

| field                                      | where         | values used here                               |
|--------------------------------------------|---------------|------------------------------------------------|
| spec.networkInterfaces[].interfaceType     | EC2NodeClass  | interface (primary, card 0 device 0), efa-only |
| spec.placementGroupSelector.name           | EC2NodeClass  | an existing cluster placement group's name     |
| spec.capacityReservationSelectorTerms[].id | EC2NodeClass  | cr-... (an ODCR or a Capacity Block)           |
| status.capacityReservations[].reservationType | EC2NodeClass | default, capacity-block                       |
| spec.disruption.consolidationPolicy        | NodePool      | WhenEmpty                                      |
| spec.disruption.budgets[].reasons          | NodePool      | Underutilized, Empty, Drifted                  |
| spec.template.spec.expireAfter             | NodePool      | Never                                          |
| spec.template.spec.startupTaints           | NodePool      | eks-ml.io/burn-in=pending:NoSchedule           |

Node labels Karpenter sets that the requirements use (karpenter docs, "NodePools" and "Capacity
Reservations"): ``karpenter.sh/capacity-type`` (``reserved`` for reservations and Capacity Blocks) and
``karpenter.k8s.aws/capacity-reservation-type`` (``default`` or ``capacity-block``, as the status enum above).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from ..catalog import InstanceSpec, lookup
from ..errors import Problems
from ..guards import expect_all, expect_bool, expect_enum, expect_instance, expect_int, expect_str, expect_str_map
from ..k8s.burn_in import BURN_IN_KEY, PENDING
from ..k8s.karpenter_pools import NODECLASS_API, NODEPOOL_API
from ..kube_names import check_dns_label, check_labels
from ..placement import Taint
from .capacity import Capacity, CapacitySource
from .efa import EfaLayout
from .node_group import (
    ACCELERATOR_LABEL,
    MAX_GP3_GIB,
    MIN_ROOT_VOLUME_GIB,
    NAME_MAX,
    NODE_GROUP_LABEL,
    NODE_ROLE_LABEL,
    TRAINING_FAMILIES,
    training_instance_types,
)

KARPENTER_POOL_LABEL = "eks-ml.io/karpenter-pool"
CAPACITY_TYPE_LABEL = "karpenter.sh/capacity-type"
RESERVATION_TYPE_LABEL = "karpenter.k8s.aws/capacity-reservation-type"
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
ZONE_LABEL = "topology.kubernetes.io/zone"
# No karpenter.sh/do-not-disrupt pod annotation is needed: the NodePool itself never voluntarily disrupts a node
# with pods (WhenEmpty, expireAfter Never, a zero Drifted budget). Involuntary events (EC2 interruptions, a
# Capacity Block's end) drain nodes whatever the annotation says; checkpoints cover those.
MAX_NODES = 1000
_RESERVATION_TYPE = {
    CapacitySource.CAPACITY_RESERVATION: "default",
    CapacitySource.CAPACITY_BLOCK: "capacity-block",
}


@dataclass(frozen=True, kw_only=True)
class TrainingKarpenterPoolProps:
    """A Karpenter NodePool + EC2NodeClass of identical EFA-wired training nodes.

    name: the NodePool and EC2NodeClass name, the label ``eks-ml.io/karpenter-pool`` and the Kueue flavor.
    instance_type: an EFA-capable training type. Default: p5.48xlarge.
    max_nodes: the most nodes the pool may hold (a NodePool limit on accelerators). Default: 2.
    capacity: Default: On-Demand. With a reservation or Capacity Block, nodes come only from it
        (``karpenter.sh/capacity-type=reserved``).
    placement_group: Default: a cluster placement group for On-Demand, none for reserved capacity.
    efa_layout: Default: an ENA primary and an EFA-only interface on every EFA-capable card.
    empty_after: how long an empty node stays before Karpenter removes it. Default: 30m.
    root_volume_gib: Default: 200 GiB gp3.
    labels: extra node labels.
    """

    name: str
    instance_type: str = "p5.48xlarge"
    max_nodes: int = 2
    capacity: Capacity = field(default_factory=Capacity.on_demand)
    placement_group: bool | None = None
    efa_layout: EfaLayout = EfaLayout.EFA_ONLY
    empty_after: str = "30m"
    root_volume_gib: int = 200
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def uses_placement_group(self) -> bool:
        return self.capacity.uses_placement_group(self.placement_group)

    def _check_shapes(self, field: str, problems: Problems) -> bool:
        return expect_all(
            expect_str(self.name, f"{field}.name", problems),
            expect_str(self.instance_type, f"{field}.instance_type", problems),
            expect_int(self.max_nodes, f"{field}.max_nodes", problems, minimum=1, maximum=MAX_NODES),
            expect_instance(
                self.capacity,
                Capacity,
                f"{field}.capacity",
                problems,
                fix="use Capacity.on_demand(), .reservation(id) or .capacity_block(id)",
            ),
            self.placement_group is None or expect_bool(self.placement_group, f"{field}.placement_group", problems),
            expect_enum(self.efa_layout, EfaLayout, f"{field}.efa_layout", problems),
            expect_str(self.empty_after, f"{field}.empty_after", problems),
            expect_int(
                self.root_volume_gib,
                f"{field}.root_volume_gib",
                problems,
                minimum=MIN_ROOT_VOLUME_GIB,
                maximum=MAX_GP3_GIB,
            ),
            expect_str_map(self.labels, f"{field}.labels", problems),
        )

    def check(self, field: str, problems: Problems) -> InstanceSpec | None:
        """Add the pool's problems; the catalog record of its type, or None when it is unusable."""
        if not self._check_shapes(field, problems):
            return None
        check_dns_label(self.name, f"{field}.name", problems, max_length=NAME_MAX)
        check_labels(self.labels, f"{field}.labels", problems)
        # A window's instance_count must cover every node the pool may launch, as for a node group's max_size.
        self.capacity.check(f"{field}.capacity", problems, max_size=self.max_nodes, size_field="pool's max_nodes")
        if self.placement_group and self.capacity.is_reserved:
            problems.add(
                f"{field}.placement_group",
                True,
                "no forced placement group with a capacity reservation or Capacity Block",
                "drop placement_group: the reservation already fixes placement, and forcing a group can fail "
                "the launch",
            )
        if not _is_duration(self.empty_after):
            problems.add(
                f"{field}.empty_after",
                self.empty_after,
                "a duration like 30m or 1h (digits then s, m or h)",
                "use e.g. 30m: an empty node is removed that long after its last pod left",
            )
        spec = None
        with problems.collecting():
            spec = lookup(self.instance_type, field=f"{field}.instance_type")
        if spec is not None and (spec.family not in TRAINING_FAMILIES or not spec.supports_efa):
            problems.add(
                f"{field}.instance_type",
                self.instance_type,
                f"an EFA-capable training type: {', '.join(training_instance_types())}",
                "use InferenceCluster for inference types, or pick a training type",
            )
            return None
        return spec


def _is_duration(value: str) -> bool:
    digits = value[:-1]
    return len(value) >= 2 and value[-1] in "smh" and digits.isdigit()


@dataclass(frozen=True, kw_only=True)
class KarpenterNodeSetting:
    """What the cluster knows and the pool does not: node role, AMI alias, subnets and security groups."""

    role: str
    ami_alias: str
    # Tags, not ids: EC2NodeClass ids must match ^subnet-/^sg- patterns, and CDK-made ids are tokens at synth.
    subnet_tags: Mapping[str, str]
    security_group_tags: Sequence[Mapping[str, str]]  # each selects one group; the terms are ORed
    zone: str | None = None  # the one AZ of the pool (EFA, placement group, the Lustre file system)
    tags: Mapping[str, str] = field(default_factory=dict)


def pool_labels(props: TrainingKarpenterPoolProps, spec: InstanceSpec) -> dict[str, str]:
    """The labels every node of the pool carries: the Kueue flavor and burn-in select on them."""
    return {
        NODE_ROLE_LABEL: "training",
        # The same group label as a managed node group's: burn-in and the Kueue flavor select on it.
        NODE_GROUP_LABEL: props.name,
        KARPENTER_POOL_LABEL: props.name,
        ACCELERATOR_LABEL: spec.vendor.value,
        **props.labels,
    }


def pool_taints(spec: InstanceSpec) -> list[dict[str, str]]:
    # Only pods that tolerate the accelerator taint (training jobs, device plugins) land on these nodes.
    return [{"key": spec.accelerator_resource, "value": "true", "effect": "NoSchedule"}]


def startup_taints() -> list[dict[str, str]]:
    # Karpenter ignores startup taints when it decides a pending pod fits; only the burn-in DaemonSet
    # (eks_ml.training.burn_in) lifts this one, once the node's hardware passed. Jobs never tolerate it.
    return [{"key": BURN_IN_KEY, "value": PENDING, "effect": "NoSchedule"}]


def node_class(
    props: TrainingKarpenterPoolProps,
    spec: InstanceSpec,
    setting: KarpenterNodeSetting,
    *,
    placement_group_name: str | None,
) -> dict[str, Any]:
    """The EC2NodeClass: the catalog's EFA layout, the placement group, the reservation."""
    body: dict[str, Any] = {
        "role": setting.role,
        "amiSelectorTerms": [{"alias": setting.ami_alias}],
        "subnetSelectorTerms": [{"tags": dict(setting.subnet_tags)}],
        "securityGroupSelectorTerms": [{"tags": dict(tags)} for tags in setting.security_group_tags],
        "networkInterfaces": [
            {
                "networkCardIndex": slot.network_card_index,
                "deviceIndex": slot.device_index,
                "interfaceType": slot.interface_type,
            }
            for slot in spec.network_interface_layout(ena_on_every_card=props.efa_layout is EfaLayout.ENA_ON_EVERY_CARD)
        ],
        "metadataOptions": {"httpEndpoint": "enabled", "httpTokens": "required", "httpPutResponseHopLimit": 2},
        "blockDeviceMappings": [
            {
                "deviceName": "/dev/xvda",
                "rootVolume": True,
                "ebs": {
                    "volumeSize": f"{props.root_volume_gib}Gi",
                    "volumeType": "gp3",
                    "encrypted": True,
                    "deleteOnTermination": True,
                },
            }
        ],
        # The local NVMe becomes one RAID0 for containerd and kubelet, as on the managed node groups.
        "instanceStorePolicy": "RAID0",
        "tags": {**setting.tags, KARPENTER_POOL_LABEL: props.name},
    }
    if placement_group_name is not None:
        body["placementGroupSelector"] = {"name": placement_group_name}
    if props.capacity.is_reserved:
        body["capacityReservationSelectorTerms"] = [{"id": props.capacity.reservation_id}]
    return {
        "apiVersion": NODECLASS_API,
        "kind": "EC2NodeClass",
        "metadata": {"name": props.name},
        "spec": body,
    }


def node_pool(props: TrainingKarpenterPoolProps, spec: InstanceSpec, *, zone: str | None = None) -> dict[str, Any]:
    """The NodePool: one type, reserved or On-Demand capacity, never consolidating a node with a job on it."""
    requirements: list[dict[str, Any]] = [
        {"key": INSTANCE_TYPE_LABEL, "operator": "In", "values": [spec.name]},
        {
            "key": CAPACITY_TYPE_LABEL,
            "operator": "In",
            "values": ["reserved" if props.capacity.is_reserved else "on-demand"],
        },
    ]
    if zone is not None:
        requirements.append({"key": ZONE_LABEL, "operator": "In", "values": [zone]})
    if props.capacity.is_reserved:
        requirements.append(
            {"key": RESERVATION_TYPE_LABEL, "operator": "In", "values": [_RESERVATION_TYPE[props.capacity.source]]}
        )
    return {
        "apiVersion": NODEPOOL_API,
        "kind": "NodePool",
        "metadata": {"name": props.name},
        "spec": {
            "template": {
                "metadata": {"labels": pool_labels(props, spec)},
                "spec": {
                    "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": props.name},
                    "requirements": requirements,
                    "taints": pool_taints(spec),
                    "startupTaints": startup_taints(),
                    # A training node is never replaced for age: a run can last weeks. AMI updates come by drift
                    # once the node is empty.
                    "expireAfter": "Never",
                },
            },
            "limits": {spec.accelerator_resource: str(props.max_nodes * spec.accelerator_count)},
            "disruption": {
                # Only empty nodes are removed; a node with a running job on it is never consolidated.
                "consolidationPolicy": "WhenEmpty",
                "consolidateAfter": props.empty_after,
                # Drift (a new AMI, a changed NodeClass) would replace a node with a job on it: its budget is 0.
                # The node picks up the change when it is empty, removed, and launched again.
                "budgets": [
                    {"nodes": "0", "reasons": ["Drifted"]},
                    {"nodes": "10%", "reasons": ["Empty"]},
                ],
            },
        },
    }


def pool_manifests(
    props: TrainingKarpenterPoolProps,
    spec: InstanceSpec,
    setting: KarpenterNodeSetting,
    *,
    placement_group_name: str | None = None,
) -> list[dict[str, Any]]:
    """The EC2NodeClass then the NodePool that names it."""
    return [
        node_class(props, spec, setting, placement_group_name=placement_group_name),
        node_pool(props, spec, zone=setting.zone),
    ]


class TrainingKarpenterPool(Construct):
    """The AWS side of a Karpenter training pool (its cluster placement group) and its manifests.

    Attributes, as a managed node group's (eks_ml.training.node_group.TrainingNodes): ``name``, ``spec``,
    ``max_size`` (``max_nodes``), ``taint_key``, ``taints`` (the accelerator taint and the burn-in startup
    taint), ``labels``; and ``placement_group`` (or None), ``manifests`` (the EC2NodeClass and the NodePool).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        props: TrainingKarpenterPoolProps,
        spec: InstanceSpec,
        setting: KarpenterNodeSetting,
    ) -> None:
        super().__init__(scope, construct_id)
        self.name = props.name
        self.spec = spec
        self.max_size = props.max_nodes
        self.capacity = props.capacity
        self.taint_key = spec.accelerator_resource
        self.labels = pool_labels(props, spec)
        self.taints = tuple(Taint(t["key"], t["value"], t["effect"]) for t in [*pool_taints(spec), *startup_taints()])
        # Karpenter selects a placement group, it does not create one. Ref of a placement group is its name.
        self.placement_group = (
            ec2.CfnPlacementGroup(self, "PlacementGroup", strategy="cluster") if props.uses_placement_group else None
        )
        self.manifests = pool_manifests(
            props,
            spec,
            setting,
            placement_group_name=self.placement_group.ref if self.placement_group is not None else None,
        )
