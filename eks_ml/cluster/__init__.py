"""The EKS base cluster shared by the training and inference clusters."""

from .base import ALL_CONTROL_PLANE_LOGS, BaseCluster, BaseClusterProps
from .rules import EndpointAccessMode
from .system_nodes import SYSTEM_NODE_LABEL, SystemNodesProps
from .versions import CORE_ADDONS, DEFAULT_KUBERNETES_VERSION, RELEASES, KubernetesRelease, release_for

__all__ = [
    "ALL_CONTROL_PLANE_LOGS",
    "CORE_ADDONS",
    "DEFAULT_KUBERNETES_VERSION",
    "RELEASES",
    "SYSTEM_NODE_LABEL",
    "BaseCluster",
    "BaseClusterProps",
    "EndpointAccessMode",
    "KubernetesRelease",
    "SystemNodesProps",
    "release_for",
]
