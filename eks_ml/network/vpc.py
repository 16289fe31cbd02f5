"""A VPC sized for ML pods: one large private subnet per AZ, tagged for Karpenter and load balancers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from aws_cdk import Aws, Stack, Tags
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from ..errors import Problems
from ..guards import expect_all, expect_enum, expect_int, expect_str, expect_str_list
from ..log_encryption import encrypted_log_group, logs_key
from ..nag import acknowledge, acknowledge_inline_policy, nist
from . import rules

# Subnet role tags the AWS Load Balancer Controller uses to discover subnets.
ELB_ROLE_TAG = "kubernetes.io/role/elb"
INTERNAL_ELB_ROLE_TAG = "kubernetes.io/role/internal-elb"
# Karpenter EC2NodeClasses select subnets (and security groups) by this tag.
KARPENTER_DISCOVERY_TAG = "karpenter.sh/discovery"
MAX_TAG_VALUE = 256  # EC2 tag values


class NatGateways(Enum):
    PER_AZ = "perAz"  # one NAT gateway per AZ: an AZ outage does not cut the others' egress
    SINGLE = "single"  # one NAT gateway for the VPC: cheaper, one AZ is a single point of failure


@dataclass(frozen=True, kw_only=True)
class MlVpcProps:
    """Props of :class:`MlVpc`.

    availability_zones: AZ names to use (at least two). AZ names map to different physical zones in
        each account, so choose the ones where your accelerator capacity is.
    cidr: VPC block. Default: 10.0.0.0/16.
    private_subnet_mask: Default: /18 per AZ (16,384 addresses), room for prefix-delegated pods.
    public_subnet_mask: Default: /24 per AZ, for NAT gateways and internet-facing load balancers.
    nat_gateways: Default: one per AZ.
    flow_log_retention: Default: three months of VPC flow logs in CloudWatch Logs.
    discovery_tag_value: value of the ``karpenter.sh/discovery`` tag on private subnets. Default: "eks-ml".
    """

    availability_zones: Sequence[str]
    cidr: str = "10.0.0.0/16"
    private_subnet_mask: int = 18
    public_subnet_mask: int = 24
    nat_gateways: NatGateways = NatGateways.PER_AZ
    flow_log_retention: logs.RetentionDays = logs.RetentionDays.THREE_MONTHS
    discovery_tag_value: str = "eks-ml"


class MlVpc(Construct):
    """VPC with public and private subnets in each AZ, an S3 gateway endpoint and flow logs.

    Attributes: ``vpc``, ``private_subnets`` (a SubnetSelection), ``availability_zones``,
    ``flow_log_group``, ``flow_logs_key``, ``discovery_tag_value``.
    """

    def __init__(self, scope: Construct, construct_id: str, props: MlVpcProps) -> None:
        super().__init__(scope, construct_id)
        region = Stack.of(self).region
        problems = Problems()
        if not expect_all(
            expect_str_list(props.availability_zones, "availability_zones", problems),
            expect_str(props.cidr, "cidr", problems),
            expect_int(props.private_subnet_mask, "private_subnet_mask", problems),
            expect_int(props.public_subnet_mask, "public_subnet_mask", problems),
            expect_enum(props.nat_gateways, NatGateways, "nat_gateways", problems),
            expect_enum(props.flow_log_retention, logs.RetentionDays, "flow_log_retention", problems),
            expect_str(props.discovery_tag_value, "discovery_tag_value", problems),
        ):
            problems.raise_if_any()
        if len(props.discovery_tag_value) > MAX_TAG_VALUE:
            problems.add(
                "discovery_tag_value", props.discovery_tag_value, f"at most {MAX_TAG_VALUE} characters", "shorten it"
            )
        rules.check_availability_zones(props.availability_zones, region, "availability_zones", problems)
        rules.check_vpc_layout(
            props.cidr,
            len(props.availability_zones),
            props.private_subnet_mask,
            props.public_subnet_mask,
            "cidr",
            problems,
        )
        problems.raise_if_any()

        self.availability_zones = tuple(props.availability_zones)
        self.discovery_tag_value = props.discovery_tag_value
        # No fixed name: CloudFormation names the group <stack name>-<logical id>-<random suffix>, so a
        # redeploy after the stack (and its retained group) was deleted creates a new group instead of
        # colliding with the old one. The key may encrypt only groups of this stack's name prefix.
        self.flow_logs_key = logs_key(
            self,
            "FlowLogsKey",
            description="CloudWatch Logs encryption of the VPC flow logs",
            name_patterns=[f"{Aws.STACK_NAME}-*"],
        )
        self.flow_log_group = encrypted_log_group(
            self, "FlowLogs", key=self.flow_logs_key, retention=props.flow_log_retention
        )
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(props.cidr),
            availability_zones=list(props.availability_zones),
            nat_gateways=len(props.availability_zones) if props.nat_gateways is NatGateways.PER_AZ else 1,
            subnet_configuration=[
                ec2.SubnetConfiguration(
                    name="Public",
                    subnet_type=ec2.SubnetType.PUBLIC,
                    cidr_mask=props.public_subnet_mask,
                    map_public_ip_on_launch=False,
                ),
                ec2.SubnetConfiguration(
                    name="Private",
                    subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS,
                    cidr_mask=props.private_subnet_mask,
                ),
            ],
            gateway_endpoints={
                # Image layers (ECR) and training data come from S3: keep that traffic off the NAT.
                "S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3)
            },
            flow_logs={
                "FlowLog": ec2.FlowLogOptions(
                    destination=ec2.FlowLogDestination.to_cloud_watch_logs(self.flow_log_group),
                    traffic_type=ec2.FlowLogTrafficType.ALL,
                )
            },
        )
        flow_log_role = self.vpc.node.find_child("FlowLog").node.find_child("IAMRole")
        assert isinstance(flow_log_role, iam.Role)
        acknowledge_inline_policy(
            flow_log_role,
            "CDK writes the flow log delivery grant (write to this one log group, pass this role) as the inline "
            "policy of the flow log's own role: one policy, one principal, deleted with the role.",
        )
        for subnet in self.vpc.public_subnets:
            Tags.of(subnet).add(ELB_ROLE_TAG, "1")
            # The public subnets hold only the NAT gateways and internet-facing load balancers (no instance gets a
            # public IP: map_public_ip_on_launch is off); both need the default route to the internet gateway.
            acknowledge(
                subnet.node.find_child("DefaultRoute"),
                nist("VPCNoUnrestrictedRouteToIGW"),
                "Public subnet of NAT gateways and internet-facing load balancers, which need 0.0.0.0/0 to the "
                "internet gateway; nodes live in private subnets and instances get no public IP here.",
            )
        for subnet in self.vpc.private_subnets:
            Tags.of(subnet).add(INTERNAL_ELB_ROLE_TAG, "1")
            Tags.of(subnet).add(KARPENTER_DISCOVERY_TAG, props.discovery_tag_value)
        self.private_subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
