"""Grafana dashboards (JSON models) for a watched cluster, built with Grafana's Foundation SDK.

Training: accelerator utilisation and memory, EFA and FSx throughput, the same per TrainJob, and
accelerators requested but idle per namespace with their hourly cost. Inference: requests, latency,
queue, tokens per second, replicas, accelerator use per model service, and the idle accelerators. Each
panel has a query per backend where that backend has the data; a panel a backend cannot fill is left
out rather than drawn empty. FSx metrics are AWS/FSx CloudWatch metrics whatever the backend, chosen by
a dashboard variable (the file system id is known only after deploy). Data sources are dashboard
variables, so the files import into any Grafana (for example Amazon Managed Grafana) with a Prometheus
(AMP) and a CloudWatch data source.

The SDK's classic dashboard model (builders.dashboard) is used, not its v2 resource: the classic JSON
is what Grafana's import API, file provisioning and Amazon Managed Grafana read; v2 needs Grafana 12's
dashboard v2 API.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from grafana_foundation_sdk.builders import cloudwatch as cloudwatch_query
from grafana_foundation_sdk.builders import common as common_builder
from grafana_foundation_sdk.builders import dashboard as dashboard_builder
from grafana_foundation_sdk.builders import prometheus as prometheus_query
from grafana_foundation_sdk.builders import timeseries
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import cloudwatch as cloudwatch_model
from grafana_foundation_sdk.models.common import DataSourceRef, LegendDisplayMode, LegendPlacement
from grafana_foundation_sdk.models.dashboard import VariableModel, VariableOption, VariableRefresh

from ..inference.metrics import (
    VLLM_GENERATED_TOKENS,
    VLLM_LATENCY_BUCKETS,
    VLLM_QUEUE_SERIES,
    VLLM_RUNNING_SERIES,
)
from . import job_queries
from .backend import Backend
from .job_queries import MODEL_SERVICE, TRAINJOB, Grouping
from .metric_tables import CONTAINER_INSIGHTS, FSX
from .target import ObservedCluster

# Data source variables: a panel and each of its queries name one of these by ``${name}``.
PROMETHEUS_VARIABLE = "prometheus"
CLOUDWATCH_VARIABLE = "cloudwatch"
PROMETHEUS = DataSourceRef(type_val="prometheus", uid=f"${{{PROMETHEUS_VARIABLE}}}")
CLOUDWATCH = DataSourceRef(type_val="cloudwatch", uid=f"${{{CLOUDWATCH_VARIABLE}}}")
FSX_VARIABLE = "fsx"

Query = prometheus_query.Dataquery | cloudwatch_query.MetricsQuery
Queries = Callable[[ObservedCluster], list[Query]]


def promql(expr: str, legend: str) -> prometheus_query.Dataquery:
    return prometheus_query.Dataquery().expr(expr).legend_format(legend).datasource(PROMETHEUS)


def cloudwatch_metric(
    namespace: str, metric: str, dimensions: Mapping[str, str], statistic: str, label: str | None = None
) -> cloudwatch_query.MetricsQuery:
    """A metric search in Grafana's builder mode; a dimension value ``*`` draws one series per value."""
    query = (
        cloudwatch_query.MetricsQuery()
        .datasource(CLOUDWATCH)
        .namespace(namespace)
        .metric_name(metric)
        .dimensions(dict(dimensions))
        .statistic(statistic)
        .region("default")
        .match_exact(True)  # only the metric with exactly these dimensions, not every finer set
        .metric_query_type(cloudwatch_model.MetricQueryType.SEARCH)
        .metric_editor_mode(cloudwatch_model.MetricEditorMode.BUILDER)
    )
    return query.label(label) if label else query


def container_insights(
    metric: str, cluster: str, statistic: str = "Average", label: str | None = None, **dimensions: str
) -> cloudwatch_query.MetricsQuery:
    return cloudwatch_metric(CONTAINER_INSIGHTS, metric, {"ClusterName": cluster, **dimensions}, statistic, label)


