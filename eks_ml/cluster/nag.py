"""cdk-nag acknowledgements for what aws_eks_v2 and EKS itself require of a BaseCluster."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import aws_eks_v2 as eks
from constructs import IConstruct

from ..nag import PACK, acknowledge, acknowledge_all, logical_id, managed_policy, nist


def acknowledge_cluster(cluster: eks.Cluster) -> None:
    acknowledge(
        cluster.role,
        managed_policy("AmazonEKSClusterPolicy"),
        "EKS requires the AWS managed AmazonEKSClusterPolicy on the cluster service role; AWS extends "
        "it as EKS gains features, which a copied inline policy would miss.",
    )
    provider = cluster.node.find_child("KubectlProvider")
    handler = provider.node.find_child("Handler")
    has_ecr_public = handler.node.find_child("HasEcrPublic")
    lambda_reason = (
        "aws_eks_v2's kubectl provider Lambda (not eks-ml code) needs basic logging, VPC ENI access to reach "
        "the private API endpoint, and ECR read access for Helm OCI charts; CDK attaches the AWS managed "
        "policies for that."
    )
    ecr_public = (
        f'{{"Fn::If":["{logical_id(has_ecr_public)}",{{"Fn::Join":["",["arn:",{{"Ref":"AWS::Partition"}},'
        '":iam::aws:policy/AmazonElasticContainerRegistryPublicReadOnly"]]},{"Ref":"AWS::NoValue"}]}'
    )
    handler_function = handler.node.default_child
    assert handler_function is not None
    acknowledge_all(
        provider,
        [
            *(
                (managed_policy(policy), lambda_reason)
                for policy in (
                    "service-role/AWSLambdaBasicExecutionRole",
                    "service-role/AWSLambdaVPCAccessExecutionRole",
                    "AmazonEC2ContainerRegistryReadOnly",
                )
            ),
            (f"{PACK}-IAM4[Policy::{ecr_public}]", lambda_reason),
            (
                f"{PACK}-IAM5[Resource::<{logical_id(handler_function)}.Arn>:*]",
                "The CDK provider framework may invoke any version of the kubectl handler function it fronts; the "
                "wildcard is limited to that one function's ARN.",
            ),
            (
                f"{PACK}-L1",
                "aws_eks_v2 pins the kubectl handler's Python runtime to the one its kubectl and awscli layers are "
                "built and tested for; it is not configurable.",
            ),
        ],
    )
    framework = provider.node.find_child("Provider").node.find_child("framework-onEvent")
    acknowledge_kubectl_functions(handler, framework)


def acknowledge_kubectl_functions(handler: IConstruct, framework: IConstruct) -> None:
    """NIST findings on aws_eks_v2's two kubectl provider functions (the kubectl handler and the provider
    framework's onEvent), which CDK creates with no options for them."""
    for function in (handler, framework):
        node = function.node  # read once: each read is a jsii call
        resource = node.default_child
        assert resource is not None
        acknowledge_all(
            resource,
            [
                (
                    nist("LambdaDLQ"),
                    "CloudFormation invokes this custom-resource function synchronously through the CDK provider "
                    "framework, which reports a failure to CloudFormation (the stack rolls back); a dead-letter "
                    "queue only receives failed asynchronous invocations, so it would stay empty.",
                ),
                (
                    nist("LambdaConcurrency"),
                    "Runs only during a stack deployment of this cluster, one kubectl call at a time per resource; "
                    "aws_eks_v2 offers no reserved-concurrency option, and a reservation would take account "
                    "capacity from other functions.",
                ),
            ],
        )
        role = node.try_find_child("ServiceRole")
        policy = role.node.try_find_child("DefaultPolicy") if role else None
        policy_resource = policy.node.default_child if policy is not None else None
        if policy_resource is not None:
            acknowledge(
                policy_resource,
                nist("IAMNoInlinePolicy"),
                "CDK writes this function's grants (invoke the kubectl handler, assume the kubectl role) as the "
                "inline policy of its own service role: one policy, one principal, deleted with the role.",
            )


NODEGROUP_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryReadOnly")


def acknowledge_node_role_policies(scope: IConstruct, policies: Sequence[str]) -> None:
    reason = (
        "EKS nodes need these AWS managed policies on their role (EKS node IAM role guide): joining the cluster, "
        "VPC CNI ENI management, pulling images from ECR, and (Karpenter nodes) SSM for node diagnostics."
    )
    acknowledge_all(scope, ((managed_policy(policy), reason) for policy in policies))


def acknowledge_node_role(nodegroup: eks.Nodegroup) -> None:
    acknowledge_node_role_policies(nodegroup, NODEGROUP_POLICIES)
