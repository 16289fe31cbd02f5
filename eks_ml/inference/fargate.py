"""Serverless CPU serving: an EKS Fargate profile (its pod execution role, the cluster's private subnets) and
its node source in the cluster model, so every pod it selects is proven to fit Fargate's rules at synth.

What Fargate does not give these pods, and eks-ml does not replace: DaemonSets (so no node-level log or
metrics agents, no Mountpoint or other CSI node plugins: a Fargate pod's model comes from S3 through its own
credentials), NetworkPolicies (the VPC CNI's network policy agent is a DaemonSet; Fargate pods are guarded
by the cluster security group only), EKS Pod Identity (its agent is a DaemonSet; IRSA works), GPUs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aws_cdk import Aws
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from constructs import Construct

from ..errors import Problems
from ..guards import expect_all, expect_list_of, expect_str, expect_str_map
from ..kube_names import check_dns_label, check_labels, check_namespace
from ..nag import acknowledge, managed_policy
from ..placement import ClusterModel, FargateSelector, fargate_profile
from ..training.reserved_namespaces import reserved_namespaces

# The label eks-ml's Fargate model servers carry; the default selector takes exactly those pods.
FARGATE_POD_LABEL = "eks-ml.io/compute"
FARGATE_POD_VALUE = "fargate"
MAX_SELECTORS = 5  # EKS API CreateFargateProfile: "up to five selectors"
POD_EXECUTION_POLICY = "AmazonEKSFargatePodExecutionRolePolicy"
FARGATE_PRINCIPAL = "eks-fargate-pods.amazonaws.com"


@dataclass(frozen=True, kw_only=True)
class FargateProfileProps:
    """Props of the cluster's Fargate profile.

    name: the profile's name. Default: serverless.
    selectors: namespace (and label) selectors of the pods Fargate runs, at most five. Default: the serving
        namespace's pods labelled eks-ml.io/compute=fargate (eks-ml's Fargate model servers carry it).
    """

    name: str = "serverless"
    selectors: Sequence[FargateSelector] = ()

    def resolved_selectors(self, serving_namespace: str) -> tuple[FargateSelector, ...]:
        return tuple(self.selectors) or (
            FargateSelector(namespace=serving_namespace, labels={FARGATE_POD_LABEL: FARGATE_POD_VALUE}),
        )

    def check(self, field_name: str, problems: Problems) -> bool:
        if not expect_all(
            expect_str(self.name, f"{field_name}.name", problems),
            expect_list_of(self.selectors, FargateSelector, f"{field_name}.selectors", problems),
        ):
            return False
        check_dns_label(self.name, f"{field_name}.name", problems, max_length=63)
        if len(self.selectors) > MAX_SELECTORS:
            problems.add(
                f"{field_name}.selectors",
                len(self.selectors),
                f"at most {MAX_SELECTORS} selectors (EKS Fargate profile limit)",
                "merge selectors by label, or add a second profile",
            )
        reserved = reserved_namespaces()
        for index, selector in enumerate(self.selectors):
            where = f"{field_name}.selectors[{index}]"
            if not expect_all(
                expect_str(selector.namespace, f"{where}.namespace", problems),
                expect_str_map(selector.labels, f"{where}.labels", problems),
            ):
                continue
            check_namespace(selector.namespace, f"{where}.namespace", problems)
            check_labels(selector.labels, f"{where}.labels", problems)
            if selector.namespace in reserved:
                problems.add(
                    f"{where}.namespace",
                    selector.namespace,
                    "a namespace of your own workloads, not one eks-ml's controllers run in",
                    "select your serving namespace (or one of your own) so controllers and their DaemonSets "
                    "stay on EC2 nodes",
                )
        return True


class FargateCapacity(Construct):
    """A Fargate profile in the cluster's private subnets, with a pod execution role only its own
    cluster's profiles may use, registered as a node source of ``model``.

    Attributes: ``profile``, ``pod_execution_role``, ``selectors``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster: eks.Cluster,
        cluster_name: str,
        props: FargateProfileProps,
        serving_namespace: str,
        model: ClusterModel,
    ) -> None:
        super().__init__(scope, construct_id)
        self.selectors = props.resolved_selectors(serving_namespace)
        # EKS User Guide, "Amazon EKS Pod execution IAM role": trust eks-fargate-pods with an aws:SourceArn
        # condition on the cluster's Fargate profiles (confused-deputy protection).
        self.pod_execution_role = iam.Role(
            self,
            "PodExecutionRole",
            assumed_by=iam.ServicePrincipal(FARGATE_PRINCIPAL).with_conditions(
                {
                    "ArnLike": {
                        "aws:SourceArn": f"arn:{Aws.PARTITION}:eks:{Aws.REGION}:{Aws.ACCOUNT_ID}:"
                        f"fargateprofile/{cluster_name}/*"
                    }
                }
            ),
            managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name(POD_EXECUTION_POLICY)],
            description=f"Fargate pod execution role of EKS cluster {cluster_name}: pulls images, writes no data",
        )
        acknowledge(
            self.pod_execution_role,
            managed_policy(POD_EXECUTION_POLICY),
            "The AWS managed Fargate pod execution policy is what EKS documents for this role: image pulls from "
            "ECR only.",
        )
        self.profile = eks.FargateProfile(
            self,
            "Profile",
            cluster=cluster,
            fargate_profile_name=props.name,
            selectors=[eks.Selector(namespace=s.namespace, labels=dict(s.labels) or None) for s in self.selectors],
            pod_execution_role=self.pod_execution_role,
            vpc=cluster.vpc,
            # Fargate pods get no public IP: private subnets with a NAT route (image pulls, S3, STS).
            subnet_selection=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
        )
        model.add_source(fargate_profile(props.name, self.selectors))


def fargate_labels() -> Mapping[str, str]:
    """The labels a pod needs for the default selector."""
    return {FARGATE_POD_LABEL: FARGATE_POD_VALUE}