def fsx(metric: str) -> cloudwatch_query.MetricsQuery:
    return cloudwatch_metric(FSX, metric, {"FileSystemId": f"${FSX_VARIABLE}"}, "Sum", metric)


@dataclass(frozen=True)
class Panel:
    """``queries`` maps a backend to the panel's queries for it (None: any backend); ``applies``
    decides if the cluster has what the panel shows."""

    title: str
    unit: str
    queries: Mapping[Backend | None, Queries]
    applies: Callable[[ObservedCluster], bool] = lambda _: True
    grouping: Grouping | None = None  # the job variable its Prometheus queries read


def _accelerators(target: ObservedCluster) -> bool:
    return target.nvidia or target.neuron


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


def per_job_panels(grouping: Grouping) -> tuple[Panel, ...]:
    """Accelerator use, memory and EFA throughput per job: the job label is the legend."""
    legend = f"{{{{{grouping.label}}}}}"
    per = f"per {grouping.noun}"

    def by_service(metric: str) -> Mapping[Backend | None, Queries]:
        # Container Insights publishes pod metrics per Kubernetes Service; a model service's Service has
        # the model service's name and selects its pods. TrainJobs have no such dimension.
        if grouping is not MODEL_SERVICE:
            return {}
        return {
            Backend.CLOUDWATCH: lambda t: [
                container_insights(metric, t.name, Namespace=t.namespace, Service="*", label="${PROP('Dim.Service')}")
            ]
        }

    def prometheus(build: Callable[[Grouping, str], str]) -> Mapping[Backend | None, Queries]:
        return {Backend.PROMETHEUS: lambda t: [promql(build(grouping, t.namespace), legend)]}

    return (
        Panel(
            f"GPU utilisation {per}",
            "percent",
            prometheus(job_queries.gpu_utilization),
            lambda t: t.nvidia,
            grouping,
        ),
        Panel(
            f"GPU memory used {per}",
            "percent",
            {**prometheus(job_queries.gpu_memory_used_percent), **by_service("pod_gpu_memory_utilization")},
            lambda t: t.nvidia,
            grouping,
        ),
        Panel(
            f"NeuronCore utilisation {per}",
            "percent",
            {**prometheus(job_queries.neuroncore_utilization_percent), **by_service("pod_neuroncore_utilization")},
            lambda t: t.neuron,
            grouping,
        ),
        Panel(
            f"Neuron device memory used {per}",
            "bytes",
            {
                **prometheus(job_queries.neuron_device_memory_bytes),
                **by_service("pod_neuroncore_memory_usage_total"),
            },
            lambda t: t.neuron,
            grouping,
        ),
        Panel(
            f"EFA throughput {per}",
            "Bps",
            {
                Backend.PROMETHEUS: lambda t: [
                    promql(job_queries.efa_bytes_per_second(grouping, t.namespace, counter), f"{legend} {direction}")
                    for counter, direction in (("rx_bytes", "received"), ("tx_bytes", "sent"))
                ],
            },
            lambda t: t.efa,
            grouping,
        ),
    )


def _idle(target: ObservedCluster) -> str:
    idle = job_queries.idle_accelerators(nvidia=target.nvidia, neuron=target.neuron)
    assert idle is not None  # the panels apply only to clusters with accelerators
    return idle


IDLE_PANELS = (
    Panel(
        "Accelerators requested but idle per namespace",
        "short",
        {
            Backend.PROMETHEUS: lambda t: [
                promql(job_queries.idle_accelerators_per_namespace(_idle(t)), "{{namespace}} {{resource}}")
            ]
        },
        _accelerators,
    ),
    Panel(
        "Hourly cost of idle accelerators per namespace (USD)",
        "currencyUSD",
        {Backend.PROMETHEUS: lambda t: [promql(job_queries.idle_hourly_cost_per_namespace(_idle(t)), "{{namespace}}")]},
        _accelerators,
    ),
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
                container_insights("node_efa_rx_bytes", t.name, "Sum", "received"),
                container_insights("node_efa_tx_bytes", t.name, "Sum", "sent"),
            ],
        },
        lambda t: t.efa,
    ),
    Panel("FSx for Lustre throughput", "bytes", {None: lambda t: [fsx("DataReadBytes"), fsx("DataWriteBytes")]}),
    *per_job_panels(TRAINJOB),
    *IDLE_PANELS,
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
                container_insights(
                    "namespace_number_of_running_pods", t.name, label="running pods", Namespace=t.namespace
                )
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
    *per_job_panels(MODEL_SERVICE),
    *IDLE_PANELS,
)

