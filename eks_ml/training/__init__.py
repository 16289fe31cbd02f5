"""Training clusters: EFA-wired accelerated node groups in one AZ, placement groups, reservations."""

from .capacity import Capacity, CapacitySource
from .cluster import TrainingCluster, TrainingClusterProps
from .efa import EfaLayout, network_interfaces
from .karpenter_pool import TrainingKarpenterPool, TrainingKarpenterPoolProps
from .lustre import DataRepository, LustreProps, TrainingFileSystem
from .lustre_rules import FileSystemPin
from .node_group import (
    ACCELERATOR_LABEL,
    NODE_GROUP_LABEL,
    TRAINING_FAMILIES,
    TrainingNodeGroup,
    TrainingNodeGroupProps,
    fine_tuning_instance_types,
    training_instance_types,
)
from .storage import TrainingStorage
from .storage_classes import Gp3ClassProps, LustreClassProps, LustreDeployment, ReclaimPolicy, StorageClassesProps
from .sweeps import SearchMethod, SearchSpace, SweepProps
from .teams import TeamQueue

__all__ = [
    "TrainingKarpenterPool",
    "TrainingKarpenterPoolProps",
    "ACCELERATOR_LABEL",
    "NODE_GROUP_LABEL",
    "TRAINING_FAMILIES",
    "Capacity",
    "DataRepository",
    "FileSystemPin",
    "Gp3ClassProps",
    "LustreClassProps",
    "LustreDeployment",
    "ReclaimPolicy",
    "StorageClassesProps",
    "TrainingStorage",
    "LustreProps",
    "TrainingFileSystem",
    "CapacitySource",
    "EfaLayout",
    "TrainingCluster",
    "TrainingClusterProps",
    "TrainingNodeGroup",
    "TrainingNodeGroupProps",
    "network_interfaces",
    "training_instance_types",
    "fine_tuning_instance_types",
    "SearchMethod",
    "SearchSpace",
    "SweepProps",
    "TeamQueue",
]
