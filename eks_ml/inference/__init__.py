"""Inference clusters: Karpenter-provisioned accelerators for model servers."""

from .batch import BatchInferenceJobProps, S3Prefix
from .cluster import DEFAULT_AMI_ALIAS, InferenceCluster, InferenceClusterProps
from .karpenter import Karpenter
from .pools import INFERENCE_FAMILIES, NodePoolProps, PoolKind, default_pools
from .quantization import Quantization
from .slo import ServiceLevelObjective

__all__ = [
    "BatchInferenceJobProps",
    "S3Prefix",
    "DEFAULT_AMI_ALIAS",
    "INFERENCE_FAMILIES",
    "InferenceCluster",
    "InferenceClusterProps",
    "Karpenter",
    "NodePoolProps",
    "PoolKind",
    "Quantization",
    "ServiceLevelObjective",
    "default_pools",
]
