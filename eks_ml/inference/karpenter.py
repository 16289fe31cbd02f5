"""Self-managed Karpenter: controller role (EKS Pod Identity), node role and access entry, the
interruption queue with its EventBridge rules, and the pinned Helm chart on the system nodes."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sqs as sqs
from constructs import Construct, IDependable

from .. import helm
from .._tokens import is_unresolved
from ..cluster.nag import acknowledge_node_role_policies
from ..cluster.pod_identity import associate, pod_identity_role
from ..cluster.system_nodes import SystemPlacement
from ..errors import Problems
from ..nag import PACK, acknowledge, acknowledge_inline_policy
from ..placement import ClusterModel
from .karpenter_policy import acknowledge_controller_policy, controller_statements

SERVICE_ACCOUNT = "karpenter"
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
# As Karpenter's reference node role has them: ECR pull-only (no image listing), SSM for node diagnostics.
NODE_POLICIES = (
    "AmazonEKSWorkerNodePolicy",
    "AmazonEKS_CNI_Policy",
    "AmazonEC2ContainerRegistryPullOnly",
    "AmazonSSMManagedInstanceCore",
)
NODE_ROLE_SUFFIX = "-karpenter-node"
IAM_ROLE_NAME_LIMIT = 64


def node_role_name(cluster_name: str) -> str:
    return f"{cluster_name}{NODE_ROLE_SUFFIX}"


def check_cluster_name_for_karpenter(cluster_name: str, field: str, problems: Problems) -> None:
    """The cluster name is part of the controller policy's condition keys and of the node role's fixed
    name, so it must be a literal short enough for that name to fit IAM's limit."""
    if is_unresolved(cluster_name):
        problems.add(
            field,
            cluster_name,
            "a literal name with Karpenter (it is part of IAM condition keys and EC2NodeClass manifests)",
            "pass the cluster name as a plain string",
        )
        return
    longest = IAM_ROLE_NAME_LIMIT - len(NODE_ROLE_SUFFIX)
    if len(cluster_name) > longest:
        problems.add(
            field,
            cluster_name,
            f"at most {longest} characters with Karpenter (its node role {node_role_name(cluster_name)!r} "
            f"must fit IAM's {IAM_ROLE_NAME_LIMIT}-character role name limit)",
            f"shorten the cluster name to {longest} characters or fewer, or use EKS Auto Mode (auto_mode=True)",
        )


class Karpenter(Construct):
    """Attributes: ``controller_role``, ``node_role``, ``node_role_name`` (named by every EC2NodeClass),
    ``queue``, ``chart`` (its CRDs are upgraded by the cluster's CRD upgrade Job, eks_ml.helm.CrdUpgrade)."""

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
        problems = Problems()
        check_cluster_name_for_karpenter(cluster_name, "cluster_name", problems)
        problems.raise_if_any()
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
        self.node_role_name = node_role_name(cluster_name)
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
        for statement in controller_statements(
            cluster_name, node_role_arn=self.node_role.role_arn, queue_arn=self.queue.queue_arn
        ):
            self.controller_role.add_to_policy(statement)
        acknowledge_controller_policy(self.controller_role, cluster_name)
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
            after=[association, *after],
            placement=placement.values(),
        )
