"""The EKS base both clusters share: control plane, encryption, logging, access, add-ons, system nodes."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from aws_cdk import Annotations, RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from ..errors import Problems
from ..nag import acknowledge_log_group_kms_pending
from ..placement import ClusterModel, managed_node_group
from ..placement.nodes import auto_mode_pools
from . import rules
from .addons import add_core_addons, add_node_group_addons
from .nag import acknowledge_cluster, acknowledge_node_role
from .rules import OPEN_TO_THE_INTERNET, EndpointAccessMode
from .system_nodes import (
    AUTO_MODE_SYSTEM_PLACEMENT,
    MANAGED_SYSTEM_PLACEMENT,
    SYSTEM_NODE_LABEL,
    SYSTEM_NODE_ROLE,
    SystemNodesProps,
    add_system_nodes,
)
from .versions import CORE_ADDONS, DEFAULT_KUBERNETES_VERSION, release_for

ALL_CONTROL_PLANE_LOGS = (
    eks.ClusterLoggingTypes.API,
    eks.ClusterLoggingTypes.AUDIT,
    eks.ClusterLoggingTypes.AUTHENTICATOR,
    eks.ClusterLoggingTypes.CONTROLLER_MANAGER,
    eks.ClusterLoggingTypes.SCHEDULER,
)
CLUSTER_ADMIN_POLICY = "AmazonEKSClusterAdminPolicy"
AUTO_MODE_NODE_POOLS = ("system", "general-purpose")


@dataclass(frozen=True, kw_only=True)
class BaseClusterProps:
    """Props of :class:`BaseCluster`.

    vpc: the VPC; the control plane and nodes use its private subnets.
    cluster_name: the EKS cluster name; manifests and IAM policies refer to it, so it is fixed.
    kubernetes_version: Default: 1.35, the newest version with a kubectl layer on PyPI.
    endpoint_access: Default: public and private (nodes and kubectl Lambda use the private one).
    public_access_cidrs: who may reach the public endpoint. Default: 0.0.0.0/0, with a synth warning.
    admin_principal_arns: IAM roles/users granted cluster admin through access entries. Default: none
        (only the identity that deploys the stack is admin).
    auto_mode: Default: off; managed node groups and native add-ons. On: EKS Auto Mode compute.
    system_nodes: Default: two to four m7g.large nodes (ignored with Auto Mode).
    addon_versions: add-on name -> version, overriding the pinned table in ``versions.py``.
    control_plane_log_retention: Default: three months.
    """

    vpc: ec2.IVpc
    cluster_name: str
    kubernetes_version: str = DEFAULT_KUBERNETES_VERSION
    endpoint_access: EndpointAccessMode = EndpointAccessMode.PUBLIC_AND_PRIVATE
    public_access_cidrs: Sequence[str] | None = None
    admin_principal_arns: Sequence[str] = ()
    auto_mode: bool = False
    system_nodes: SystemNodesProps = field(default_factory=SystemNodesProps)
    addon_versions: Mapping[str, str] = field(default_factory=dict)
    control_plane_log_retention: logs.RetentionDays = logs.RetentionDays.THREE_MONTHS


def _endpoint(mode: EndpointAccessMode, cidrs: Sequence[str]) -> eks.EndpointAccess:
    if mode is EndpointAccessMode.PRIVATE:
        return eks.EndpointAccess.PRIVATE
    if mode is EndpointAccessMode.PUBLIC:
        return eks.EndpointAccess.PUBLIC  # open to all: the rules refuse an allow-list without private access
    return eks.EndpointAccess.PUBLIC_AND_PRIVATE.only_from(*cidrs)


def _access_entry_id(principal_arn: str) -> str:
    # Keyed by the principal, not its position: reordering the list must not replace an access entry
    # (CloudFormation would create the new one first and collide with the old one for that principal).
    return "Admin" + hashlib.sha256(principal_arn.encode()).hexdigest()[:8].upper()


class BaseCluster(Construct):
    """An EKS cluster ready for ML add-ons.

    Attributes: ``cluster`` (aws_eks_v2.Cluster), ``cluster_name``, ``endpoint_access``, ``kubernetes_release``,
    ``secrets_key``, ``control_plane_logs``, ``system_nodes`` (None with Auto Mode), ``addons``,
    ``system_placement`` (where controllers run), ``model`` (the cluster model, with the system nodes or
    Auto Mode's built-in pools as its first node sources).
    """

    def __init__(self, scope: Construct, construct_id: str, props: BaseClusterProps) -> None:
        super().__init__(scope, construct_id)
        problems = Problems()
        rules.check_cluster_name(props.cluster_name, "cluster_name", problems)
        rules.check_endpoint_access(props.endpoint_access, props.public_access_cidrs, "public_access_cidrs", problems)
        rules.check_principal_arns(props.admin_principal_arns, "admin_principal_arns", problems)
        for name in props.addon_versions:
            if name not in CORE_ADDONS:
                problems.add("addon_versions", name, f"one of {', '.join(CORE_ADDONS)}", "remove or rename the key")
        if not props.auto_mode:
            props.system_nodes.check("system_nodes", problems)
        with problems.collecting():
            release_for(props.kubernetes_version)
        problems.raise_if_any()
        self.kubernetes_release = release_for(props.kubernetes_version)

        public_cidrs = list(props.public_access_cidrs or [OPEN_TO_THE_INTERNET])
        if props.endpoint_access is not EndpointAccessMode.PRIVATE and OPEN_TO_THE_INTERNET in public_cidrs:
            Annotations.of(self).add_warning_v2(
                "eks-ml:open-endpoint",
                f"The public API endpoint of {props.cluster_name} accepts connections from 0.0.0.0/0 "
                "(still authenticated by IAM). Restrict it with public_access_cidrs "
                "(eks-ml:publicAccessCidrs) or make it private.",
            )

        self.cluster_name = props.cluster_name
        self.endpoint_access = props.endpoint_access
        self.secrets_key = kms.Key(
            self,
            "SecretsKey",
            description=f"Envelope encryption of Kubernetes secrets in EKS cluster {props.cluster_name}",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        # EKS writes to this exact group name; creating it first lets us set its retention.
        self.control_plane_logs = logs.LogGroup(
            self,
            "ControlPlaneLogs",
            log_group_name=f"/aws/eks/{props.cluster_name}/cluster",
            retention=props.control_plane_log_retention,
            removal_policy=RemovalPolicy.RETAIN,
        )
        acknowledge_log_group_kms_pending(self.control_plane_logs)
        capacity = (
            {
                "default_capacity_type": eks.DefaultCapacityType.AUTOMODE,
                "compute": eks.ComputeConfig(node_pools=list(AUTO_MODE_NODE_POOLS)),
            }
            if props.auto_mode
            else {"default_capacity_type": eks.DefaultCapacityType.NODEGROUP, "default_capacity": 0}
        )
        self.cluster = eks.Cluster(
            self,
            "Cluster",
            cluster_name=props.cluster_name,
            version=self.kubernetes_release.eks_version,
            vpc=props.vpc,
            vpc_subnets=[ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)],
            endpoint_access=_endpoint(props.endpoint_access, public_cidrs),
            cluster_logging=list(ALL_CONTROL_PLANE_LOGS),
            secrets_encryption_key=self.secrets_key,
            # Our own add-ons install networking and DNS, pinned, instead of EKS's unmanaged copies.
            bootstrap_self_managed_addons=False,
            kubectl_provider_options=eks.KubectlProviderOptions(
                kubectl_layer=self.kubernetes_release.kubectl_layer(self, "KubectlLayer")
            ),
            **capacity,  # type: ignore[arg-type]
        )
        self.cluster.node.add_dependency(self.control_plane_logs)
        acknowledge_cluster(self.cluster)

        for arn in props.admin_principal_arns:
            self.cluster.grant_access(
                _access_entry_id(arn),
                arn,
                [
                    eks.AccessPolicy.from_access_policy_name(
                        CLUSTER_ADMIN_POLICY, access_scope_type=eks.AccessScopeType.CLUSTER
                    )
                ],
            )

        self.system_nodes = None if props.auto_mode else add_system_nodes(self, self.cluster, props.system_nodes)
        self.auto_mode = props.auto_mode
        self.system_placement = AUTO_MODE_SYSTEM_PLACEMENT if props.auto_mode else MANAGED_SYSTEM_PLACEMENT
        self.model = ClusterModel(props.cluster_name)
        if props.auto_mode:
            for source in auto_mode_pools(AUTO_MODE_NODE_POOLS):
                self.model.add_source(source)
        else:
            self.model.add_source(
                managed_node_group(
                    "system", [props.system_nodes.instance_type.to_string()], {SYSTEM_NODE_LABEL: SYSTEM_NODE_ROLE}
                )
            )
        if self.system_nodes is not None:
            acknowledge_node_role(self.system_nodes)
        self._addon_versions = {**self.kubernetes_release.addon_versions, **props.addon_versions}
        self.addons = add_core_addons(
            self, self.cluster, self._addon_versions, auto_mode=props.auto_mode, nodes=self.system_nodes
        )

    def add_node_group_networking(self) -> list[eks.Addon]:
        """With Auto Mode, managed node groups (training nodes) still need the VPC CNI, kube-proxy and
        CoreDNS add-ons, which Auto Mode builds into its own nodes only. Returns the add-ons the node
        groups must wait for (none without Auto Mode: the base cluster already has them)."""
        if not self.auto_mode:
            return []
        added = add_node_group_addons(self, self.cluster, self._addon_versions)
        self.addons.update(added)
        return list(added.values())
