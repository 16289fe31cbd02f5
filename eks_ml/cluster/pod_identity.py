"""EKS Pod Identity: roles pods assume, and how a role reaches a service account."""

from __future__ import annotations

from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from constructs import Construct

POD_IDENTITY_PRINCIPAL = "pods.eks.amazonaws.com"


def pod_identity_role(scope: Construct, construct_id: str, *, description: str) -> iam.Role:
    """A role the EKS Pod Identity agent may assume (and tag the session of) on a pod's behalf."""
    return iam.Role(
        scope,
        construct_id,
        assumed_by=iam.SessionTagsPrincipal(iam.ServicePrincipal(POD_IDENTITY_PRINCIPAL)),
        description=description,
    )


def associate(
    scope: Construct,
    construct_id: str,
    *,
    cluster: eks.ICluster,
    namespace: str,
    service_account: str,
    role: iam.IRole,
) -> eks.CfnPodIdentityAssociation:
    """Give ``role`` to the pods of ``namespace/service_account`` (for controllers installed by Helm)."""
    return eks.CfnPodIdentityAssociation(
        scope,
        construct_id,
        cluster_name=cluster.cluster_name,
        namespace=namespace,
        service_account=service_account,
        role_arn=role.role_arn,
    )


def addon_with_role(
    scope: Construct,
    construct_id: str,
    *,
    cluster: eks.ICluster,
    addon_name: str,
    service_account: str,
    role: iam.IRole,
) -> eks.Addon:
    """An EKS add-on whose service account gets ``role`` through the add-on's own association."""
    addon = eks.Addon(scope, construct_id, cluster=cluster, addon_name=addon_name)
    cfn = addon.node.default_child
    assert isinstance(cfn, eks.CfnAddon)  # internal invariant of aws_eks_v2.Addon
    cfn.pod_identity_associations = [
        eks.CfnAddon.PodIdentityAssociationProperty(role_arn=role.role_arn, service_account=service_account)
    ]
    cfn.resolve_conflicts = "OVERWRITE"
    return addon
