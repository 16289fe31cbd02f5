"""The Karpenter controller's IAM policy, statement by statement as Karpenter v1's reference policy has it.

Source: the getting-started CloudFormation template of the pinned release's docs
(aws/karpenter-provider-aws, website/content/en/v1.14/getting-started/getting-started-with-karpenter/
cloudformation.yaml). Every statement keeps its upstream Sid, actions, resources and conditions; the one
deliberate omission is named in ``OMITTED``. Launches are allowed only for resources that carry this
cluster's ownership tags, deletes only for resources that already carry them, and reads only in this
region. Karpenter applies those tags itself (``kubernetes.io/cluster/<name>: owned``,
``eks:eks-cluster-name``, ``karpenter.sh/nodepool``, ``karpenter.k8s.aws/ec2nodeclass`` and, on instance
profiles, ``topology.kubernetes.io/region``); EC2NodeClasses cannot override them (CEL rules refuse
the first four in ``spec.tags``; for the region tag Karpenter's own value wins).

Partition, region and account are CloudFormation pseudo parameters, so the template deploys to any region.
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from constructs import IConstruct

from .._pseudo import account_id, partition, region
from ..nag import PACK, acknowledge_all

# Upstream statements eks-ml leaves out, with the reason.
OMITTED = {
    "AllowZonalShiftStatusReadOnly": "zonal shift is off (the chart's settings.enableZonalShift defaults to false "
    "and eks-ml does not set it), so Karpenter never calls arc-zonal-shift:GetManagedResource",
}
NODEPOOL_TAG = "karpenter.sh/nodepool"
NODECLASS_TAG = "karpenter.k8s.aws/ec2nodeclass"
CLUSTER_NAME_TAG = "eks:eks-cluster-name"
REGION_TAG = "topology.kubernetes.io/region"
# EC2 resources a launch creates, and so must be tagged at creation.
_LAUNCHED = ("fleet", "instance", "volume", "network-interface", "launch-template", "spot-instances-request")
# Existing resources a launch refers to: the AMI and its snapshots (public AMIs belong to AWS, so no
# account), and the network and capacity an EC2NodeClass selects.
_REFERENCED_PUBLIC = ("image", "snapshot")
_REFERENCED = ("security-group", "subnet", "capacity-reservation", "placement-group")


def ownership_tag(cluster_name: str) -> str:
    return f"kubernetes.io/cluster/{cluster_name}"


def ec2_arn(resource_type: str, *, account: str = "*") -> str:
    return f"arn:{partition()}:ec2:{region()}:{account}:{resource_type}/*"


def instance_profile_arn() -> str:
    return f"arn:{partition()}:iam::{account_id()}:instance-profile/*"


def cluster_arn(cluster_name: str) -> str:
    return f"arn:{partition()}:eks:{region()}:{account_id()}:cluster/{cluster_name}"


def ssm_public_parameters_arn() -> str:
    # AWS's public parameters (EKS-optimized AMI ids for the EC2NodeClass's AMI alias); no account.
    return f"arn:{partition()}:ssm:{region()}::parameter/aws/service/*"


def controller_statements(cluster_name: str, *, node_role_arn: str, queue_arn: str) -> list[iam.PolicyStatement]:
    """The controller policy for cluster ``cluster_name`` (a literal: it is part of condition keys)."""
    return [
        *_node_lifecycle(cluster_name),
        *_iam_integration(cluster_name, node_role_arn),
        iam.PolicyStatement(
            sid="AllowAPIServerEndpointDiscovery",
            actions=["eks:DescribeCluster"],
            resources=[cluster_arn(cluster_name)],
        ),
        iam.PolicyStatement(
            sid="AllowInterruptionQueueActions",
            actions=["sqs:DeleteMessage", "sqs:GetQueueUrl", "sqs:ReceiveMessage"],
            resources=[queue_arn],
        ),
        *_resource_discovery(),
    ]


def _node_lifecycle(cluster_name: str) -> list[iam.PolicyStatement]:
    owned = ownership_tag(cluster_name)
    owned_resource = {
        "StringEquals": {f"aws:ResourceTag/{owned}": "owned"},
        "StringLike": {f"aws:ResourceTag/{NODEPOOL_TAG}": "*"},
    }
    owned_request = {f"aws:RequestTag/{owned}": "owned", f"aws:RequestTag/{CLUSTER_NAME_TAG}": cluster_name}
    launched = [ec2_arn(kind) for kind in _LAUNCHED]
    return [
        iam.PolicyStatement(
            sid="AllowScopedEC2InstanceAccessActions",
            actions=["ec2:RunInstances", "ec2:CreateFleet"],
            resources=[
                *(ec2_arn(kind, account="") for kind in _REFERENCED_PUBLIC),
                *(ec2_arn(kind) for kind in _REFERENCED),
            ],
        ),
        # Launching from a launch template Karpenter created for this cluster.
        iam.PolicyStatement(
            sid="AllowScopedEC2LaunchTemplateAccessActions",
            actions=["ec2:RunInstances", "ec2:CreateFleet"],
            resources=[ec2_arn("launch-template")],
            conditions=owned_resource,
        ),
        # Creating instances, fleets, volumes, ENIs and launch templates only with this cluster's tags.
        iam.PolicyStatement(
            sid="AllowScopedEC2InstanceActionsWithTags",
            actions=["ec2:RunInstances", "ec2:CreateFleet", "ec2:CreateLaunchTemplate"],
            resources=launched,
            conditions={
                "StringEquals": owned_request,
                "StringLike": {f"aws:RequestTag/{NODEPOOL_TAG}": "*"},
            },
        ),
        # Tagging as part of those creates only.
        iam.PolicyStatement(
            sid="AllowScopedResourceCreationTagging",
            actions=["ec2:CreateTags"],
            resources=launched,
            conditions={
                "StringEquals": {
                    **owned_request,
                    "ec2:CreateAction": ["RunInstances", "CreateFleet", "CreateLaunchTemplate"],
                },
                "StringLike": {f"aws:RequestTag/{NODEPOOL_TAG}": "*"},
            },
        ),
        # Later tagging of this cluster's instances, with the three tags Karpenter's tagging controller adds.
        iam.PolicyStatement(
            sid="AllowScopedResourceTagging",
            actions=["ec2:CreateTags"],
            resources=[ec2_arn("instance")],
            conditions={
                **owned_resource,
                "StringEqualsIfExists": {f"aws:RequestTag/{CLUSTER_NAME_TAG}": cluster_name},
                "ForAllValues:StringEquals": {"aws:TagKeys": [CLUSTER_NAME_TAG, "karpenter.sh/nodeclaim", "Name"]},
            },
        ),
        iam.PolicyStatement(
            sid="AllowScopedDeletion",
            actions=["ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"],
            resources=[ec2_arn("instance"), ec2_arn("launch-template")],
            conditions=owned_resource,
        ),
    ]


def _iam_integration(cluster_name: str, node_role_arn: str) -> list[iam.PolicyStatement]:
    owned = ownership_tag(cluster_name)
    owned_profile = {f"aws:ResourceTag/{owned}": "owned", f"aws:ResourceTag/{REGION_TAG}": region()}
    owned_request = {
        f"aws:RequestTag/{owned}": "owned",
        f"aws:RequestTag/{CLUSTER_NAME_TAG}": cluster_name,
        f"aws:RequestTag/{REGION_TAG}": region(),
    }
    profiles = [instance_profile_arn()]
    return [
        iam.PolicyStatement(
            sid="AllowPassingInstanceRole",
            actions=["iam:PassRole"],
            resources=[node_role_arn],
            # Both partitions' EC2 principals, as upstream lists them.
            conditions={"StringEquals": {"iam:PassedToService": ["ec2.amazonaws.com", "ec2.amazonaws.com.cn"]}},
        ),
        iam.PolicyStatement(
            sid="AllowScopedInstanceProfileCreationActions",
            actions=["iam:CreateInstanceProfile"],
            resources=profiles,
            conditions={"StringEquals": owned_request, "StringLike": {f"aws:RequestTag/{NODECLASS_TAG}": "*"}},
        ),
        iam.PolicyStatement(
            sid="AllowScopedInstanceProfileTagActions",
            actions=["iam:TagInstanceProfile"],
            resources=profiles,
            conditions={
                "StringEquals": {**owned_profile, **owned_request},
                "StringLike": {f"aws:ResourceTag/{NODECLASS_TAG}": "*", f"aws:RequestTag/{NODECLASS_TAG}": "*"},
            },
        ),
        iam.PolicyStatement(
            sid="AllowScopedInstanceProfileActions",
            actions=["iam:AddRoleToInstanceProfile", "iam:RemoveRoleFromInstanceProfile", "iam:DeleteInstanceProfile"],
            resources=profiles,
            conditions={"StringEquals": owned_profile, "StringLike": {f"aws:ResourceTag/{NODECLASS_TAG}": "*"}},
        ),
    ]


def _resource_discovery() -> list[iam.PolicyStatement]:
    return [
        iam.PolicyStatement(
            sid="AllowRegionalReadActions",
            actions=[
                "ec2:DescribeCapacityReservations",
                "ec2:DescribeImages",
                "ec2:DescribeInstances",
                "ec2:DescribeInstanceStatus",
                "ec2:DescribeInstanceTypeOfferings",
                "ec2:DescribeInstanceTypes",
                "ec2:DescribeLaunchTemplates",
                "ec2:DescribePlacementGroups",
                "ec2:DescribeSecurityGroups",
                "ec2:DescribeSpotPriceHistory",
                "ec2:DescribeSubnets",
            ],
            resources=["*"],
            conditions={"StringEquals": {"aws:RequestedRegion": region()}},
        ),
        iam.PolicyStatement(
            sid="AllowSSMReadActions", actions=["ssm:GetParameter"], resources=[ssm_public_parameters_arn()]
        ),
        iam.PolicyStatement(sid="AllowPricingReadActions", actions=["pricing:GetProducts"], resources=["*"]),
        iam.PolicyStatement(
            sid="AllowUnscopedInstanceProfileListAction", actions=["iam:ListInstanceProfiles"], resources=["*"]
        ),
        iam.PolicyStatement(
            sid="AllowInstanceProfileReadActions",
            actions=["iam:GetInstanceProfile"],
            resources=[instance_profile_arn()],
        ),
    ]


def acknowledge_controller_policy(role: IConstruct, cluster_name: str) -> None:
    """One IAM5 acknowledgement per wildcard resource pattern of the policy, each saying what limits it."""
    owned = f"{ownership_tag(cluster_name)}=owned, {CLUSTER_NAME_TAG}={cluster_name} and {NODEPOOL_TAG}"
    reasons = {
        "*": "Only calls that take no resource ARN: the ec2:Describe* reads (limited to this region by "
        "aws:RequestedRegion), pricing:GetProducts and iam:ListInstanceProfiles, as in Karpenter's reference policy.",
        **{
            _nag_ec2(kind, account=""): "ec2:RunInstances and ec2:CreateFleet only: a launch must be allowed on the "
            "AMI and its snapshots, which Karpenter resolves from the EC2NodeClass's pinned AMI alias (AWS-owned "
            "public AMIs, hence no account); this region only."
            for kind in _REFERENCED_PUBLIC
        },
        **{
            _nag_ec2(kind): "ec2:RunInstances and ec2:CreateFleet only: a launch must be allowed on the subnets, "
            "security groups, capacity reservations and placement groups it refers to, which Karpenter picks by the "
            "EC2NodeClass's selector terms at run time; this region only."
            for kind in _REFERENCED
        },
        **{
            _nag_ec2(kind): f"Resources Karpenter creates, under names not known in advance: creating and "
            f"create-time tagging need the request tags {owned}; later tagging (three tag keys) and termination "
            f"of instances need the same ownership tags on the resource; this region only."
            for kind in _LAUNCHED
            if kind != "launch-template"
        },
        _nag_ec2("launch-template"): f"Launch templates Karpenter creates under generated names: creating needs the "
        f"request tags {owned}; launching from or deleting one needs {ownership_tag(cluster_name)}=owned and "
        f"{NODEPOOL_TAG} on the template; this region only.",
        "arn:<AWS::Partition>:iam::<AWS::AccountId>:instance-profile/*": f"Karpenter creates one instance profile "
        f"per EC2NodeClass under a generated name: creating and tagging need the request tags "
        f"{ownership_tag(cluster_name)}=owned, {CLUSTER_NAME_TAG}, {REGION_TAG} of this region and {NODECLASS_TAG}; "
        f"adding or removing the role and deleting need those tags on the profile; iam:GetInstanceProfile reads only.",
        "arn:<AWS::Partition>:ssm:<AWS::Region>::parameter/aws/service/*": "ssm:GetParameter on AWS's public "
        "parameters only (/aws/service/, no account), where the EKS-optimized AMI ids behind the EC2NodeClass's "
        "AMI alias are published.",
    }
    acknowledge_all(role, ((f"{PACK}-IAM5[Resource::{pattern}]", reason) for pattern, reason in reasons.items()))


def _nag_ec2(resource_type: str, *, account: str = "*") -> str:
    """An EC2 ARN pattern as cdk-nag renders it (pseudo parameters as <AWS::...>)."""
    return f"arn:<AWS::Partition>:ec2:<AWS::Region>:{account}:{resource_type}/*"
