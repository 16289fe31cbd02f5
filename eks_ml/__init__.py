"""eks-ml: AWS CDK constructs for machine-learning infrastructure on Amazon EKS.

Importing ``eks_ml`` has no side effects and does not start jsii: the names below load on first use, so
an app can still choose jsii's Node.js after ``import eks_ml`` (see :mod:`eks_ml.bundled_node`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time __getattr__ loads them
    from . import catalog as catalog
    from .cluster import BaseCluster as BaseCluster
    from .cluster import BaseClusterProps as BaseClusterProps
    from .cluster import EndpointAccessMode as EndpointAccessMode
    from .cluster import SystemNodesProps as SystemNodesProps
    from .config import AppConfig as AppConfig
    from .config import load_app_config as load_app_config
    from .errors import Problem as Problem
    from .errors import ValidationError as ValidationError
    from .network import MlVpc as MlVpc
    from .network import MlVpcProps as MlVpcProps
    from .network import NatGateways as NatGateways

# Public name -> the module that defines it.
_EXPORTS = {
    "AppConfig": ".config",
    "BaseCluster": ".cluster",
    "BaseClusterProps": ".cluster",
    "EndpointAccessMode": ".cluster",
    "MlVpc": ".network",
    "MlVpcProps": ".network",
    "NatGateways": ".network",
    "Problem": ".errors",
    "SystemNodesProps": ".cluster",
    "ValidationError": ".errors",
    "catalog": ".catalog",
    "load_app_config": ".config",
}
__all__ = sorted(_EXPORTS)


# Submodules reachable as attributes after ``import eks_ml`` (eks_ml.gitops, eks_ml.training, ...).
_SUBMODULES = {"catalog", "cluster", "gitops", "helm", "inference", "network", "observability", "plan", "training"}


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES and name not in _EXPORTS:
        module = importlib.import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    if name not in _EXPORTS:
        raise AttributeError(f"module 'eks_ml' has no attribute {name!r}")
    module = importlib.import_module(_EXPORTS[name], __name__)
    value = module if name == "catalog" else getattr(module, name)
    globals()[name] = value  # later look-ups skip this function
    return value
