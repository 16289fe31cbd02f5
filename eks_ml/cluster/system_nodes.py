"""A small Graviton node group for cluster controllers (CoreDNS, Karpenter, Kueue, operators)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from constructs import Construct

from ..errors import Problems
from ..guards import expect_all, expect_instance, expect_int
from ._typing import as_icluster
from .launch_template import secure_launch_template

SYSTEM_NODE_LABEL = "eks-ml.io/node-role"
SYSTEM_NODE_ROLE = "system"
CRITICAL_ADDONS_ONLY = "CriticalAddonsOnly"
AUTO_MODE_SYSTEM_POOL = "system"
MAX_GP3_GIB = 16384  # the largest gp3 volume (16 TiB)
MAX_NODES = 1000  # the EKS managed node group maximum size quota
# EC2 instance sizes (the part after the family): nano ... xlarge, Nxlarge, metal and metal-Nxl.
_SIZE = re.compile(r"^(nano|micro|small|medium|large|xlarge|[1-9]\d*xlarge|metal|metal-[1-9]\d*xl)$")


@dataclass(frozen=True)
class SystemPlacement:
    """Where cluster controllers (Karpenter, Kueue, load balancer controller, Prometheus) run: the
    system node group, or with EKS Auto Mode its built-in ``system`` NodePool, whose nodes carry the
    CriticalAddonsOnly taint and no eks-ml labels."""

    node_selector: dict[str, str]
    tolerations: tuple[dict[str, str], ...] = ()

    def values(self) -> dict[str, object]:
        """nodeSelector and tolerations, in the shape most charts take at their top level."""
        return {"nodeSelector": dict(self.node_selector), "tolerations": [dict(t) for t in self.tolerations]}


MANAGED_SYSTEM_PLACEMENT = SystemPlacement({SYSTEM_NODE_LABEL: SYSTEM_NODE_ROLE})
AUTO_MODE_SYSTEM_PLACEMENT = SystemPlacement(
    {"karpenter.sh/nodepool": AUTO_MODE_SYSTEM_POOL},
    ({"key": CRITICAL_ADDONS_ONLY, "operator": "Exists", "effect": "NoSchedule"},),
)


@dataclass(frozen=True, kw_only=True)
class SystemNodesProps:
    """Sizes of the system node group. Default: two to four m7g.large nodes with 50 GiB roots."""

    instance_type: ec2.InstanceType = ec2.InstanceType("m7g.large")
    min_size: int = 2
    desired_size: int = 2
    max_size: int = 4
    root_volume_gib: int = 50

    def check(self, field: str, problems: Problems) -> None:
        if not expect_all(
            expect_instance(
                self.instance_type,
                ec2.InstanceType,
                f"{field}.instance_type",
                problems,
                fix="pass ec2.InstanceType('m7g.large'), not a string",
            ),
            expect_int(self.min_size, f"{field}.min_size", problems, maximum=MAX_NODES),
            expect_int(self.desired_size, f"{field}.desired_size", problems, maximum=MAX_NODES),
            expect_int(self.max_size, f"{field}.max_size", problems, maximum=MAX_NODES),
            expect_int(self.root_volume_gib, f"{field}.root_volume_gib", problems, maximum=MAX_GP3_GIB),
        ):
            return
        if not 1 <= self.min_size <= self.desired_size <= self.max_size:
            problems.add(
                field,
                {"min": self.min_size, "desired": self.desired_size, "max": self.max_size},
                "1 <= min_size <= desired_size <= max_size",
                "raise max_size or lower min_size/desired_size",
            )
        if self.root_volume_gib < 20:
            problems.add(f"{field}.root_volume_gib", self.root_volume_gib, "at least 20 GiB", "use 50 GiB")
        check_system_instance_type(self.instance_type, f"{field}.instance_type", problems)


def check_system_instance_type(instance_type: ec2.InstanceType, field: str, problems: Problems) -> None:
    name = instance_type.to_string()
    if not _SIZE.match(name.partition(".")[2]):
        # ec2.InstanceType checks the family only: m7g.huge would reach the template and fail at deploy.
        problems.add(field, name, "an EC2 instance type with a real size, such as m7g.large", "fix the size")
        return
    try:
        architecture = instance_type.architecture
    except RuntimeError:  # jsii: an unknown family
        problems.add(field, name, "an EC2 instance type such as m7g.large", "fix the instance type name")
        return
    if architecture is not ec2.InstanceArchitecture.ARM_64:
        problems.add(
            field,
            name,
            "a Graviton (arm64) type such as m7g.large",
            "pick an arm64 type: system nodes run the AL2023 arm64 AMI",
        )


def parse_instance_type(name: str, field: str, problems: Problems) -> ec2.InstanceType | None:
    """``ec2.InstanceType`` for ``name``, or None with a problem (jsii raises on malformed names)."""
    try:
        instance_type = ec2.InstanceType(name)
        instance_type.architecture  # noqa: B018  (validates the family)
    except RuntimeError:
        problems.add(field, name, "an EC2 instance type such as m7g.large", "fix the instance type name")
        return None
    return instance_type


def add_system_nodes(scope: Construct, cluster: eks.Cluster, props: SystemNodesProps) -> eks.Nodegroup:
    template = secure_launch_template(scope, "SystemLaunchTemplate", root_volume_gib=props.root_volume_gib)
    return eks.Nodegroup(
        scope,
        "SystemNodes",
        cluster=as_icluster(cluster),
        instance_types=[props.instance_type],
        ami_type=eks.NodegroupAmiType.AL2023_ARM_64_STANDARD,
        min_size=props.min_size,
        desired_size=props.desired_size,
        max_size=props.max_size,
        labels={SYSTEM_NODE_LABEL: SYSTEM_NODE_ROLE},
        launch_template_spec=eks.LaunchTemplateSpec(
            id=template.launch_template_id or "", version=template.latest_version_number
        ),
        enable_node_auto_repair=True,
        subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
    )
