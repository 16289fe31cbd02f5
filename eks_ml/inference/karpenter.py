"""Self-managed Karpenter: controller role (EKS Pod Identity), node role and access entry, the
interruption queue with its EventBridge rules, and the pinned Helm chart on the system nodes."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, Stack
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sqs as sqs
from constructs import Construct, IDependable

from .. import helm
from ..cluster.nag import acknowledge_node_role_policies
from ..cluster.pod_identity import associate, pod_identity_role
from ..cluster.system_nodes import SystemPlacement
from ..nag import PACK, acknowledge, acknowledge_inline_policy
from ..placement import ClusterModel

SERVICE_ACCOUNT = "karpenter"
NODECLASS_TAG = "karpenter.k8s.aws/ec2nodeclass"
# Karpenter's getting-started guide sizes the controller at 1 CPU and 1 GiB; a pool of a few dozen
# inference nodes needs far less CPU, and memory grows with the node and pod count.
CONTROLLER_RESOURCES = {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"memory": "1Gi"}}
# The events Karpenter acts on ahead of time: Spot reclaim, rebalance advice, instance state changes,
# and AWS Health scheduled maintenance.
INTERRUPTION_EVENTS = {
    "SpotInterruption": ("aws.ec2", "EC2 Spot Instance Interruption Warning"),
    "Rebalance": ("aws.ec2", "EC2 Instance Rebalance Recommendation"),
    "InstanceStateChange": ("aws.ec2", "EC2 Instance State-change Notification"),
    "ScheduledChange": ("aws.health", "AWS Health Event"),
}
NODE_POLICIES = (
    "AmazonEKSWorkerNodePolicy",
    "AmazonEKS_CNI_Policy",
    "AmazonEC2ContainerRegistryReadOnly",
    "AmazonSSMManagedInstanceCore",
)


class Karpenter(Construct):
    """Attributes: ``controller_role``, ``node_role``, ``node_role_name`` (named by every EC2NodeClass),
    ``queue``, ``crds`` (the karpenter-crd release, installed and upgraded before the controller), ``chart``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster: eks.ICluster,
        cluster_name: str,
        model: ClusterModel,
        placement: SystemPlacement,
        after: Sequence[IDependable] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        self.queue = sqs.Queue(
            self,
            "InterruptionQueue",
            queue_name=f"{cluster_name}-karpenter",
            retention_period=Duration.minutes(5),  # an interruption notice is useless after two minutes
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
        )
        acknowledge(
            self.queue,
            f"{PACK}-SQS3",
            "Interruption notices expire within minutes; a dead-letter queue would only hold stale events that "
            "Karpenter must never act on.",
        )
        for rule_id, (source, detail_type) in INTERRUPTION_EVENTS.items():
            events.Rule(
                self,
                f"{rule_id}Rule",
                event_pattern=events.EventPattern(source=[source], detail_type=[detail_type]),
                targets=[targets.SqsQueue(self.queue)],
            )

        # A fixed name: EC2NodeClasses name the role in their manifests, which must hold no CDK tokens.
        self.node_role_name = f"{cluster_name}-karpenter-node"
        self.node_role = iam.Role(
            self,
            "NodeRole",
            role_name=self.node_role_name,
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name(name) for name in NODE_POLICIES],
        )
        acknowledge_node_role_policies(self.node_role, NODE_POLICIES)
        eks.AccessEntry(
            self,
            "NodeAccess",
            cluster=cluster,
            principal=self.node_role.role_arn,
            access_entry_type=eks.AccessEntryType.EC2_LINUX,
            access_policies=[],
        )

        self.controller_role = pod_identity_role(
            self, "ControllerRole", description=f"Karpenter controller of EKS cluster {cluster_name} (EKS Pod Identity)"
        )
        for statement in self._controller_statements(cluster_name):
            self.controller_role.add_to_policy(statement)
        acknowledge(
            self.controller_role,
            f"{PACK}-IAM5[Resource::*]",
            "Karpenter's reference policy: EC2 launch and describe calls and pricing lookups take no resource ARNs; "
            "termination and instance-profile actions are scoped by Karpenter's ownership tags.",
        )
        acknowledge_inline_policy(
            self.controller_role,
            "Karpenter's controller policy, written as the inline policy of its own Pod Identity role: it is "
            "built for this one cluster (its name, queue and node role), so no other principal could reuse it.",
        )
        association = associate(
            self,
            "PodIdentity",
            cluster=cluster,
            namespace=helm.KARPENTER.namespace,
            service_account=SERVICE_ACCOUNT,
            role=self.controller_role,
        )

        self.crds = helm.install(self, "Crds", cluster, helm.KARPENTER_CRD, model=model)
        self.chart = helm.install(
            self,
            "Chart",
            cluster,
            helm.KARPENTER,
            {
                "settings": {"clusterName": cluster_name, "interruptionQueue": self.queue.queue_name},
                "serviceAccount": {"name": SERVICE_ACCOUNT},
                # The controller must not run on capacity it manages.
                **placement.values(),
                "replicas": 2,
                "controller": {"resources": CONTROLLER_RESOURCES},
            },
            model=model,
            wait=True,
        )
        self.chart.node.add_dependency(association, self.crds, *after)
        for dependency in after:
            self.crds.node.add_dependency(dependency)

    def _controller_statements(self, cluster_name: str) -> list[iam.PolicyStatement]:
        """Karpenter v1's reference controller policy, scoped to this cluster and region."""
        region = Stack.of(self).region
        owned = f"kubernetes.io/cluster/{cluster_name}"

        cluster_arn = Stack.of(self).format_arn(service="eks", resource="cluster", resource_name=cluster_name)
        return [
            iam.PolicyStatement(
                sid="AllowEC2LaunchAndDiscovery",
                actions=[
                    "ec2:RunInstances",
                    "ec2:CreateFleet",
                    "ec2:CreateLaunchTemplate",
                    "ec2:DeleteLaunchTemplate",
                    "ec2:CreateTags",
                    "ec2:DescribeAvailabilityZones",
                    "ec2:DescribeCapacityReservations",
                    "ec2:DescribeImages",
                    "ec2:DescribeInstances",
                    "ec2:DescribeInstanceTypeOfferings",
                    "ec2:DescribeInstanceTypes",
                    "ec2:DescribeLaunchTemplates",
                    "ec2:DescribeSecurityGroups",
                    "ec2:DescribeSpotPriceHistory",
                    "ec2:DescribeSubnets",
                    "pricing:GetProducts",
                    "ssm:GetParameter",
                ],
                resources=["*"],
            ),
            iam.PolicyStatement(
                sid="AllowScopedTermination",
                actions=["ec2:TerminateInstances"],
                resources=["*"],
                conditions={"StringLike": {"ec2:ResourceTag/karpenter.sh/nodepool": "*"}},
            ),
            iam.PolicyStatement(
                sid="AllowPassingNodeRole",
                actions=["iam:PassRole"],
                resources=[self.node_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}},
            ),
            iam.PolicyStatement(
                sid="AllowScopedInstanceProfileCreation",
                actions=["iam:CreateInstanceProfile"],
                resources=["*"],
                conditions={
                    "StringEquals": {
                        f"aws:RequestTag/{owned}": "owned",
                        "aws:RequestTag/topology.kubernetes.io/region": region,
                    },
                    "StringLike": {f"aws:RequestTag/{NODECLASS_TAG}": "*"},
                },
            ),
            iam.PolicyStatement(
                sid="AllowScopedInstanceProfileTagging",
                actions=["iam:TagInstanceProfile"],
                resources=["*"],
                conditions={
                    "StringEquals": {
                        f"aws:ResourceTag/{owned}": "owned",
                        "aws:ResourceTag/topology.kubernetes.io/region": region,
                        f"aws:RequestTag/{owned}": "owned",
                        "aws:RequestTag/topology.kubernetes.io/region": region,
                    },
                    "StringLike": {
                        f"aws:ResourceTag/{NODECLASS_TAG}": "*",
                        f"aws:RequestTag/{NODECLASS_TAG}": "*",
                    },
                },
            ),
            iam.PolicyStatement(
                sid="AllowScopedInstanceProfileActions",
                actions=[
                    "iam:AddRoleToInstanceProfile",
                    "iam:RemoveRoleFromInstanceProfile",
                    "iam:DeleteInstanceProfile",
                ],
                resources=["*"],
                conditions={
                    "StringEquals": {
                        f"aws:ResourceTag/{owned}": "owned",
                        "aws:ResourceTag/topology.kubernetes.io/region": region,
                    },
                    "StringLike": {f"aws:ResourceTag/{NODECLASS_TAG}": "*"},
                },
            ),
            iam.PolicyStatement(
                sid="AllowInstanceProfileReads",
                actions=["iam:GetInstanceProfile", "iam:ListInstanceProfiles"],
                resources=["*"],
            ),
            iam.PolicyStatement(
                sid="AllowInterruptionQueue",
                actions=["sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:ReceiveMessage"],
                resources=[self.queue.queue_arn],
            ),
            iam.PolicyStatement(sid="AllowClusterLookup", actions=["eks:DescribeCluster"], resources=[cluster_arn]),
        ]
