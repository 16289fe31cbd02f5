"""eks-ml: AWS CDK constructs for machine-learning infrastructure on Amazon EKS."""

from ._runtime import prefer_bundled_node

prefer_bundled_node()  # before the first aws_cdk import starts jsii's Node.js process

from . import catalog  # noqa: E402
from .cluster import BaseCluster, BaseClusterProps, EndpointAccessMode, SystemNodesProps  # noqa: E402
from .config import AppConfig, load_app_config  # noqa: E402
from .errors import Problem, ValidationError  # noqa: E402
from .network import MlVpc, MlVpcProps, NatGateways  # noqa: E402

__all__ = [
    "AppConfig",
    "BaseCluster",
    "BaseClusterProps",
    "EndpointAccessMode",
    "MlVpc",
    "MlVpcProps",
    "NatGateways",
    "Problem",
    "SystemNodesProps",
    "ValidationError",
    "catalog",
    "load_app_config",
]
