"""The cluster model: node sources x workloads, and the synth-time proof that every workload can land."""

from .fargate import FargateSelector, fargate_profile, fargate_size
from .model import ClusterModel, Placement
from .nodes import NodeShape, NodeSource, Taint, karpenter_pool, managed_node_group
from .pods import Requirement, Toleration, Workload, workload, workloads_from_objects

__all__ = [
    "ClusterModel",
    "FargateSelector",
    "NodeShape",
    "NodeSource",
    "Placement",
    "Requirement",
    "Taint",
    "Toleration",
    "Workload",
    "fargate_profile",
    "fargate_size",
    "karpenter_pool",
    "managed_node_group",
    "workload",
    "workloads_from_objects",
]