_WIDTH, _HEIGHT = 12, 8  # two panels per row on Grafana's 24-column grid


def _chosen(target: ObservedCluster, backend: Backend) -> list[tuple[Panel, list[Query]]]:
    catalogue = TRAINING_PANELS if target.workload == "training" else INFERENCE_PANELS
    chosen = []
    for panel in catalogue:
        build = panel.queries.get(backend) or panel.queries.get(None)
        if build is not None and panel.applies(target):
            chosen.append((panel, build(target)))
    return chosen


def _panel(index: int, panel: Panel, queries: Sequence[Query]) -> timeseries.Panel:
    # A panel's queries share one data source (the panel's).
    source = PROMETHEUS if isinstance(queries[0], prometheus_query.Dataquery) else CLOUDWATCH
    return (
        timeseries.Panel()
        .id(index + 1)
        .title(panel.title)
        .unit(panel.unit)
        .datasource(source)
        .height(_HEIGHT)
        .span(_WIDTH)
        .legend(
            common_builder.VizLegendOptions()
            .show_legend(True)
            .display_mode(LegendDisplayMode.LIST)
            .placement(LegendPlacement.BOTTOM)
        )
        .targets([query.ref_id(chr(ord("A") + position)) for position, query in enumerate(queries)])
    )


Variable = cogbuilder.Builder[VariableModel]


def _variables(
    backend: Backend, chosen: Sequence[tuple[Panel, list[Query]]], target: ObservedCluster
) -> list[Variable]:
    variables: list[Variable] = []
    if backend is Backend.PROMETHEUS:
        variables.append(
            dashboard_builder.DatasourceVariable(PROMETHEUS_VARIABLE).label("Prometheus (AMP)").type("prometheus")
        )
    variables.append(dashboard_builder.DatasourceVariable(CLOUDWATCH_VARIABLE).label("CloudWatch").type("cloudwatch"))
    groupings = {panel.grouping for panel, queries in chosen if isinstance(queries[0], prometheus_query.Dataquery)}
    for grouping in sorted((g for g in groupings if g is not None), key=lambda g: g.variable):
        variables.append(
            dashboard_builder.QueryVariable(grouping.variable)
            .label(grouping.noun)
            .datasource(PROMETHEUS)
            .query(job_queries.job_names(grouping, target.namespace))
            .multi(True)
            .include_all(True)
            .all_value(".+")  # a regex: every job, without listing them all in the query
            .current(VariableOption(selected=True, text="All", value="$__all"))
            .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)  # jobs come and go
        )
    if any(panel.title.startswith("FSx") for panel, _ in chosen):
        variables.append(dashboard_builder.TextBoxVariable(FSX_VARIABLE).label("FSx file system id"))
    return variables


def dashboard(target: ObservedCluster, backend: Backend) -> dict[str, Any]:
    """The Grafana dashboard model of ``target`` for ``backend`` (a JSON-ready dict)."""
    chosen = _chosen(target, backend)
    builder = (
        dashboard_builder.Dashboard(f"{target.name} {target.workload}")
        .uid(f"eks-ml-{target.name}"[:40])
        .tags(["eks-ml", target.workload])
        .time("now-6h", "now")
        .refresh("1m")
        .variables(_variables(backend, chosen, target))
    )
    for index, (panel, queries) in enumerate(chosen):
        builder = builder.with_panel(_panel(index, panel, queries))
    model: dict[str, Any] = json.loads(json.dumps(builder.build(), cls=JSONEncoder))
    return model
