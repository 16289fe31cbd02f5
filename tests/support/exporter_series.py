"""What each exporter eks-ml installs really emits, in its pinned version: series names, the labels each
series carries, and the values of the labels queries match on.

Facts only, each table with its source (repository @ tag, file); no upstream code is copied. A pin bump makes
tests/test_query_series.py fail until the table here is checked against the new version and its
``version`` updated: the test reads the pins (eks_ml.helm, the charts' Chart.yaml appVersion, image tags).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from eks_ml.catalog.spec import EFA_RESOURCE, NEURON_CORE_RESOURCE, NEURON_DEVICE_RESOURCE, NVIDIA_GPU_RESOURCE
from eks_ml.cluster.system_nodes import SystemPlacement
from eks_ml.k8s.dcgm_counters import COUNTERS
from eks_ml.observability.prometheus import EFA_COUNTER_METRIC, dcgm_exporter_values, kube_state_metrics_values
from eks_ml.observability.target import ObservedCluster

GAUGE, COUNTER, HISTOGRAM = "gauge", "counter", "histogram"


@dataclass(frozen=True)
class Exporter:
    """``series``: every series name it emits -> the labels the exporter itself sets on it (a trailing ``*``
    is a prefix: ``label_*``). ``values``: label (or ``series:label`` where one series gives it other values)
    -> every value the exporter gives it, for the labels whose values are a closed set (a query matching
    another value selects nothing)."""

    name: str
    version: str
    source: str
    series: Mapping[str, frozenset[str]]
    values: Mapping[str, frozenset[str]] = field(default_factory=dict)


def expand(metrics: Iterable[tuple[str, str]], labels: Iterable[str]) -> dict[str, frozenset[str]]:
    """The series a Prometheus client library exposes for each metric: a counter as ``<name>_total`` (the Python
    client adds the suffix), a histogram as ``_bucket`` (with ``le``), ``_sum`` and ``_count``."""
    common = frozenset(labels)
    series: dict[str, frozenset[str]] = {}
    for name, kind in metrics:
        if kind == COUNTER:
            series[f"{name.removesuffix('_total')}_total"] = common
        elif kind == HISTOGRAM:
            series[f"{name}_bucket"] = common | {"le"}
            series[f"{name}_sum"] = series[f"{name}_count"] = common
        else:
            series[name] = common
    return series


# --- dcgm-exporter -------------------------------------------------------------------------------------------
# The pinned chart's appVersion (helm.DCGM_EXPORTER 4.8.2 -> appVersion 4.8.2, image tag 4.5.3-4.8.2).
DCGM_VERSION = "4.8.2"
# Every field named in etc/default-counters.csv (enabled or commented out), with its Prometheus type:
# NVIDIA/dcgm-exporter @ 4.5.3-4.8.2 (691c92762eb5), etc/default-counters.csv. A counter list naming a field
# outside this set names no field dcgm-exporter documents.
DCGM_DOCUMENTED_FIELDS: Mapping[str, str] = {
    **dict.fromkeys(
        (
            "DCGM_FI_DEV_SM_CLOCK",
            "DCGM_FI_DEV_MEM_CLOCK",
            "DCGM_FI_DEV_MEMORY_TEMP",
            "DCGM_FI_DEV_GPU_TEMP",
            "DCGM_FI_DEV_POWER_USAGE",
            "DCGM_FI_DEV_GPU_UTIL",
            "DCGM_FI_DEV_MEM_COPY_UTIL",
            "DCGM_FI_DEV_ENC_UTIL",
            "DCGM_FI_DEV_DEC_UTIL",
            "DCGM_FI_DEV_XID_ERRORS",
            "DCGM_FI_DEV_FB_FREE",
            "DCGM_FI_DEV_FB_USED",
            "DCGM_FI_DEV_FB_RESERVED",
            "DCGM_FI_DEV_VGPU_LICENSE_STATUS",
            "DCGM_FI_DEV_ROW_REMAP_FAILURE",
            "DCGM_FI_PROF_GR_ENGINE_ACTIVE",
            "DCGM_FI_PROF_SM_ACTIVE",
            "DCGM_FI_PROF_SM_OCCUPANCY",
            "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE",
            "DCGM_FI_PROF_DRAM_ACTIVE",
            "DCGM_FI_PROF_PIPE_FP64_ACTIVE",
            "DCGM_FI_PROF_PIPE_FP32_ACTIVE",
            "DCGM_FI_PROF_PIPE_FP16_ACTIVE",
            # Listed twice: as a commented-out counter and as an enabled gauge (the DCP rate); the gauge is in use.
            "DCGM_FI_PROF_PCIE_TX_BYTES",
            "DCGM_FI_PROF_PCIE_RX_BYTES",
        ),
        GAUGE,
    ),
    **dict.fromkeys(
        (
            "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
            "DCGM_FI_DEV_PCIE_REPLAY_COUNTER",
            "DCGM_FI_DEV_POWER_VIOLATION",
            "DCGM_FI_DEV_THERMAL_VIOLATION",
            "DCGM_FI_DEV_SYNC_BOOST_VIOLATION",
            "DCGM_FI_DEV_BOARD_LIMIT_VIOLATION",
            "DCGM_FI_DEV_LOW_UTIL_VIOLATION",
            "DCGM_FI_DEV_RELIABILITY_VIOLATION",
            "DCGM_EXP_CLOCK_EVENTS_COUNT",
            "DCGM_EXP_XID_ERRORS_COUNT",
            "DCGM_EXP_GPU_HEALTH_STATUS",
            "DCGM_EXP_P2P_STATUS",
            "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL",
            "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL",
            "DCGM_FI_DEV_ECC_SBE_AGG_TOTAL",
            "DCGM_FI_DEV_ECC_DBE_AGG_TOTAL",
            "DCGM_FI_DEV_RETIRED_SBE",
            "DCGM_FI_DEV_RETIRED_DBE",
            "DCGM_FI_DEV_RETIRED_PENDING",
            "DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL",
            "DCGM_FI_DEV_NVLINK_CRC_DATA_ERROR_COUNT_TOTAL",
            "DCGM_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_TOTAL",
            "DCGM_FI_DEV_NVLINK_RECOVERY_ERROR_COUNT_TOTAL",
            "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL",
            "DCGM_FI_DEV_NVLINK_BANDWIDTH_L0",
            "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS",
            "DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS",
        ),
        COUNTER,
    ),
    **dict.fromkeys(
        (
            "DCGM_FI_DRIVER_VERSION",
            "DCGM_FI_NVML_VERSION",
            "DCGM_FI_DEV_BRAND",
            "DCGM_FI_DEV_SERIAL",
            "DCGM_FI_DEV_OEM_INFOROM_VER",
            "DCGM_FI_DEV_ECC_INFOROM_VER",
            "DCGM_FI_DEV_POWER_INFOROM_VER",
            "DCGM_FI_DEV_INFOROM_IMAGE_VER",
            "DCGM_FI_DEV_VBIOS_VERSION",
        ),
        "label",  # not a series: a label on the others
    ),
}
# Labels of a GPU series: NVIDIA/dcgm-exporter @ 4.5.3-4.8.2, internal/pkg/rendermetrics/render_metrics.go (gpu,
# UUID, pci_bus_id, device, modelName, Hostname; GPU_I_PROFILE and GPU_I_ID on MIG instances) and
# internal/pkg/transformation/const.go (pod, namespace, container: the pod the GPU is allocated to, set because
# the chart always runs the exporter with DCGM_EXPORTER_KUBERNETES=true, templates/daemonset.yaml).
DCGM_LABELS = ("gpu", "UUID", "pci_bus_id", "device", "modelName", "Hostname", "GPU_I_PROFILE", "GPU_I_ID")
DCGM_POD_LABELS = ("pod", "namespace", "container")


def dcgm_exporter(
    counters: Iterable[tuple[str, str, str]] = COUNTERS, values: Mapping[str, Any] | None = None
) -> Exporter:
    """dcgm-exporter emits exactly the fields of the counter list eks-ml configures (its ``-f`` file): a series
    per field, named after the field, whatever its type. ``values``: the chart values (default: eks-ml's).
    With kubernetes.enablePodLabels (off in the chart) it adds the GPU user's pod labels, sanitised, and with
    kubernetes.enablePodUID a pod_uid label (internal/pkg/transformation/kubernetes.go and const.go @
    4.5.3-4.8.2): pod label keys are not known here, so any label then passes."""
    kubernetes = (dcgm_exporter_values() if values is None else values).get("kubernetes", {})
    labels = set(DCGM_LABELS + DCGM_POD_LABELS)
    labels |= {"*"} if kubernetes.get("enablePodLabels") else set()
    labels |= {"pod_uid"} if kubernetes.get("enablePodUID") else set()
    return Exporter(
        "dcgm-exporter",
        DCGM_VERSION,
        "eks_ml/k8s/dcgm_counters.py COUNTERS (the -f counter list); labels: NVIDIA/dcgm-exporter @ 4.5.3-4.8.2",
        {name: frozenset(labels) for name, kind, _ in counters if kind != "label"},
    )


# --- neuron-monitor ------------------------------------------------------------------------------------------
# The image eks-ml runs (eks_ml/k8s/neuron_monitor.py IMAGE, public.ecr.aws/neuron/neuron-monitor:1.3.0, the one
# aws-neuron/aws-neuron-sdk src/k8/k8s-neuron-monitor-daemonset.yml names) serves neuron-monitor's report
# through neuron-monitor-prometheus.py, the exporter aws-neuronx-tools installs to /opt/aws/neuron/bin
# (tools/neuron-sys-tools/neuron-monitor-user-guide.rst @ 3afa0fdf40b9, "neuron-monitor-prometheus.py"). Names
# and labels as that script builds them with prometheus_client (every public copy of it read, including the
# container's variant that reads neuron-monitor-output.json, builds the same names):
#   neuroncore_utilization_ratio, neuroncore_memory_usage_<type>, neuron_runtime_memory_used_bytes,
#   neuron_runtime_vcpu_usage_ratio, execution_errors_total, execution_status_total,
#   execution_latency_seconds (per runtime: instance labels + runtime_tag), hardware_ecc_events_total
#   (system level: instance labels + event_type, neuron_device_index), system_* and the instance and
#   neuron_hardware info metrics. neurondevice_hw_ecc_events_* is NOT among them: that is the name the
#   CloudWatch agent gives hardware_ecc_events_total in Container Insights.
# Label values: the user guide's execution_stats (error_summary, execution_summary) and neuron_hw_counters.
NEURON_MONITOR_VERSION = "1.3.0"
_INSTANCE = ("instance_name", "instance_id", "instance_type", "availability_zone", "region", "subnet_id")
_RUNTIME = (*_INSTANCE, "runtime_tag")
NEURON_MONITOR = Exporter(
    "neuron-monitor",
    NEURON_MONITOR_VERSION,
    "neuron-monitor-prometheus.py (aws-neuronx-tools) in public.ecr.aws/neuron/neuron-monitor:1.3.0",
    {
        "neuroncore_utilization_ratio": frozenset((*_RUNTIME, "neuroncore")),
        **{
            f"neuroncore_memory_usage_{kind}": frozenset((*_RUNTIME, "neuroncore", "memory_location"))
            for kind in ("constants", "model_code", "model_shared_scratchpad", "runtime_memory", "tensors")
        },
        "neuron_runtime_memory_used_bytes": frozenset((*_RUNTIME, "memory_location")),
        "neuron_runtime_vcpu_usage_ratio": frozenset((*_RUNTIME, "usage_type")),
        "execution_errors_total": frozenset((*_RUNTIME, "error_type")),
        "execution_errors_created": frozenset((*_RUNTIME, "error_type")),
        "execution_status_total": frozenset((*_RUNTIME, "status_type")),
        "execution_status_created": frozenset((*_RUNTIME, "status_type")),
        "execution_latency_seconds": frozenset((*_RUNTIME, "percentile")),
        "hardware_ecc_events_total": frozenset((*_INSTANCE, "event_type", "neuron_device_index")),
        "hardware_ecc_events_created": frozenset((*_INSTANCE, "event_type", "neuron_device_index")),
        "system_vcpu_count": frozenset(_INSTANCE),
        "system_vcpu_usage_ratio": frozenset((*_INSTANCE, "usage_type")),
        "system_memory_total_bytes": frozenset(_INSTANCE),
        "system_memory_used_bytes": frozenset(_INSTANCE),
        "system_swap_total_bytes": frozenset(_INSTANCE),
        "system_swap_used_bytes": frozenset(_INSTANCE),
        "instance_info": frozenset(_INSTANCE),
        "neuron_hardware_info": frozenset((*_INSTANCE, "neuron_device_count", "neuroncore_per_device_count")),
    },
    {
        "error_type": frozenset(("generic", "numerical", "transient", "model", "runtime", "hardware")),
        "status_type": frozenset(
            (
                "completed",
                "completed_with_err",
                "completed_with_num_err",
                "timed_out",
                "incorrect_input",
                "failed_to_queue",
            )
        ),
        "event_type": frozenset(
            ("mem_ecc_corrected", "mem_ecc_uncorrected", "sram_ecc_corrected", "sram_ecc_uncorrected")
        ),
        "memory_location": frozenset(("host", "neuron_device")),
        "usage_type": frozenset(("user", "system")),
    },
)

# --- EFA hardware counters (node-exporter textfile) ----------------------------------------------------------
# The per-port counters the EFA driver exposes under /sys/class/infiniband/<device>/ports/<port>/hw_counters
# (the sidecar reads exactly those files): torvalds/linux, drivers/infiniband/hw/efa/efa_verbs.c,
# EFA_DEFINE_PORT_STATS (since the device/port split, Linux 5.13; newer kernels add rdma_write_* and
# retransmission counters, not listed: a query on one of those must add it here with its kernel version).
# Device-level counters (submitted_cmds, cmds_err, ...) live in <device>/hw_counters, which the sidecar does
# not read.
EFA_PORT_COUNTERS = (
    "tx_bytes",
    "tx_pkts",
    "rx_bytes",
    "rx_pkts",
    "rx_drops",
    "send_bytes",
    "send_wrs",
    "recv_bytes",
    "recv_wrs",
    "rdma_read_wrs",
    "rdma_read_bytes",
    "rdma_read_wr_err",
    "rdma_read_resp_bytes",
)
# Labels: those EFA_TEXTFILE_SCRIPT writes (tests/test_query_series.py runs it to check).
EFA_COUNTERS = Exporter(
    "node-exporter textfile (EFA)",
    "linux efa driver",
    "eks_ml/observability/prometheus.py EFA_TEXTFILE_SCRIPT; counters: linux drivers/infiniband/hw/efa/efa_verbs.c",
    {EFA_COUNTER_METRIC: frozenset(("device", "port", "counter"))},
    {"counter": frozenset(EFA_PORT_COUNTERS)},
)

# --- kube-state-metrics --------------------------------------------------------------------------------------
# The pinned chart's appVersion (helm.KUBE_STATE_METRICS 8.4.0 -> appVersion 2.20.0). Families of the node, pod
# and HorizontalPodAutoscaler resources with their labels: kubernetes/kube-state-metrics @ v2.20.0
# (4ffeda2ef866), docs/metrics/cluster/node-metrics.md, docs/metrics/workload/pod-metrics.md,
# docs/metrics/workload/horizontalpodautoscaler-metrics.md. label_* and annotation_* carry only the keys
# allow-listed with --metric-labels-allowlist / --metric-annotations-allowlist (none by default).
KUBE_STATE_METRICS_VERSION = "2.20.0"
_KSM_FAMILIES: dict[tuple[str, ...], tuple[str, ...]] = {
    ("annotation_*", "node"): ("kube_node_annotations",),
    (
        "container_runtime_version",
        "internal_ip",
        "kernel_version",
        "kubelet_version",
        "kubeproxy_version",
        "node",
        "os_image",
        "pod_cidr",
        "provider_id",
        "system_uuid",
    ): ("kube_node_info",),
    ("label_*", "node"): ("kube_node_labels",),
    ("node", "role"): ("kube_node_role",),
    ("node", "pod_cidr"): ("kube_node_spec_pod_cidrs",),
    ("node",): (
        "kube_node_spec_unschedulable",
        "kube_node_created",
        "kube_node_deletion_timestamp",
    ),
    ("key", "node"): ("kube_node_spec_taint",),
    ("node", "resource", "unit"): (
        "kube_node_status_capacity",
        "kube_node_status_allocatable",
    ),
    ("address", "node", "type"): ("kube_node_status_addresses",),
    ("condition", "node", "status"): ("kube_node_status_condition",),
    ("annotation_*", "namespace", "pod", "uid"): ("kube_pod_annotations",),
    (
        "created_by_kind",
        "created_by_name",
        "host_ip",
        "host_network",
        "namespace",
        "node",
        "pod",
        "pod_ip",
        "priority_class",
        "uid",
    ): ("kube_pod_info",),
    ("ip", "ip_family", "namespace", "pod", "uid"): ("kube_pod_ips",),
    ("namespace", "pod", "uid"): (
        "kube_pod_start_time",
        "kube_pod_completion_time",
        "kube_pod_status_initialized_time",
        "kube_pod_status_ready_time",
        "kube_pod_status_container_ready_time",
        "kube_pod_overhead_cpu_cores",
        "kube_pod_overhead_memory_bytes",
        "kube_pod_runtimeclass_name_info",
        "kube_pod_created",
        "kube_pod_deletion_timestamp",
        "kube_pod_status_scheduled_time",
        "kube_pod_status_unschedulable",
        "kube_pod_status_unscheduled_time",
    ),
    ("namespace", "owner_is_controller", "owner_kind", "owner_name", "pod", "uid"): ("kube_pod_owner",),
    ("label_*", "namespace", "pod", "uid"): ("kube_pod_labels",),
    ("namespace", "nodeselector_*", "pod", "uid"): ("kube_pod_nodeselectors",),
    ("namespace", "phase", "pod", "uid"): ("kube_pod_status_phase",),
    ("namespace", "pod", "qos_class", "uid"): ("kube_pod_status_qos_class",),
    ("condition", "namespace", "pod", "uid"): (
        "kube_pod_status_ready",
        "kube_pod_status_scheduled",
    ),
    ("container", "container_id", "image", "image_id", "image_spec", "namespace", "pod", "uid"): (
        "kube_pod_container_info",
    ),
    ("container", "namespace", "pod", "uid"): (
        "kube_pod_container_status_waiting",
        "kube_pod_container_status_running",
        "kube_pod_container_state_started",
        "kube_pod_container_status_terminated",
        "kube_pod_container_status_last_terminated_exitcode",
        "kube_pod_container_status_last_terminated_timestamp",
        "kube_pod_container_status_ready",
        "kube_pod_container_status_restarts_total",
        "kube_pod_init_container_state_started",
        "kube_pod_init_container_status_waiting",
        "kube_pod_init_container_status_running",
        "kube_pod_init_container_status_terminated",
        "kube_pod_init_container_status_last_terminated_exitcode",
        "kube_pod_init_container_status_last_terminated_timestamp",
        "kube_pod_init_container_status_ready",
        "kube_pod_init_container_status_restarts_total",
    ),
    ("container", "namespace", "pod", "reason", "uid"): (
        "kube_pod_container_status_waiting_reason",
        "kube_pod_container_status_terminated_reason",
        "kube_pod_container_status_last_terminated_reason",
        "kube_pod_init_container_status_waiting_reason",
        "kube_pod_init_container_status_terminated_reason",
        "kube_pod_init_container_status_last_terminated_reason",
    ),
    ("container", "namespace", "node", "pod", "resource", "uid", "unit"): (
        "kube_pod_container_resource_requests",
        "kube_pod_container_resource_limits",
        "kube_pod_init_container_resource_limits",
        "kube_pod_init_container_resource_requests",
    ),
    ("namespace", "pod", "type", "uid"): ("kube_pod_restart_policy",),
    ("container", "container_id", "image", "image_id", "image_spec", "namespace", "pod", "restart_policy", "uid"): (
        "kube_pod_init_container_info",
    ),
    ("ephemeral", "namespace", "persistentvolumeclaim", "pod", "uid", "volume"): (
        "kube_pod_spec_volumes_persistentvolumeclaims_info",
        "kube_pod_spec_volumes_persistentvolumeclaims_readonly",
    ),
    ("namespace", "pod", "reason", "uid"): (
        "kube_pod_status_reason",
        "kube_pod_status_disruption_reason",
    ),
    ("effect", "key", "namespace", "operator", "pod", "toleration_seconds", "uid", "value"): ("kube_pod_tolerations",),
    ("namespace", "pod", "service_account", "uid"): ("kube_pod_service_account",),
    ("name", "namespace", "pod", "uid"): ("kube_pod_scheduler",),
    ("claim_name", "namespace", "pod", "resourceclaim_name", "resourceclaim_template_name", "uid"): (
        "kube_pod_resourceclaim_info",
    ),
    (
        "horizontalpodautoscaler",
        "namespace",
        "scaletargetref_api_version",
        "scaletargetref_kind",
        "scaletargetref_name",
    ): ("kube_horizontalpodautoscaler_info",),
    ("horizontalpodautoscaler", "namespace"): (
        "kube_horizontalpodautoscaler_annotations",
        "kube_horizontalpodautoscaler_labels",
        "kube_horizontalpodautoscaler_metadata_generation",
        "kube_horizontalpodautoscaler_spec_max_replicas",
        "kube_horizontalpodautoscaler_spec_min_replicas",
        "kube_horizontalpodautoscaler_spec_behavior_scale_down_tolerance",
        "kube_horizontalpodautoscaler_spec_behavior_scale_up_tolerance",
        "kube_horizontalpodautoscaler_status_current_replicas",
        "kube_horizontalpodautoscaler_status_desired_replicas",
        "kube_horizontalpodautoscaler_created",
        "kube_horizontalpodautoscaler_deletion_timestamp",
    ),
    ("container", "horizontalpodautoscaler", "metric_name", "metric_target_type", "namespace"): (
        "kube_horizontalpodautoscaler_spec_target_metric",
        "kube_horizontalpodautoscaler_status_target_metric",
    ),
    ("condition", "horizontalpodautoscaler", "namespace", "status"): ("kube_horizontalpodautoscaler_status_condition",),
}


def _sanitized(resource: str) -> str:
    """kube-state-metrics' SanitizeLabelName (internal/store/utils.go): what it writes in ``resource``."""
    return "".join(c if c.isalnum() or c == "_" else "_" for c in resource)


KUBE_STATE_METRICS = Exporter(
    "kube-state-metrics",
    KUBE_STATE_METRICS_VERSION,
    "kubernetes/kube-state-metrics @ v2.20.0, docs/metrics/{cluster/node,workload/pod,workload/horizontalpodautoscaler}-metrics.md",
    {name: frozenset(labels) for labels, names in _KSM_FAMILIES.items() for name in names},
    {
        # kube_node_status_condition: a series per condition of the node and per status (true, false, unknown):
        # the kubelet's (Ready and the pressure conditions, k8s.io/api core/v1 NodeConditionType) and those of
        # the eks-node-monitoring-agent add-on eks-ml installs (eks_ml/cluster/addons.py): one per category,
        # aws/eks-node-monitoring-agent README and the Amazon EKS "node health" guide.
        "kube_node_status_condition:condition": frozenset(
            ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable")
            + ("KernelReady", "NetworkingReady", "StorageReady", "ContainerRuntimeReady", "AcceleratedHardwareReady")
        ),
        "status": frozenset(("true", "false", "unknown")),
        # The pod's Ready condition as a label (pod-metrics.md: `condition`=<true|false|unknown>).
        "kube_pod_status_ready:condition": frozenset(("true", "false", "unknown")),
        "kube_pod_status_scheduled:condition": frozenset(("true", "false", "unknown")),
        # HorizontalPodAutoscalerConditionType, k8s.io/api autoscaling/v2.
        "kube_horizontalpodautoscaler_status_condition:condition": frozenset(
            ("AbleToScale", "ScalingActive", "ScalingLimited")
        ),
        "resource": frozenset(
            ("cpu", "memory", "ephemeral_storage", "pods")
            + tuple(
                _sanitized(r) for r in (NVIDIA_GPU_RESOURCE, NEURON_DEVICE_RESOURCE, NEURON_CORE_RESOURCE, EFA_RESOURCE)
            )
        ),
    },
)

# --- vLLM ----------------------------------------------------------------------------------------------------
# The pinned release (eks_ml/inference/model_service.py VLLM_NVIDIA_IMAGE vllm/vllm-openai:v0.11.0): the metrics
# PrometheusStatLogger registers, vllm-project/vllm @ v0.11.0, vllm/v1/metrics/loggers.py (read from the
# vllm 0.11.0 wheel on PyPI), with labels model_name and engine (request_success adds finished_reason). Left
# out: the deprecated ones shown only with --show-hidden-metrics-for-version, LoRA and speculative decoding
# metrics (eks-ml configures neither).
VLLM_VERSION = "0.11.0"
_VLLM_0_11 = (
    ("vllm:num_requests_running", GAUGE),
    ("vllm:num_requests_waiting", GAUGE),
    ("vllm:kv_cache_usage_perc", GAUGE),
    ("vllm:prefix_cache_queries", COUNTER),
    ("vllm:prefix_cache_hits", COUNTER),
    ("vllm:num_preemptions", COUNTER),
    ("vllm:prompt_tokens", COUNTER),
    ("vllm:generation_tokens", COUNTER),
    ("vllm:request_success", COUNTER),
    ("vllm:request_prompt_tokens", HISTOGRAM),
    ("vllm:request_generation_tokens", HISTOGRAM),
    ("vllm:iteration_tokens_total", HISTOGRAM),
    ("vllm:request_max_num_generation_tokens", HISTOGRAM),
    ("vllm:request_params_n", HISTOGRAM),
    ("vllm:request_params_max_tokens", HISTOGRAM),
    ("vllm:time_to_first_token_seconds", HISTOGRAM),
    ("vllm:time_per_output_token_seconds", HISTOGRAM),
    ("vllm:inter_token_latency_seconds", HISTOGRAM),
    ("vllm:request_time_per_output_token_seconds", HISTOGRAM),
    ("vllm:e2e_request_latency_seconds", HISTOGRAM),
    ("vllm:request_queue_time_seconds", HISTOGRAM),
    ("vllm:request_inference_time_seconds", HISTOGRAM),
    ("vllm:request_prefill_time_seconds", HISTOGRAM),
    ("vllm:request_decode_time_seconds", HISTOGRAM),
    ("vllm:cache_config_info", GAUGE),
)
# The Neuron image (VLLM_NEURON_IMAGE pytorch-inference-vllm-neuronx:0.13.0-neuronx-...-sdk2.28.0) is not a fork
# of vLLM's serving path: Neuron SDK 2.27-2.31 run upstream vLLM 0.13.x with the NxD Inference plugin, which
# replaces model loading and execution only (AWS Neuron docs, "vLLM on Neuron": "maintaining vLLM's input
# processing, scheduling, and output processing behaviors"), so its /metrics are upstream vLLM 0.13.0's:
# vllm-project/vllm @ v0.13.0, vllm/v1/metrics/loggers.py (the vllm 0.13.0 wheel on PyPI). Assumption, stated:
# the image tag's leading version is the vLLM it ships. Left out as above, plus corrupted_requests
# (VLLM_COMPUTE_NANS_IN_LOGITS) and the kv_block_* histograms (KV-cache metrics off by default).
VLLM_NEURON_VERSION = "0.13.0"
_VLLM_0_13 = (
    ("vllm:num_requests_running", GAUGE),
    ("vllm:num_requests_waiting", GAUGE),
    ("vllm:engine_sleep_state", GAUGE),
    ("vllm:kv_cache_usage_perc", GAUGE),
    ("vllm:prefix_cache_queries", COUNTER),
    ("vllm:prefix_cache_hits", COUNTER),
    ("vllm:external_prefix_cache_queries", COUNTER),
    ("vllm:external_prefix_cache_hits", COUNTER),
    ("vllm:mm_cache_queries", COUNTER),
    ("vllm:mm_cache_hits", COUNTER),
    ("vllm:num_preemptions", COUNTER),
    ("vllm:prompt_tokens", COUNTER),
    ("vllm:generation_tokens", COUNTER),
    ("vllm:request_success", COUNTER),
    ("vllm:request_prompt_tokens", HISTOGRAM),
    ("vllm:request_generation_tokens", HISTOGRAM),
    ("vllm:iteration_tokens_total", HISTOGRAM),
    ("vllm:request_max_num_generation_tokens", HISTOGRAM),
    ("vllm:request_params_n", HISTOGRAM),
    ("vllm:request_params_max_tokens", HISTOGRAM),
    ("vllm:time_to_first_token_seconds", HISTOGRAM),
    ("vllm:inter_token_latency_seconds", HISTOGRAM),
    ("vllm:request_time_per_output_token_seconds", HISTOGRAM),
    ("vllm:e2e_request_latency_seconds", HISTOGRAM),
    ("vllm:request_queue_time_seconds", HISTOGRAM),
    ("vllm:request_inference_time_seconds", HISTOGRAM),
    ("vllm:request_prefill_time_seconds", HISTOGRAM),
    ("vllm:request_decode_time_seconds", HISTOGRAM),
    ("vllm:request_prefill_kv_computed_tokens", HISTOGRAM),
    ("vllm:cache_config_info", GAUGE),
)
_VLLM_LABELS = ("model_name", "engine", "finished_reason")
# The OpenAI API server also mounts prometheus-fastapi-instrumentator's default metrics on the same registry
# (vllm/entrypoints/openai/api_server.py mount_metrics @ v0.11.0, vllm/entrypoints/serve/instrumentator/metrics.py
# @ v0.13.0: Instrumentator(...).add()); names, labels and the grouped status values ("2xx", ...) from
# prometheus-fastapi-instrumentator 7.1.0 (vLLM requires >= 7.0.0), metrics.py default() and middleware.py.
_HTTP = {
    "http_requests_total": frozenset(("handler", "status", "method")),
    **{
        f"http_{name}_size_bytes_{part}": frozenset(("handler",))
        for name in ("request", "response")
        for part in ("sum", "count")
    },
    **expand((("http_request_duration_highr_seconds", HISTOGRAM),), ()),
    **expand((("http_request_duration_seconds", HISTOGRAM),), ("handler", "method")),
}
_HTTP_VALUES = {"status": frozenset(("1xx", "2xx", "3xx", "4xx", "5xx"))}
VLLM = Exporter(
    "vLLM",
    VLLM_VERSION,
    "vllm-project/vllm @ v0.11.0, vllm/v1/metrics/loggers.py and the API server's HTTP metrics",
    {**expand(_VLLM_0_11, _VLLM_LABELS), **_HTTP},
    _HTTP_VALUES,
)
VLLM_NEURON = Exporter(
    "vLLM (Neuron image)",
    VLLM_NEURON_VERSION,
    "vllm-project/vllm @ v0.13.0, vllm/v1/metrics/loggers.py (upstream serving path in the Neuron DLC)",
    {**expand(_VLLM_0_13, _VLLM_LABELS), **_HTTP},
    _HTTP_VALUES,
)


# --- what is installed where ----------------------------------------------------------------------------------
_ALLOWLISTED = {
    # family -> (its dynamic label prefix, the chart value that allow-lists keys, the resource's plural)
    "kube_pod_labels": ("label_", "metricLabelsAllowlist", "pods"),
    "kube_node_labels": ("label_", "metricLabelsAllowlist", "nodes"),
    "kube_horizontalpodautoscaler_labels": ("label_", "metricLabelsAllowlist", "horizontalpodautoscalers"),
    "kube_pod_annotations": ("annotation_", "metricAnnotationsAllowList", "pods"),
    "kube_node_annotations": ("annotation_", "metricAnnotationsAllowList", "nodes"),
    "kube_horizontalpodautoscaler_annotations": (
        "annotation_",
        "metricAnnotationsAllowList",
        "horizontalpodautoscalers",
    ),
}


def allowlist(entries: Iterable[str]) -> dict[str, frozenset[str]]:
    """``["pods=[app,team]", "nodes=[*]"]`` (the chart's list, joined into --metric-labels-allowlist) -> keys per
    resource."""
    keys: dict[str, frozenset[str]] = {}
    for entry in entries:
        for resource, listed in re.findall(r"([\w.]+)=\[([^\]]*)\]", entry):
            keys[resource] = frozenset(key.strip() for key in listed.split(",") if key.strip())
    return keys


def kube_state_metrics(values: Mapping[str, Any]) -> Exporter:
    """kube-state-metrics as eks-ml configures it (``values``: the chart values): label_*/annotation_* carry only
    the allow-listed keys, sanitised the way kube-state-metrics does."""
    series = dict(KUBE_STATE_METRICS.series)
    for family, (prefix, value, resource) in _ALLOWLISTED.items():
        keys = allowlist(values.get(value, ())).get(resource, frozenset())
        dynamic = {f"{prefix}*"} if "*" in keys else {prefix + _sanitized(key) for key in keys}
        series[family] = frozenset(label for label in series[family] if not label.endswith("*")) | dynamic
    return dataclasses.replace(KUBE_STATE_METRICS, series=series)


def exporters_on(cluster: ObservedCluster) -> tuple[Exporter, ...]:
    """The exporters the Prometheus backend installs for ``cluster`` (eks_ml/observability/prometheus.py:
    node-exporter with the EFA textfile and kube-state-metrics always, dcgm-exporter on NVIDIA, neuron-monitor
    on Neuron) plus the model servers of an inference cluster, each image's vLLM."""
    installed = [EFA_COUNTERS, kube_state_metrics(kube_state_metrics_values(SystemPlacement({})))]
    if cluster.nvidia:
        installed.append(dcgm_exporter())
    if cluster.neuron:
        installed.append(NEURON_MONITOR)
    if cluster.workload == "inference":
        installed += [VLLM] if cluster.nvidia else []
        installed += [VLLM_NEURON] if cluster.neuron else []
    return tuple(installed)
