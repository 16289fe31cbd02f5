"""Grafana dashboards (JSON models) for a watched cluster, with queries for the add-on's backend.

Training: accelerator utilisation and memory, EFA and FSx throughput. Inference: requests, latency,
queue, tokens per second, replicas. Each panel has a query per backend where that backend has the data;
a panel a backend cannot fill is left out rather than drawn empty. FSx metrics are AWS/FSx CloudWatch
metrics whatever the backend, chosen by a dashboard variable (the file system id is known only after
deploy). Data sources are dashboard variables, so the files import into any Grafana (for example Amazon
Managed Grafana) with a Prometheus (AMP) and a CloudWatch data source.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..inference.metrics import (
    VLLM_GENERATED_TOKENS,
    VLLM_LATENCY_BUCKETS,
    VLLM_QUEUE_SERIES,
    VLLM_RUNNING_SERIES,
)
from .backend import Backend
from .target import ObservedCluster

SCHEMA_VERSION = 39
PROMETHEUS_DS = {"type": "prometheus", "uid": "${prometheus}"}
CLOUDWATCH_DS = {"type": "cloudwatch", "uid": "${cloudwatch}"}
Target = dict[str, Any]


def promql(expr: str, legend: str) -> Target:
    return {"datasource": PROMETHEUS_DS, "expr": expr, "legendFormat": legend}


def container_insights(metric: str, cluster: str, statistic: str = "Average") -> Target:
    return {
        "datasource": CLOUDWATCH_DS,
        "namespace": "ContainerInsights",
        "metricName": metric,
        "dimensions": {"ClusterName": cluster},
        "statistic": statistic,
        "region": "default",
        "matchExact": True,
        "metricQueryType": 0,
        "metricEditorMode": 0,
    }


def fsx(metric: str) -> Target:
    return {
        "datasource": CLOUDWATCH_DS,
        "namespace": "AWS/FSx",
        "metricName": metric,
        "dimensions": {"FileSystemId": "$fsx"},
        "statistic": "Sum",
        "region": "default",
        "matchExact": True,
        "metricQueryType": 0,
        "metricEditorMode": 0,
        "label": metric,
    }


@dataclass(frozen=True)
class Panel:
    """``queries`` maps a backend to the panel's queries for it; ``applies`` decides if the cluster has it."""

    title: str
    unit: str
    queries: Mapping[Backend | None, Callable[[ObservedCluster], list[Target]]]
    applies: Callable[[ObservedCluster], bool] = lambda _: True


def _any_backend(
    build: Callable[[ObservedCluster], list[Target]],
) -> Mapping[Backend | None, Callable[[ObservedCluster], list[Target]]]:
    return {None: build}


NEURON_PANEL = Panel(
    "NeuronCore utilisation",
    "percent",
    {
        Backend.PROMETHEUS: lambda t: [
            promql("100 * avg by (instance_id) (neuroncore_utilization_ratio)", "{{instance_id}}")
        ],
        Backend.CLOUDWATCH: lambda t: [container_insights("node_neuroncore_utilization", t.name)],
    },
    lambda t: t.neuron,
)

TRAINING_PANELS = (
    Panel(
        "GPU utilisation",
        "percent",
        {
            Backend.PROMETHEUS: lambda t: [
                promql("avg by (Hostname, gpu) (DCGM_FI_DEV_GPU_UTIL)", "{{Hostname}} GPU {{gpu}}")
            ],
            Backend.CLOUDWATCH: lambda t: [container_insights("node_gpu_utilization", t.name)],
        },
        lambda t: t.nvidia,
    ),
    Panel(
        "GPU memory used",
        "percent",
        {
            Backend.PROMETHEUS: lambda t: [
                promql(
                    "100 * DCGM_FI_DEV_FB_USED / (DCGM_FI_DEV_FB_USED + DCGM_FI_DEV_FB_FREE)",
                    "{{Hostname}} GPU {{gpu}}",
                )
            ],
            Backend.CLOUDWATCH: lambda t: [container_insights("node_gpu_memory_utilization", t.name)],
        },
        lambda t: t.nvidia,
    ),
    NEURON_PANEL,
    Panel(
        "EFA throughput",
        "Bps",
        {
            Backend.PROMETHEUS: lambda t: [
                promql(
                    f'sum by (node) (rate(eksml_efa_hw_counter{{counter="{counter}"}}[5m]))', f"{{{{node}}}} {label}"
                )
                for counter, label in (("rx_bytes", "received"), ("tx_bytes", "sent"))
            ],
            Backend.CLOUDWATCH: lambda t: [
                {**container_insights("node_efa_rx_bytes", t.name, "Sum"), "label": "received"},
                {**container_insights("node_efa_tx_bytes", t.name, "Sum"), "label": "sent"},
            ],
        },
        lambda t: t.efa,
    ),
    Panel("FSx for Lustre throughput", "bytes", _any_backend(lambda t: [fsx("DataReadBytes"), fsx("DataWriteBytes")])),
)

