"""Inference clusters: Karpenter-provisioned accelerators for model servers."""

from .cluster import DEFAULT_AMI_ALIAS, InferenceCluster, InferenceClusterProps
from .karpenter import Karpenter
from .multi_node import MultiNodeServiceProps
from .pools import INFERENCE_FAMILIES, NodePoolProps, PoolKind, default_pools
from .slo import ServiceLevelObjective

__all__ = [
    "DEFAULT_AMI_ALIAS",
    "INFERENCE_FAMILIES",
    "InferenceCluster",
    "InferenceClusterProps",
    "Karpenter",
    "MultiNodeServiceProps",
    "NodePoolProps",
    "PoolKind",
    "ServiceLevelObjective",
    "default_pools",
]
