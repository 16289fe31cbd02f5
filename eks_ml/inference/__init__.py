"""Inference clusters: Karpenter-provisioned accelerators for model servers."""

from ..placement.fargate import FargateSelector
from .batch import BatchInferenceJobProps, S3Prefix
from .cluster import InferenceCluster, InferenceClusterProps
from .fargate import FargateProfileProps
from .karpenter import Karpenter
from .model_service import Autoscaler
from .multi_node import MultiNodeServiceProps
from .node_os import DEFAULT_AMI_ALIAS, DEFAULT_BOTTLEROCKET_AMI_ALIAS, NodeOS
from .pools import INFERENCE_FAMILIES, NodePoolProps, PoolKind, default_pools
from .quantization import Quantization
from .queue_worker import MskSource, QueueWorkerProps, SqsSource
from .slo import ServiceLevelObjective
from .triton import S3ModelRepository, TritonServiceProps

__all__ = [
    "DEFAULT_AMI_ALIAS",
    "DEFAULT_BOTTLEROCKET_AMI_ALIAS",
    "INFERENCE_FAMILIES",
    "Autoscaler",
    "BatchInferenceJobProps",
    "FargateProfileProps",
    "FargateSelector",
    "InferenceCluster",
    "InferenceClusterProps",
    "Karpenter",
    "MskSource",
    "MultiNodeServiceProps",
    "NodeOS",
    "NodePoolProps",
    "PoolKind",
    "Quantization",
    "QueueWorkerProps",
    "S3ModelRepository",
    "S3Prefix",
    "ServiceLevelObjective",
    "SqsSource",
    "TritonServiceProps",
    "default_pools",
]
