"""Native EKS add-ons (AWS::EKS::Addon): no Lambda, versions pinned per Kubernetes version."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_cdk import aws_eks_v2 as eks
from constructs import Construct

from ._typing import as_icluster
from .versions import (
    COREDNS,
    KUBE_PROXY,
    METRICS_SERVER,
    NODE_MONITORING_AGENT,
    POD_IDENTITY_AGENT,
    VPC_CNI,
)

# Prefix delegation hands each ENI slot a /28, so a node runs its max-pods without running out of
# secondary IPs; a warm prefix keeps pod start-up from waiting on EC2. enableNetworkPolicy makes the VPC
# CNI's network policy agent enforce NetworkPolicies (off by default; Amazon EKS User Guide, "Restrict Pod
# network traffic with Kubernetes network policies"): the model-serving namespace relies on them, and pods
# no policy selects keep all traffic.
VPC_CNI_CONFIGURATION: Mapping[str, Any] = {
    "env": {"ENABLE_PREFIX_DELEGATION": "true", "WARM_PREFIX_TARGET": "1"},
    "enableNetworkPolicy": "true",
}

# Add-ons that must run before nodes can become Ready, and those that need nodes to schedule on.
BEFORE_NODES = (VPC_CNI, KUBE_PROXY, POD_IDENTITY_AGENT)
AFTER_NODES = (COREDNS, METRICS_SERVER, NODE_MONITORING_AGENT)
# With EKS Auto Mode the node networking, DNS, pod identity and node monitoring are built in.
AUTO_MODE_ADDONS = (METRICS_SERVER,)

_CONSTRUCT_IDS = {
    VPC_CNI: "VpcCni",
    KUBE_PROXY: "KubeProxy",
    COREDNS: "CoreDns",
    METRICS_SERVER: "MetricsServer",
    NODE_MONITORING_AGENT: "NodeMonitoringAgent",
}


def _pin(addon: eks.Addon, version: str | None) -> None:
    cfn = addon.node.default_child
    assert isinstance(cfn, eks.CfnAddon)  # internal invariant of aws_eks_v2.Addon
    if version:
        cfn.addon_version = version
    # Take over what a previous self-managed install left behind, and let version bumps through.
    cfn.resolve_conflicts = "OVERWRITE"


def add_core_addons(
    scope: Construct,
    cluster: eks.Cluster,
    versions: Mapping[str, str | None],
    *,
    auto_mode: bool,
    nodes: eks.Nodegroup | None,
) -> dict[str, eks.Addon]:
    """Create the add-ons for ``cluster``. ``nodes`` (the system node group) orders creation: the
    network add-ons first so nodes become Ready, then those whose pods need a node."""
    names = AUTO_MODE_ADDONS if auto_mode else BEFORE_NODES + AFTER_NODES
    addons: dict[str, eks.Addon] = {}
    for name in names:
        if name == POD_IDENTITY_AGENT:
            # aws_eks_v2 creates this add-on lazily (and reuses it for Pod Identity service
            # accounts); take that one rather than adding a second add-on of the same name.
            addon = cluster.eks_pod_identity_agent
            assert isinstance(addon, eks.Addon)
            _pin(addon, versions.get(name))
        else:
            addon = _addon(scope, cluster, name, versions)
        addons[name] = addon
    if nodes is not None:
        nodes.node.add_dependency(*(addons[name] for name in BEFORE_NODES))  # one jsii call, not one per add-on
        for name in AFTER_NODES:
            addons[name].node.add_dependency(nodes)
    return addons


# Add-ons a managed node group needs in an Auto Mode cluster: its nodes get no built-in networking or DNS.
NODE_GROUP_ADDONS = (VPC_CNI, KUBE_PROXY, COREDNS)


def add_node_group_addons(
    scope: Construct, cluster: eks.Cluster, versions: Mapping[str, str | None]
) -> dict[str, eks.Addon]:
    return {name: _addon(scope, cluster, name, versions) for name in NODE_GROUP_ADDONS}


def _addon(scope: Construct, cluster: eks.Cluster, name: str, versions: Mapping[str, str | None]) -> eks.Addon:
    """One native add-on, pinned; the VPC CNI with prefix delegation."""
    addon = eks.Addon(
        scope,
        _CONSTRUCT_IDS[name],
        cluster=as_icluster(cluster),
        addon_name=name,
        configuration_values=VPC_CNI_CONFIGURATION if name == VPC_CNI else None,
    )
    _pin(addon, versions.get(name))
    return addon
