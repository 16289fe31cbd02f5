"""Inference clusters: Karpenter-provisioned accelerators for model servers."""

from ..placement.fargate import FargateSelector
from .cluster import DEFAULT_AMI_ALIAS, InferenceCluster, InferenceClusterProps
from .fargate import FargateProfileProps
from .karpenter import Karpenter
from .pools import INFERENCE_FAMILIES, NodePoolProps, PoolKind, default_pools
from .slo import ServiceLevelObjective
from .triton import S3ModelRepository, TritonServiceProps

__all__ = [
    "DEFAULT_AMI_ALIAS",
    "FargateProfileProps",
    "FargateSelector",
    "INFERENCE_FAMILIES",
    "InferenceCluster",
    "InferenceClusterProps",
    "Karpenter",
    "NodePoolProps",
    "PoolKind",
    "S3ModelRepository",
    "ServiceLevelObjective",
    "TritonServiceProps",
    "default_pools",
]
