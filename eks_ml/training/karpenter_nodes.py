"""Karpenter in a TrainingCluster: checks of the pools, the install (the inference cluster's Karpenter construct),
the pools' AWS resources and manifests, and their node sources in the cluster model."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import cdk8s
from aws_cdk import Tags
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from constructs import Construct, IDependable

from .._naming import pascal
from ..catalog import InstanceSpec
from ..cluster import BaseClusterProps
from ..cluster.system_nodes import SystemPlacement
from ..errors import Problems
from ..inference.karpenter import Karpenter
from ..manifest_bundle import PRELUDE, ManifestBundle
from ..placement import ClusterModel, karpenter_pool
from .karpenter_pool import KarpenterNodeSetting, TrainingKarpenterPool, TrainingKarpenterPoolProps

# The AL2023 AMI release the inference cluster's AL2023 pools pin too (eks_ml.inference.node_os.DEFAULT_AMI_ALIAS):
# Karpenter picks its NVIDIA or Neuron variant by instance type.
AMI_ALIAS = "al2023@v20260728"
# Tag on the EFA security group so the EC2NodeClass can select it (its id is a token at synth).
EFA_GROUP_TAG = "eks-ml.io/efa-security-group"
CLUSTER_GROUP_TAG = "aws:eks:cluster-name"  # EKS tags the cluster security group it creates with this


def check_karpenter_pools(
    pools: Sequence[TrainingKarpenterPoolProps], base: BaseClusterProps | None, problems: Problems
) -> list[InstanceSpec | None]:
    """Each pool's catalog record (None where unusable); Karpenter needs a cluster eks-ml creates, not on Auto Mode."""
    if not isinstance(pools, Sequence) or isinstance(pools, str):
        return []  # reported by the shape check
    specs = [
        pool.check(f"karpenter_pools[{index}]", problems) if isinstance(pool, TrainingKarpenterPoolProps) else None
        for index, pool in enumerate(pools)
    ]
    if pools and (base is None or base.auto_mode is True):
        problems.add(
            "karpenter_pools",
            [getattr(pool, "name", pool) for pool in pools],
            "Karpenter pools only on a cluster eks-ml creates (base=...) without EKS Auto Mode",
            "use node_groups on an imported cluster; on Auto Mode use its built-in pools, or set auto_mode=False",
        )
    return specs


def add_karpenter_pools(
    scope: Construct,
    pools: Sequence[TrainingKarpenterPoolProps],
    specs: Sequence[InstanceSpec | None],
    *,
    cluster: eks.ICluster,
    base: BaseClusterProps,
    model: ClusterModel,
    placement: SystemPlacement,
    efa_security_group: ec2.SecurityGroup,
    subnet_tags: Mapping[str, str],
    zone: str | None,
    after: Sequence[IDependable],
) -> tuple[Karpenter, dict[str, TrainingKarpenterPool], cdk8s.Chart]:
    """Install Karpenter, make each pool's placement group, add the pools to the model; return the chart of
    EC2NodeClasses and NodePools (applied after Karpenter's release, which brings their CRDs)."""
    # A prelude of its own: one CRD upgrade Job runs in one namespace, and Karpenter's (kube-system) is not
    # Trainer's (kubeflow-system), whose Job the training cluster's prelude holds (eks_ml.helm.upgrade_crds).
    scope = Construct(scope, "KarpenterNodes")
    ManifestBundle(scope, PRELUDE, cluster=cluster, after=after)
    karpenter = Karpenter(
        scope,
        "Karpenter",
        cluster=cluster,
        cluster_name=base.cluster_name,
        model=model,
        placement=placement,
        after=after,
    )
    Tags.of(efa_security_group).add(EFA_GROUP_TAG, base.cluster_name)
    setting = KarpenterNodeSetting(
        role=karpenter.node_role_name,
        ami_alias=AMI_ALIAS,
        subnet_tags=subnet_tags,
        security_group_tags=[{CLUSTER_GROUP_TAG: base.cluster_name}, {EFA_GROUP_TAG: base.cluster_name}],
        zone=zone,
        tags={"eks-ml.io/cluster": base.cluster_name},
    )
    built: dict[str, TrainingKarpenterPool] = {}
    chart = cdk8s.Chart(cdk8s.App(), "TrainingNodePools", disable_resource_name_hashes=True)
    for props, spec in zip(pools, specs, strict=True):
        assert spec is not None  # checked before anything was built
        pool = TrainingKarpenterPool(scope, f"{pascal(props.name)}Group", props=props, spec=spec, setting=setting)
        built[props.name] = pool
        for manifest in pool.manifests:
            _api_object(chart, manifest)
        model.add_source(
            karpenter_pool(
                props.name,
                specs=[spec],
                labels=pool.labels,
                taints=pool.taints,
                capacity_types=["reserved" if props.capacity.is_reserved else "on-demand"],
            )
        )
    return karpenter, built, chart


def _api_object(chart: cdk8s.Chart, manifest: Mapping[str, Any]) -> None:
    name = manifest["metadata"]["name"]
    obj = cdk8s.ApiObject(
        chart,
        f"{manifest['kind']}-{name}",
        api_version=manifest["apiVersion"],
        kind=manifest["kind"],
        metadata=cdk8s.ApiObjectMetadata(name=name),
    )
    obj.add_json_patch(cdk8s.JsonPatch.add("/spec", manifest["spec"]))
