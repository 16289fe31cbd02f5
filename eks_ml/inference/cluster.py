"""InferenceCluster: the EKS base plus Karpenter pools for model servers (and, as they land, model
services with autoscaling)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import cdk8s
from constructs import Construct

from ..cluster import BaseCluster, BaseClusterProps
from ..cluster._typing import as_icluster
from ..errors import Problems
from ..k8s.karpenter_pools import NodeClassValues, NodePoolsChart
from ..network import KARPENTER_DISCOVERY_TAG
from .karpenter import Karpenter
from .pools import NodePoolProps, default_pools

# EKS-optimized AL2023 AMI release pinned for Karpenter nodes (never @latest: a new AMI reaches nodes
# only when this changes). Karpenter picks the NVIDIA or Neuron variant of the release by instance type.
DEFAULT_AMI_ALIAS = "al2023@v20260728"
_AMI_ALIAS = re.compile(r"^al2023@v\d{8}$")


@dataclass(frozen=True, kw_only=True)
class InferenceClusterProps:
    """Props of :class:`InferenceCluster`.

    base: the EKS base cluster to create (Auto Mode there swaps Karpenter for EKS Auto Mode NodePools).
    pools: Default: an NVIDIA pool (g5/g6/g6e), an Inferentia2 pool and a CPU pool.
    ami_alias: Default: al2023@v20260728.
    subnet_tags: tags of the subnets Karpenter launches into. Default: karpenter.sh/discovery=eks-ml,
        which MlVpc puts on its private subnets.
    """

    base: BaseClusterProps
    pools: Sequence[NodePoolProps] = field(default_factory=default_pools)
    ami_alias: str = DEFAULT_AMI_ALIAS
    subnet_tags: Mapping[str, str] = field(default_factory=lambda: {KARPENTER_DISCOVERY_TAG: "eks-ml"})


class InferenceCluster(Construct):
    """Attributes: ``base``, ``cluster``, ``karpenter`` (None with Auto Mode), ``pools_chart``."""

    def __init__(self, scope: Construct, construct_id: str, props: InferenceClusterProps) -> None:
        super().__init__(scope, construct_id)
        problems = Problems()
        if not props.pools:
            problems.add("pools", [], "at least one node pool", "add a NodePoolProps or keep the defaults")
        names = [pool.name for pool in props.pools]
        for name in sorted({n for n in names if names.count(n) > 1}):
            problems.add("pools.name", name, "unique pool names", "rename one of the pools")
        for index, pool in enumerate(props.pools):
            pool.check(f"pools[{index}]", problems)
        if not _AMI_ALIAS.match(props.ami_alias):
            problems.add(
                "ami_alias",
                props.ami_alias,
                "a pinned AL2023 release such as al2023@v20260728 (never @latest)",
                "pin a release from the EKS AMI release notes; roll it forward deliberately",
            )
        problems.raise_if_any()

        self.base = BaseCluster(self, "Base", props.base)
        self.cluster = self.base.cluster
        cluster = as_icluster(self.cluster)
        auto_mode = props.base.auto_mode
        self.karpenter = (
            None
            if auto_mode
            else Karpenter(
                self,
                "Karpenter",
                cluster=cluster,
                cluster_name=props.base.cluster_name,
                after=[self.base.system_nodes] if self.base.system_nodes else [],
            )
        )
        node_class = (
            NodeClassValues(
                ami_alias=props.ami_alias,
                role=self.karpenter.node_role_name,
                subnet_tags=props.subnet_tags,
                # EKS tags the cluster security group it creates with the cluster's name.
                security_group_tags={"aws:eks:cluster-name": props.base.cluster_name},
                tags={"eks-ml.io/cluster": props.base.cluster_name},
            )
            if self.karpenter
            else None
        )
        self.pools_chart = NodePoolsChart(
            cdk8s.App(),
            "NodePools",
            pools=[pool.values(auto_mode=auto_mode) for pool in props.pools],
            node_class=node_class,
        )
        manifest = self.cluster.add_cdk8s_chart("NodePools", self.pools_chart)
        if self.karpenter:
            manifest.node.add_dependency(self.karpenter.chart)  # CRDs and controller first
