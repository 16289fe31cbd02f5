"""cdk8s charts: plain values in, Kubernetes objects out; no AWS constructs inside."""

from .kueue_queues import QUEUE_NAME_LABEL, FlavorQuota, TrainingQueuesChart, TrainingQueuesValues
from .lustre_volume import LustreVolumeChart, LustreVolumeValues

__all__ = [
    "QUEUE_NAME_LABEL",
    "FlavorQuota",
    "LustreVolumeChart",
    "LustreVolumeValues",
    "TrainingQueuesChart",
    "TrainingQueuesValues",
]
