"""ML alerts as Prometheus alerting rules, evaluated by Amazon Managed Service for Prometheus.

Series come from dcgm-exporter (DCGM_FI_DEV_*: default counters of dcgm-exporter 4.x, with the pod's
namespace and name when the GPU is allocated to a pod), neuron-monitor (neuroncore_*, execution_*,
hardware_ecc_events_total), kube-state-metrics (kube_*), and vLLM's own /metrics (vllm:*). The thresholds
are props of the add-on.
Every alert has fire and silence cases run by promtool (tests/test_prometheus_rules.py): add cases with a new alert.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..inference.metrics import VLLM_LATENCY_BUCKETS, VLLM_QUEUE_SERIES
from .cost_rules import cost_rules
from .limits import GPU_HOT_CELSIUS, IDLE_MINUTES, IDLE_PERCENT
from .rule_scope import RuleScope
from .slo_rules import slo_rules

# GpuClocksThrottled: power- plus heat-throttled nanoseconds per second above which a GPU has spent over 10% of
# the time throttled (1e9 ns per second).
THROTTLED_NS_PER_S = 100_000_000


@dataclass(frozen=True)
class Thresholds:
    """latency_p95_seconds: end-to-end request latency of a model service. queue_depth: requests waiting
    per server pod. Both for 10 minutes."""

    latency_p95_seconds: float = 30.0
    queue_depth: int = 16


@dataclass(frozen=True)
class PrometheusAlert:
    name: str
    summary: str
    applies: Callable[[RuleScope], bool]
    expr: Callable[[RuleScope, Thresholds], str]
    duration: str
    severity: str


def _always(_: RuleScope) -> bool:
    return True


def _nvidia(t: RuleScope) -> bool:
    return t.nvidia


def _inference(t: RuleScope) -> bool:
    return t.workload == "inference"


PROMETHEUS_ALERTS = (
    PrometheusAlert(
        "NodeNotReady",
        "Node {{ $labels.node }} is not Ready",
        _always,
        lambda t, _: 'kube_node_status_condition{condition="Ready",status="true"} == 0',
        "5m",
        "critical",
    ),
    PrometheusAlert(
        "GpuXidError",
        "GPU {{ $labels.gpu }} on {{ $labels.Hostname }} reported XID {{ $value }}",
        _nvidia,
        lambda t, _: "DCGM_FI_DEV_XID_ERRORS > 0",
        "0m",
        "critical",
    ),
    PrometheusAlert(
        "GpuMemoryRowRemapping",
        "GPU {{ $labels.gpu }} on {{ $labels.Hostname }} remapped rows after uncorrectable ECC errors, or failed to",
        _nvidia,
        lambda t, _: "increase(DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS[10m]) > 0 or DCGM_FI_DEV_ROW_REMAP_FAILURE > 0",
        "0m",
        "critical",
    ),
    PrometheusAlert(
        "GpuThermalThrottling",
        f"GPU {{{{ $labels.gpu }}}} on {{{{ $labels.Hostname }}}} is at or above {GPU_HOT_CELSIUS} °C",
        _nvidia,
        lambda t, _: f"DCGM_FI_DEV_GPU_TEMP >= {GPU_HOT_CELSIUS}",
        "5m",
        "warning",
    ),
    PrometheusAlert(
        "GpuClocksThrottled",
        "GPU {{ $labels.gpu }} on {{ $labels.Hostname }} spends over 10% of the time power- or heat-throttled",
        _nvidia,
        # The violation counters count nanoseconds of throttling (NVML's violationTime; DCGM's dcgm_fields.h and
        # dcgm-exporter's etc/default-counters.csv said "us" until NVIDIA/dcgm-exporter e61056b, #589, first in
        # 4.4.2-4.7.1, and say "ns" in the pinned 4.5.3-4.8.2): per second, 1e8 ns is 10% of the time.
        lambda t, _: (
            f"(rate(DCGM_FI_DEV_POWER_VIOLATION[5m]) + rate(DCGM_FI_DEV_THERMAL_VIOLATION[5m])) > {THROTTLED_NS_PER_S}"
        ),
        "10m",
        "warning",
    ),
    PrometheusAlert(
        "GpuEccDoubleBitErrors",
        "GPU {{ $labels.gpu }} on {{ $labels.Hostname }} had uncorrectable (double-bit) ECC errors",
        _nvidia,
        lambda t, _: "increase(DCGM_FI_DEV_ECC_DBE_VOL_TOTAL[10m]) > 0",
        "0m",
        "critical",
    ),
    PrometheusAlert(
        "GpusIdleInTrainingJob",
        f"Pod {{{{ $labels.pod }}}} holds GPUs that are under {IDLE_PERCENT}% busy for {IDLE_MINUTES} minutes",
        lambda t: t.nvidia and t.workload == "training",
        lambda t, _: f'avg by (namespace, pod) (DCGM_FI_DEV_GPU_UTIL{{namespace="{t.namespace}"}}) < {IDLE_PERCENT}',
        f"{IDLE_MINUTES}m",
        "warning",
    ),
    PrometheusAlert(
        "EfaReceiveDrops",
        "EFA devices on {{ $labels.node }} drop received packets: collectives will stall or slow",
        lambda t: t.efa,
        # eksml_efa_hw_counter: EFA's sysfs hardware counters, exported by node-exporter's textfile sidecar.
        lambda t, _: 'sum by (node) (rate(eksml_efa_hw_counter{counter="rx_drops"}[5m])) > 0',
        "10m",
        "warning",
    ),
    PrometheusAlert(
        "NeuronExecutionErrors",
        "The Neuron runtime on {{ $labels.instance_id }} reports {{ $labels.error_type }} execution errors",
        lambda t: t.neuron,
        lambda t, _: "increase(execution_errors_total[5m]) > 0",
        "0m",
        "critical",
    ),
    PrometheusAlert(
        "NeuronEccEvents",
        "Neuron device memory on {{ $labels.instance_id }} reports ECC events",
        lambda t: t.neuron,
        # neuron-monitor-prometheus.py's name (event_type: mem/sram, corrected/uncorrected); the
        # neurondevice_hw_ecc_events_* names exist only in CloudWatch Container Insights.
        lambda t, _: "increase(hardware_ecc_events_total[10m]) > 0",
        "0m",
        "warning",
    ),
    PrometheusAlert(
        "NeuronCoresIdleInTrainingJob",
        f"NeuronCores on {{{{ $labels.instance_id }}}} are under {IDLE_PERCENT}% busy for {IDLE_MINUTES} minutes "
        "while a runtime holds them",
        lambda t: t.neuron and t.workload == "training",
        # neuron-monitor reports cores only while a Neuron runtime (a job) is attached to them.
        lambda t, _: f"avg by (instance_id) (neuroncore_utilization_ratio) < {IDLE_PERCENT / 100:g}",
        f"{IDLE_MINUTES}m",
        "warning",
    ),
    PrometheusAlert(
        "WorkloadPodRestarting",
        "Container {{ $labels.container }} of {{ $labels.pod }} restarted",
        _always,
        lambda t, _: f'increase(kube_pod_container_status_restarts_total{{namespace="{t.namespace}"}}[15m]) > 0',
        "0m",
        "warning",
    ),
    PrometheusAlert(
        "ModelLatencyHigh",
        "p95 end-to-end latency of the model servers in {{ $labels.namespace }} is {{ $value }} s",
        _inference,
        lambda t, th: (
            "histogram_quantile(0.95, sum by (le, namespace) "
            f'(rate({VLLM_LATENCY_BUCKETS}{{namespace="{t.namespace}"}}[5m]))) '
            f"> {th.latency_p95_seconds:g}"
        ),
        "10m",
        "warning",
    ),
    PrometheusAlert(
        "ModelQueueDeep",
        "{{ $value }} requests wait in model server {{ $labels.pod }}",
        _inference,
        lambda t, th: f'sum by (namespace, pod) ({VLLM_QUEUE_SERIES}{{namespace="{t.namespace}"}}) > {th.queue_depth}',
        "10m",
        "warning",
    ),
    PrometheusAlert(
        "AutoscalerAtMaximum",
        "HPA {{ $labels.horizontalpodautoscaler }} has run at its maximum replicas for 15 minutes",
        _inference,
        lambda t, _: (
            f'kube_horizontalpodautoscaler_status_current_replicas{{namespace="{t.namespace}"}} '
            ">= on (namespace, horizontalpodautoscaler) "
            f'kube_horizontalpodautoscaler_spec_max_replicas{{namespace="{t.namespace}"}}'
        ),
        "15m",
        "warning",
    ),
)


def rule_groups(target: RuleScope, thresholds: Thresholds) -> dict[str, Any]:
    """The Prometheus rules file (``groups:``) for the cluster: the ML alerts; the idle-accelerator cost
    (prices, then the alerts) when the cluster's accelerated types have a list price; the SLO burn-rate
    rules when it runs model services. Recording rules come before the alerts that read them."""
    alerts = [
        {
            "alert": alert.name,
            "expr": alert.expr(target, thresholds),
            "for": alert.duration,
            "labels": {"severity": alert.severity, "cluster": target.name},
            "annotations": {"summary": alert.summary},
        }
        for alert in PROMETHEUS_ALERTS
        if alert.applies(target)
    ]
    groups = [{"name": f"{target.name}-ml", "rules": alerts}]
    if cost := cost_rules(target):
        groups.append({"name": f"{target.name}-idle-cost", "rules": cost})
    if slo := slo_rules(target):
        groups.append({"name": f"{target.name}-slo", "rules": slo})
    return {"groups": groups}
