"""The CloudWatch metrics eks-ml's alarms and dashboards may read: names and the dimension sets each is
published with. An alarm or a dashboard query on a name, or on a dimension set, that is not published
shows "no data" forever (and an alarm that treats missing data as fine never fires), so both are checked
against these tables (tests/test_dashboards.py).

Container Insights (namespace ContainerInsights): the CloudWatch User Guide page "Amazon EKS and
Kubernetes Container Insights with enhanced observability metrics"
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Container-Insights-metrics-enhanced-EKS.html,
read 2026-11). The table holds the cluster, namespace, node-GPU-count and pod-restart rows eks-ml reads
and the NVIDIA GPU, AWS Neuron and EFA sections in full. Each section names the first
amazon-cloudwatch-observability add-on version that publishes it; the oldest version eks-ml accepts
(addon.MIN_CLOUDWATCH_ADDON; unpinned, EKS installs its default, a newer one) is at or above each of them.
Not in the page, hence not here: ``cluster_gpu_request``/``cluster_gpu_total`` (the agent's source emits
them, the reference does not list them: they are not relied on).

AWS/FSx: the FSx for Lustre User Guide page "Amazon FSx for Lustre metrics and dimensions"
(https://docs.aws.amazon.com/fsx/latest/LustreGuide/fs-metrics.html, read 2026-11), network I/O
metrics, which "all take one dimension, FileSystemId".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

CONTAINER_INSIGHTS = "ContainerInsights"
FSX = "AWS/FSx"

DimensionSet = frozenset[str]


def _sets(*sets: str) -> frozenset[DimensionSet]:
    """``"ClusterName InstanceId NodeName"`` style strings to dimension sets (order does not matter)."""
    return frozenset(frozenset(dimensions.split()) for dimensions in sets)


@dataclass(frozen=True)
class MetricSection:
    """Rows of one section of a reference page; ``since_addon`` is the first add-on version with them
    (None: published since Container Insights with enhanced observability exists)."""

    title: str
    since_addon: tuple[int, int, int] | None
    metrics: Mapping[str, frozenset[DimensionSet]]


_NODE_GPU_COUNT = _sets("ClusterName", "ClusterName InstanceId NodeName")
_CONTAINER = _sets(
    "ClusterName",
    "ClusterName Namespace PodName ContainerName",
    "ClusterName Namespace PodName FullPodName ContainerName",
)
_GPU_CONTAINER = _CONTAINER | _sets("ClusterName Namespace PodName FullPodName ContainerName GpuDevice")
_GPU_NODE = _sets(
    "ClusterName", "ClusterName InstanceId NodeName", "ClusterName InstanceId InstanceType NodeName GpuDevice"
)
# pod_gpu_memory_*, _power_draw and _temperature have namespace and service sets; pod_gpu_utilization and
# pod_gpu_tensor_core_utilization are listed with the container's sets only.
_GPU_POD = _sets(
    "ClusterName",
    "ClusterName Namespace",
    "ClusterName Namespace Service",
    "ClusterName Namespace PodName",
    "ClusterName Namespace PodName FullPodName",
    "ClusterName Namespace PodName FullPodName GpuDevice",
)
_NEURON_CONTAINER = _CONTAINER | _sets(
    "ClusterName Namespace PodName FullPodName ContainerName NeuronDevice NeuronCore"
)
_NEURON_POD = _sets(
    "ClusterName",
    "ClusterName Namespace",
    "ClusterName Namespace Service",
    "ClusterName Namespace PodName FullPodName",
    "ClusterName Namespace PodName FullPodName NeuronDevice NeuronCore",
)
_NEURON_CORE_NODE = _sets(
    "ClusterName",
    "ClusterName UltraServer",
    "ClusterName InstanceId NodeName",
    "ClusterName InstanceType InstanceId NodeName NeuronDevice NeuronCore",
)
_NEURON_NODE = _sets("ClusterName", "ClusterName UltraServer", "ClusterName InstanceId NodeName")
_EFA_CONTAINER = _CONTAINER | _sets("ClusterName Namespace PodName FullPodName ContainerName NetworkInterfaceId")
_EFA_POD = _sets(
    "ClusterName",
    "ClusterName Namespace",
    "ClusterName Namespace Service",
    "ClusterName Namespace PodName",
    "ClusterName Namespace PodName FullPodName",
    "ClusterName Namespace PodName FullPodName NetworkInterfaceId",
)
_EFA_NODE = _sets(
    "ClusterName", "ClusterName InstanceId NodeName", "ClusterName InstanceId InstanceType NodeName NetworkInterfaceId"
)
_NEURON_MEMORY_KINDS = ("constants", "model_code", "model_shared_scratchpad", "runtime_memory", "tensors", "total")
_EFA_KINDS = ("rx_bytes", "tx_bytes", "rx_dropped", "rdma_read_bytes", "rdma_write_bytes", "rdma_write_recv_bytes")
_GPU_KINDS = ("memory_total", "memory_used", "memory_utilization", "power_draw", "temperature")

CONTAINER_INSIGHTS_SECTIONS = (
    MetricSection(
        "Cluster, namespace, node and pod metrics (the rows eks-ml reads)",
        None,
        {
            "cluster_failed_node_count": _sets("ClusterName"),
            "cluster_node_count": _sets("ClusterName"),
            "namespace_number_of_running_pods": _sets("ClusterName Namespace", "ClusterName"),
            "node_gpu_limit": _NODE_GPU_COUNT,
            "node_gpu_usage_total": _NODE_GPU_COUNT,
            "node_gpu_reserved_capacity": _NODE_GPU_COUNT,
            "pod_number_of_container_restarts": _sets("ClusterName Namespace PodName"),
            "service_number_of_running_pods": _sets("ClusterName Namespace Service", "ClusterName"),
        },
    ),
    MetricSection(
        "NVIDIA GPU metrics",
        (1, 3, 0),
        {
            **{
                f"container_gpu_{kind}": _GPU_CONTAINER
                for kind in (*_GPU_KINDS, "utilization", "tensor_core_utilization")
            },
            **{f"node_gpu_{kind}": _GPU_NODE for kind in (*_GPU_KINDS, "utilization", "tensor_core_utilization")},
            **{f"pod_gpu_{kind}": _GPU_POD for kind in _GPU_KINDS},
            "pod_gpu_utilization": _GPU_CONTAINER,
            "pod_gpu_tensor_core_utilization": _GPU_CONTAINER,
        },
    ),
    MetricSection(
        "AWS Neuron metrics for AWS Trainium and AWS Inferentia",
        (1, 5, 0),
        {
            "container_neuroncore_utilization": _NEURON_CONTAINER,
            **{f"container_neuroncore_memory_usage_{kind}": _NEURON_CONTAINER for kind in _NEURON_MEMORY_KINDS},
            "container_neurondevice_hw_ecc_events_total": _CONTAINER
            | _sets("ClusterName Namespace PodName FullPodName ContainerName NeuronDevice"),
            "pod_neuroncore_utilization": _NEURON_POD,
            **{f"pod_neuroncore_memory_usage_{kind}": _NEURON_POD for kind in _NEURON_MEMORY_KINDS},
            "pod_neurondevice_hw_ecc_events_total": _sets(
                "ClusterName",
                "ClusterName Namespace",
                "ClusterName Namespace Service",
                "ClusterName Namespace PodName",
                "ClusterName Namespace PodName FullPodName",
                "ClusterName Namespace PodName FullPodName NeuronDevice",
            ),
            "node_neuroncore_utilization": _NEURON_CORE_NODE,
            **{f"node_neuroncore_memory_usage_{kind}": _NEURON_CORE_NODE for kind in _NEURON_MEMORY_KINDS},
            "node_neuron_execution_errors_total": _NEURON_NODE,
            "node_neurondevice_runtime_memory_used_bytes": _NEURON_NODE,
            "node_neuron_execution_latency": _NEURON_NODE,
            "node_neurondevice_hw_ecc_events_total": _NEURON_NODE
            | _sets("ClusterName InstanceId NodeName NeuronDevice"),
        },
    ),
    MetricSection(
        "AWS Elastic Fabric Adapter (EFA) metrics",
        (1, 5, 2),
        {
            **{f"container_efa_{kind}": _EFA_CONTAINER for kind in _EFA_KINDS},
            **{f"pod_efa_{kind}": _EFA_POD for kind in _EFA_KINDS},
            **{f"node_efa_{kind}": _EFA_NODE for kind in _EFA_KINDS},
        },
    ),
)

FSX_SECTIONS = (
    MetricSection(
        "FSx for Lustre network I/O metrics",
        None,
        {
            name: _sets("FileSystemId")
            for name in (
                "DataReadBytes",
                "DataWriteBytes",
                "DataReadOperations",
                "DataWriteOperations",
                "MetadataOperations",
            )
        },
    ),
)

PUBLISHED: Mapping[str, Mapping[str, frozenset[DimensionSet]]] = {
    CONTAINER_INSIGHTS: {
        name: sets for section in CONTAINER_INSIGHTS_SECTIONS for name, sets in section.metrics.items()
    },
    FSX: {name: sets for section in FSX_SECTIONS for name, sets in section.metrics.items()},
}


def unpublished(namespace: str, metric: str, dimensions: Iterable[str]) -> str | None:
    """Why ``metric`` with ``dimensions`` (their names) in ``namespace`` has no data, or None if it is
    published. Names only: a dimension's value (a cluster name, a file system id) is not checked."""
    names = frozenset(dimensions)
    table = PUBLISHED.get(namespace)
    if table is None:
        return f"namespace {namespace!r} is none of {sorted(PUBLISHED)}"
    sets = table.get(metric)
    if sets is None:
        return f"{namespace} publishes no metric {metric!r}"
    if names not in sets:
        listed = " | ".join(sorted(", ".join(sorted(s)) for s in sets))
        return f"{namespace} {metric} is not published with dimensions {sorted(names)} (it is with: {listed})"
    return None
