"""The custom-metrics pipeline the model servers' HorizontalPodAutoscalers read: Prometheus scrapes the
servers' /metrics, prometheus-adapter serves the queue depth through the custom metrics API."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import aws_eks_v2 as eks
from constructs import Construct, IDependable

from .. import helm
from ..cluster.system_nodes import SystemPlacement
from ..k8s.pod_security import HARDENED_CONTAINER
from ..placement import ClusterModel

# vLLM's own series (per server pod): requests accepted but not yet running, requests running, the
# end-to-end latency histogram and generated tokens. Autoscaling, alerts and dashboards read these.
VLLM_QUEUE_SERIES = "vllm:num_requests_waiting"
VLLM_RUNNING_SERIES = "vllm:num_requests_running"
VLLM_LATENCY_BUCKETS = "vllm:e2e_request_latency_seconds_bucket"
VLLM_GENERATED_TOKENS = "vllm:generation_tokens_total"
# The name the adapter gives it in the custom metrics API (colons are not allowed there).
QUEUE_METRIC = "vllm_num_requests_waiting"
# Triton's requests waiting for a backend, per model (Triton v2.71.0, docs/user_guide/metrics.md, "Pending
# Request Count", a gauge); its cumulative queue time. Triton's names have no colons: the API name is the same.
TRITON_QUEUE_SERIES = "nv_inference_pending_request_count"
TRITON_QUEUE_DURATION = "nv_inference_queue_duration_us"
TRITON_QUEUE_METRIC = TRITON_QUEUE_SERIES
PROMETHEUS_URL = f"http://{helm.PROMETHEUS.release}-server.{helm.PROMETHEUS.namespace}.svc"
SCRAPE_INTERVAL = "15s"  # an HPA acts on 15 s windows; scraping faster buys nothing


# Requests on the system nodes; Prometheus here keeps two days of a few series per model server pod.
PROMETHEUS_RESOURCES = {"requests": {"cpu": "250m", "memory": "1Gi"}, "limits": {"memory": "2Gi"}}
RELOADER_RESOURCES = {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "64Mi"}}
ADAPTER_RESOURCES = {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}}
# The custom metrics APIService is served by the adapter: two replicas and a PDB keep HPAs working
# through a node drain.
ADAPTER_REPLICAS = 2


def prometheus_values(placement: SystemPlacement) -> dict[str, Any]:
    return {
        # Only the server: it scrapes pods annotated prometheus.io/scrape (the chart's kubernetes-pods job).
        "alertmanager": {"enabled": False},
        "prometheus-pushgateway": {"enabled": False},
        "prometheus-node-exporter": {"enabled": False},
        "kube-state-metrics": {"enabled": False},
        "server": {
            "global": {"scrape_interval": SCRAPE_INTERVAL},
            # Autoscaling needs minutes of history, not a durable volume (no EBS CSI driver needed).
            "persistentVolume": {"enabled": False},
            "retention": "2d",
            **placement.values(),
            "resources": PROMETHEUS_RESOURCES,
            # The chart sets a non-root pod user but no container context: add the rest of restricted. Prometheus
            # writes only to its data volume (an emptyDir), so the root file system can be read-only.
            "containerSecurityContext": {**HARDENED_CONTAINER, "readOnlyRootFilesystem": True},
        },
        "configmapReload": {
            "prometheus": {
                "resources": RELOADER_RESOURCES,
                "containerSecurityContext": {**HARDENED_CONTAINER, "readOnlyRootFilesystem": True},
            }
        },
    }


def _pod_rule(series: str, metric: str) -> dict[str, Any]:
    """One custom metric per pod: the series summed over its other labels (Triton's model and version)."""
    return {
        "seriesQuery": f'{series}{{namespace!="",pod!=""}}',
        "resources": {"overrides": {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}},
        "name": {"matches": series, "as": metric},
        "metricsQuery": "sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)",
    }


def adapter_values(placement: SystemPlacement, *, triton: bool = False) -> dict[str, Any]:
    """``triton``: also serve Triton's pending requests (only where Triton servers run)."""
    return {
        "prometheus": {"url": PROMETHEUS_URL, "port": 80},
        **placement.values(),
        "replicas": ADAPTER_REPLICAS,
        "podDisruptionBudget": {"enabled": True, "maxUnavailable": 1},
        "resources": ADAPTER_RESOURCES,
        "rules": {
            "default": False,
            "custom": [
                _pod_rule(VLLM_QUEUE_SERIES, QUEUE_METRIC),
                *([_pod_rule(TRITON_QUEUE_SERIES, TRITON_QUEUE_METRIC)] if triton else []),
            ],
        },
    }


class MetricsPipeline(Construct):
    """Attributes: ``prometheus``, ``adapter``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster: eks.ICluster,
        model: ClusterModel,
        placement: SystemPlacement,
        after: Sequence[IDependable] = (),
        triton: bool = False,
    ) -> None:
        super().__init__(scope, construct_id)
        self.prometheus = helm.install(
            self, "Prometheus", cluster, helm.PROMETHEUS, prometheus_values(placement), model=model
        )
        self.adapter = helm.install(
            self,
            "Adapter",
            cluster,
            helm.PROMETHEUS_ADAPTER,
            adapter_values(placement, triton=triton),
            model=model,
            wait=True,
        )
        self.adapter.node.add_dependency(self.prometheus)
        for dependency in after:
            self.prometheus.node.add_dependency(dependency)
