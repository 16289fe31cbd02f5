"""Inference clusters: Karpenter-provisioned accelerators for model servers."""

from .cluster import DEFAULT_AMI_ALIAS, InferenceCluster, InferenceClusterProps
from .karpenter import Karpenter
from .model_service import Autoscaler
from .pools import INFERENCE_FAMILIES, NodePoolProps, PoolKind, default_pools
from .queue_worker import MskSource, QueueWorkerProps, SqsSource
from .slo import ServiceLevelObjective

__all__ = [
    "Autoscaler",
    "DEFAULT_AMI_ALIAS",
    "INFERENCE_FAMILIES",
    "InferenceCluster",
    "InferenceClusterProps",
    "Karpenter",
    "MskSource",
    "NodePoolProps",
    "PoolKind",
    "QueueWorkerProps",
    "ServiceLevelObjective",
    "SqsSource",
    "default_pools",
]