INFERENCE_PANELS = (
    Panel(
        "Requests running",
        "short",
        {
            Backend.PROMETHEUS: lambda t: [
                promql(f'sum by (pod) ({VLLM_RUNNING_SERIES}{{namespace="{t.namespace}"}})', "{{pod}}")
            ]
        },
    ),
    Panel(
        "End-to-end latency p50 / p95",
        "s",
        {
            Backend.PROMETHEUS: lambda t: [
                promql(
                    f"histogram_quantile({q}, sum by (le) "
                    f'(rate({VLLM_LATENCY_BUCKETS}{{namespace="{t.namespace}"}}[5m])))',
                    f"p{int(q * 100)}",
                )
                for q in (0.5, 0.95)
            ]
        },
    ),
    Panel(
        "Queue depth",
        "short",
        {
            Backend.PROMETHEUS: lambda t: [
                promql(f'sum by (pod) ({VLLM_QUEUE_SERIES}{{namespace="{t.namespace}"}})', "{{pod}}")
            ]
        },
    ),
    Panel(
        "Generated tokens per second",
        "short",
        {
            Backend.PROMETHEUS: lambda t: [
                promql(f'sum(rate({VLLM_GENERATED_TOKENS}{{namespace="{t.namespace}"}}[1m]))', "tokens/s")
            ]
        },
    ),
    Panel(
        "Replicas",
        "short",
        {
            Backend.PROMETHEUS: lambda t: [
                promql(
                    f'kube_horizontalpodautoscaler_status_current_replicas{{namespace="{t.namespace}"}}',
                    "{{horizontalpodautoscaler}} current",
                ),
                promql(
                    f'kube_horizontalpodautoscaler_spec_max_replicas{{namespace="{t.namespace}"}}',
                    "{{horizontalpodautoscaler}} max",
                ),
            ],
            Backend.CLOUDWATCH: lambda t: [
                {
                    **container_insights("namespace_number_of_running_pods", t.name),
                    "dimensions": {"ClusterName": t.name, "Namespace": t.namespace},
                    "label": "running pods",
                }
            ],
        },
    ),
    Panel(
        "GPU utilisation",
        "percent",
        {
            Backend.PROMETHEUS: lambda t: [
                promql(f'avg by (pod) (DCGM_FI_DEV_GPU_UTIL{{namespace="{t.namespace}"}})', "{{pod}}")
            ],
            Backend.CLOUDWATCH: lambda t: [container_insights("node_gpu_utilization", t.name)],
        },
        lambda t: t.nvidia,
    ),
    NEURON_PANEL,
)

_WIDTH, _HEIGHT = 12, 8  # two panels per row on Grafana's 24-column grid


def _variables(backend: Backend, fsx_panel: bool) -> list[dict[str, Any]]:
    variables: list[dict[str, Any]] = [
        {"name": "cloudwatch", "label": "CloudWatch", "type": "datasource", "query": "cloudwatch"}
    ]
    if backend is Backend.PROMETHEUS:
        variables.insert(
            0, {"name": "prometheus", "label": "Prometheus (AMP)", "type": "datasource", "query": "prometheus"}
        )
    if fsx_panel:
        variables.append({"name": "fsx", "label": "FSx file system id", "type": "textbox", "query": ""})
    return variables


def dashboard(target: ObservedCluster, backend: Backend) -> dict[str, Any]:
    """The Grafana dashboard model of ``target`` for ``backend``."""
    catalogue = TRAINING_PANELS if target.workload == "training" else INFERENCE_PANELS
    panels: list[dict[str, Any]] = []
    for panel in catalogue:
        build = panel.queries.get(backend) or panel.queries.get(None)
        if build is None or not panel.applies(target):
            continue
        targets = [{**query, "refId": chr(ord("A") + index)} for index, query in enumerate(build(target))]
        position = len(panels)
        panels.append(
            {
                "id": position + 1,
                "type": "timeseries",
                "title": panel.title,
                "datasource": targets[0]["datasource"],
                "gridPos": {"h": _HEIGHT, "w": _WIDTH, "x": (position % 2) * _WIDTH, "y": (position // 2) * _HEIGHT},
                "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
                "targets": targets,
            }
        )
    return {
        "title": f"{target.name} {target.workload}",
        "uid": f"eks-ml-{target.name}"[:40],
        "tags": ["eks-ml", target.workload],
        "schemaVersion": SCHEMA_VERSION,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "1m",
        "templating": {"list": _variables(backend, any(p["title"].startswith("FSx") for p in panels))},
        "panels": panels,
    }
