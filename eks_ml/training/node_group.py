"""A training node group: EFA on every network card, one AZ, a cluster placement group or a reservation."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from aws_cdk import Annotations, Fn
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from constructs import Construct

from ..catalog import InstanceSpec, all_instance_types, lookup
from ..cluster.launch_template import IMDS_HOP_LIMIT, ROOT_DEVICE
from ..cluster.nag import acknowledge_node_role
from ..errors import Problems
from ..guards import expect_all, expect_bool, expect_enum, expect_instance, expect_int, expect_str, expect_str_map
from ..k8s.burn_in import BURN_IN_KEY, PENDING
from ..kube_names import check_dns_label, check_labels
from ..placement import Taint
from .capacity import Capacity, CapacitySource
from .efa import EfaLayout, network_interfaces
from .node_config import raid0_user_data

# EFA-capable training families; within them, only sizes with at least one EFA interface.
TRAINING_FAMILIES = ("p4d", "p4de", "p5", "p5e", "p5en", "p6-b200", "p6-b300", "trn1", "trn1n", "trn2")
NODE_ROLE_LABEL = "eks-ml.io/node-role"
NODE_GROUP_LABEL = "eks-ml.io/node-group"
ACCELERATOR_LABEL = "eks-ml.io/accelerator"
MIN_ROOT_VOLUME_GIB = 100  # framework images (CUDA, Neuron SDK) are 10-30 GB each, and layers stack up
MAX_GP3_GIB = 16384  # the largest gp3 volume (16 TiB)
MAX_NODES = 1000  # the EKS managed node group maximum size quota
NAME_MAX = 31  # the name is a node label value, a Kueue flavor and part of construct ids


# Fine-tuning types: single-node jobs need no EFA between nodes, so smaller types qualify too: g6e (L40S), and the
# training families' sizes with at most one EFA interface (p5.4xlarge, trn1.2xlarge).
FINE_TUNING_FAMILIES = ("g6e",)
MULTI_NODE_MIN_EFA = 2
class TrainingNodes(Protocol):
    """Identical training nodes from any source (a managed node group, a Karpenter pool): what burn-in, the
    Kueue flavor, the device plugins and the example jobs need. ``labels`` carry ``eks-ml.io/node-group``."""

    @property
    def name(self) -> str: ...
    @property
    def spec(self) -> InstanceSpec: ...
    @property
    def max_size(self) -> int: ...
    @property
    def taint_key(self) -> str: ...
    @property
    def capacity(self) -> Capacity: ...


def training_instance_types() -> tuple[str, ...]:
    return tuple(s.name for s in all_instance_types() if s.family in TRAINING_FAMILIES and s.supports_efa)


def is_fine_tuning_type(spec: InstanceSpec) -> bool:
    """A type for single-node jobs: too small (or without the EFA) for whole-node multi-node training."""
    if spec.family in FINE_TUNING_FAMILIES:
        return True
    return spec.family in TRAINING_FAMILIES and spec.efa_interfaces < MULTI_NODE_MIN_EFA


def fine_tuning_instance_types() -> tuple[str, ...]:
    return tuple(s.name for s in all_instance_types() if is_fine_tuning_type(s))


def accepted_instance_types() -> tuple[str, ...]:
    """Every type a training node group accepts: the EFA training types and the fine-tuning types."""
    accepted = set(training_instance_types()) | set(fine_tuning_instance_types())
    return tuple(s.name for s in all_instance_types() if s.name in accepted)


@dataclass(frozen=True, kw_only=True)
class TrainingNodeGroupProps:
    """One group of identical training nodes.

    name: names the group (label ``eks-ml.io/node-group``, Kueue flavor); renaming replaces the group.
    instance_type: an EFA-capable training type, or a fine-tuning type (``fine_tuning_instance_types()``: g6e,
        p5.4xlarge, trn1.2xlarge) whose nodes run single-node jobs only. Default: p5.48xlarge.
    desired_size / min_size / max_size: Default: two nodes, scalable down to zero.
    availability_zone: the one AZ of the group. Default: the VPC's first private-subnet AZ.
    capacity: Default: On-Demand. A reservation or Capacity Block must be in ``availability_zone``.
    placement_group: Default: a cluster placement group for On-Demand, none for reserved capacity.
    efa_layout: Default: an ENA primary and an EFA-only interface on every EFA-capable card (one IP address).
    root_volume_gib: Default: 200 GiB gp3 (images and scratch go to the NVMe RAID0).
    labels: extra node labels.
    """

    name: str
    instance_type: str = "p5.48xlarge"
    desired_size: int = 2
    min_size: int = 0
    max_size: int | None = None
    availability_zone: str | None = None
    capacity: Capacity = field(default_factory=Capacity.on_demand)
    placement_group: bool | None = None
    efa_layout: EfaLayout = EfaLayout.EFA_ONLY
    root_volume_gib: int = 200
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def resolved_max_size(self) -> int:
        return self.desired_size if self.max_size is None else self.max_size

    @property
    def uses_placement_group(self) -> bool:
        return self.capacity.uses_placement_group(self.placement_group)

    def _check_shapes(self, field: str, problems: Problems) -> bool:
        return expect_all(
            expect_str(self.name, f"{field}.name", problems),
            expect_str(self.instance_type, f"{field}.instance_type", problems),
            expect_int(self.desired_size, f"{field}.desired_size", problems, maximum=MAX_NODES),
            expect_int(self.min_size, f"{field}.min_size", problems, maximum=MAX_NODES),
            self.max_size is None or expect_int(self.max_size, f"{field}.max_size", problems, maximum=MAX_NODES),
            expect_str(self.availability_zone, f"{field}.availability_zone", problems, optional=True),
            expect_instance(
                self.capacity,
                Capacity,
                f"{field}.capacity",
                problems,
                fix="use Capacity.on_demand() or .reservation(id)",
            ),
            self.placement_group is None or expect_bool(self.placement_group, f"{field}.placement_group", problems),
            expect_enum(self.efa_layout, EfaLayout, f"{field}.efa_layout", problems),
            expect_int(self.root_volume_gib, f"{field}.root_volume_gib", problems, maximum=MAX_GP3_GIB),
            expect_str_map(self.labels, f"{field}.labels", problems),
        )

    def check(self, field: str, problems: Problems) -> InstanceSpec | None:
        if not self._check_shapes(field, problems):
            return None
        check_dns_label(self.name, f"{field}.name", problems, max_length=NAME_MAX)
        spec = None
        with problems.collecting():
            spec = lookup(self.instance_type, field=f"{field}.instance_type")
        if spec is not None and spec.name not in accepted_instance_types():
            problems.add(
                f"{field}.instance_type",
                self.instance_type,
                f"an EFA-capable training type or a fine-tuning type: {', '.join(accepted_instance_types())}",
                "use InferenceCluster for inference types, or pick a training or fine-tuning type",
            )
            spec = None
        sizes = {"min": self.min_size, "desired": self.desired_size, "max": self.resolved_max_size}
        if not 0 <= self.min_size <= self.desired_size <= self.resolved_max_size or self.resolved_max_size < 1:
            problems.add(
                f"{field}.sizes", sizes, "0 <= min_size <= desired_size <= max_size, max_size >= 1", "fix the sizes"
            )
        self.capacity.check(f"{field}.capacity", problems, max_size=self.resolved_max_size)
        if self.placement_group and self.capacity.is_reserved:
            problems.add(
                f"{field}.placement_group",
                True,
                "no forced placement group with a capacity reservation or Capacity Block",
                "drop placement_group: the reservation already fixes placement, and forcing a group can fail "
                "the launch",
            )
        if self.root_volume_gib < MIN_ROOT_VOLUME_GIB:
            problems.add(
                f"{field}.root_volume_gib",
                self.root_volume_gib,
                f"at least {MIN_ROOT_VOLUME_GIB} GiB",
                "use the default 200 GiB; scratch space is on the NVMe RAID0",
            )
        check_labels(self.labels, f"{field}.labels", problems)
        return spec


def _taints(spec: InstanceSpec) -> tuple[Taint, ...]:
    return (
        # Only pods that tolerate the accelerator taint (training jobs, device plugins) land on these nodes.
        Taint(spec.accelerator_resource, "true", "NoSchedule"),
        # The startup taint: only the burn-in DaemonSet (eks_ml.training.burn_in) lifts it, once the node's
        # hardware matched the catalog and passed the vendor diagnostics. Training jobs never tolerate it.
        Taint(BURN_IN_KEY, PENDING, "NoSchedule"),
    )


def _taint_spec(taint: Taint) -> eks.TaintSpec:
    assert taint.effect == "NoSchedule"  # the only effect eks-ml sets on training nodes
    return eks.TaintSpec(effect=eks.TaintEffect.NO_SCHEDULE, key=taint.key, value=taint.value)


class TrainingNodeGroup(Construct):
    """An EKS managed node group of EFA-wired training nodes.

    Attributes: ``name``, ``max_size``, ``spec`` (catalog record), ``nodegroup``, ``launch_template``,
    ``placement_group`` (or None), ``subnet``, ``labels`` (the node labels pods select on), ``taint_key`` (the
    accelerator taint's key), ``taints`` (every taint a node joins with: the accelerator taint and the burn-in
    startup taint).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster: eks.ICluster,
        subnet: ec2.ISubnet,
        security_group_ids: list[str],
        spec: InstanceSpec,
        props: TrainingNodeGroupProps,
    ) -> None:
        super().__init__(scope, construct_id)
        self.spec = spec
        self.subnet = subnet
        self.name = props.name
        self.max_size = props.resolved_max_size
        self.capacity = props.capacity
        self.taint_key = spec.accelerator_resource
        self.taints = _taints(spec)
        self.labels = {
            NODE_ROLE_LABEL: "training",
            NODE_GROUP_LABEL: props.name,
            ACCELERATOR_LABEL: spec.vendor.value,
            **props.labels,
        }
        self.placement_group = (
            ec2.CfnPlacementGroup(self, "PlacementGroup", strategy="cluster") if props.uses_placement_group else None
        )
        self.launch_template = ec2.CfnLaunchTemplate(
            self,
            "LaunchTemplate",
            launch_template_data=self._launch_template_data(spec, props, security_group_ids),
        )
        self.nodegroup = eks.Nodegroup(
            self,
            "Nodes",
            cluster=cluster,
            launch_template_spec=eks.LaunchTemplateSpec(
                id=self.launch_template.ref, version=self.launch_template.attr_latest_version_number
            ),
            subnets=ec2.SubnetSelection(subnets=[subnet]),
            min_size=props.min_size,
            desired_size=props.desired_size,
            max_size=props.resolved_max_size,
            labels=self.labels,
            taints=[_taint_spec(taint) for taint in self.taints],
            enable_node_auto_repair=True,
            capacity_type=(
                eks.CapacityType.CAPACITY_BLOCK
                if props.capacity.source is CapacitySource.CAPACITY_BLOCK
                else eks.CapacityType.ON_DEMAND
            ),
        )
        # aws_eks_v2 does not know p5/p6/trn are accelerated (it would pick a non-GPU AMI): set the AMI
        # type from the catalog on the L1. The instance type is in the launch template.
        cfn = self.nodegroup.node.default_child
        assert isinstance(cfn, eks.CfnNodegroup)
        cfn.ami_type = spec.ami_type
        acknowledge_node_role(self.nodegroup)
        if props.capacity.source is CapacitySource.CAPACITY_BLOCK and props.desired_size > 0:
            Annotations.of(self).add_warning_v2(
                "eks-ml:capacity-block-desired-size",
                f"Node group {props.name} uses a Capacity Block with desired_size={props.desired_size}: nodes "
                "launch only while the block is active; set desired_size to 0 before it starts or ends, and "
                "before node group upgrades.",
            )

    def _launch_template_data(
        self, spec: InstanceSpec, props: TrainingNodeGroupProps, group_ids: list[str]
    ) -> ec2.CfnLaunchTemplate.LaunchTemplateDataProperty:
        reservation = (
            ec2.CfnLaunchTemplate.CapacityReservationSpecificationProperty(
                capacity_reservation_target=ec2.CfnLaunchTemplate.CapacityReservationTargetProperty(
                    capacity_reservation_id=props.capacity.reservation_id
                )
            )
            if props.capacity.is_reserved
            else None
        )
        return ec2.CfnLaunchTemplate.LaunchTemplateDataProperty(
            instance_type=spec.name,
            network_interfaces=network_interfaces(spec, props.efa_layout, group_ids),
            placement=(
                ec2.CfnLaunchTemplate.PlacementProperty(group_name=self.placement_group.ref)
                if self.placement_group
                else None
            ),
            capacity_reservation_specification=reservation,
            instance_market_options=(
                ec2.CfnLaunchTemplate.InstanceMarketOptionsProperty(market_type="capacity-block")
                if props.capacity.source is CapacitySource.CAPACITY_BLOCK
                else None
            ),
            metadata_options=ec2.CfnLaunchTemplate.MetadataOptionsProperty(
                http_tokens="required", http_put_response_hop_limit=IMDS_HOP_LIMIT
            ),
            block_device_mappings=[
                ec2.CfnLaunchTemplate.BlockDeviceMappingProperty(
                    device_name=ROOT_DEVICE,
                    ebs=ec2.CfnLaunchTemplate.EbsProperty(
                        volume_size=props.root_volume_gib,
                        volume_type="gp3",
                        encrypted=True,
                        delete_on_termination=True,
                    ),
                )
            ],
            user_data=Fn.base64(raid0_user_data()),
        )
