"""cdk8s charts: plain values in, Kubernetes objects out; no AWS constructs inside."""

from .dcgm_counters import DcgmCountersChart
from .kueue_queues import QUEUE_NAME_LABEL, FlavorQuota, TrainingQueuesChart, TrainingQueuesValues
from .lustre_volume import LustreVolumeChart, LustreVolumeValues
from .neuron_monitor import NeuronMonitorChart
from .storage_classes import StorageClassesChart, StorageClassValues
from .training_jobs import JobValues, RuntimeValues, TrainingRuntimesChart, TrainJobsChart

__all__ = [
    "DcgmCountersChart",
    "NeuronMonitorChart",
    "QUEUE_NAME_LABEL",
    "FlavorQuota",
    "JobValues",
    "RuntimeValues",
    "TrainJobsChart",
    "TrainingRuntimesChart",
    "LustreVolumeChart",
    "LustreVolumeValues",
    "StorageClassesChart",
    "StorageClassValues",
    "TrainingQueuesChart",
    "TrainingQueuesValues",
]
