"""The one table of pinned third-party Helm charts. Bump a version here, deliberately, and nowhere else.

Each pin was read from the chart's upstream release (Chart.yaml or release notes) in 2026-11.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_eks_v2 as eks
from constructs import Construct


@dataclass(frozen=True)
class HelmChartPin:
    """A chart at one version. For OCI charts ``repository`` is the full ``oci://.../<chart>`` URL,
    which is how the aws_eks_v2 kubectl handler pulls them."""

    chart: str
    repository: str
    version: str
    namespace: str
    release: str


NVIDIA_DEVICE_PLUGIN = HelmChartPin(
    "nvidia-device-plugin",
    "https://nvidia.github.io/k8s-device-plugin",
    "0.18.2",
    "kube-system",
    "nvidia-device-plugin",
)
# Device plugin v0.5.13 (chart v0.5.20): p6 needs >= 0.5.10.
EFA_DEVICE_PLUGIN = HelmChartPin(
    "aws-efa-k8s-device-plugin", "https://aws.github.io/eks-charts", "v0.5.20", "kube-system", "aws-efa-device-plugin"
)
# Neuron device plugin, scheduler extension (and node problem detector, which eks-ml leaves off).
NEURON = HelmChartPin(
    "neuron-helm-chart", "oci://public.ecr.aws/neuron/neuron-helm-chart", "1.1.2", "kube-system", "neuron"
)
# Matches the Kueue CRDs the tests validate against (../shared/crds, v0.19.2).
KUEUE = HelmChartPin("kueue", "oci://registry.k8s.io/kueue/charts/kueue", "0.19.2", "kueue-system", "kueue")
# Kubeflow Trainer v2 (TrainJob, ClusterTrainingRuntime), with JobSet; matches the pinned CRDs (v2.3.0).
KUBEFLOW_TRAINER = HelmChartPin(
    "kubeflow-trainer", "oci://ghcr.io/kubeflow/charts/kubeflow-trainer", "2.3.0", "kubeflow-system", "kubeflow-trainer"
)

# Karpenter v1; matches the NodePool and EC2NodeClass CRDs the tests validate against (v1.14.1).
KARPENTER = HelmChartPin(
    chart="karpenter",
    repository="oci://public.ecr.aws/karpenter/karpenter",
    version="1.14.1",
    namespace="kube-system",
    release="karpenter",
)

# AWS Load Balancer Controller v3.2.2 (chart 3.2.2), the newest version aws-cdk-lib 2.275 ships an IAM
# policy for (eks_ml.inference.load_balancer reads it from there).
AWS_LOAD_BALANCER_CONTROLLER = HelmChartPin(
    chart="aws-load-balancer-controller",
    repository="https://aws.github.io/eks-charts",
    version="3.2.2",
    namespace="kube-system",
    release="aws-load-balancer-controller",
)
# Prometheus server (scrapes pods annotated prometheus.io/scrape) and the adapter that serves its series
# to the HorizontalPodAutoscaler through the custom metrics API.
PROMETHEUS = HelmChartPin(
    chart="prometheus",
    repository="https://prometheus-community.github.io/helm-charts",
    version="25.20.2",
    namespace="monitoring",
    release="prometheus",
)
PROMETHEUS_ADAPTER = HelmChartPin(
    chart="prometheus-adapter",
    repository="oci://ghcr.io/prometheus-community/charts/prometheus-adapter",
    version="5.3.0",
    namespace="monitoring",
    release="prometheus-adapter",
)

# Exporters the Prometheus observability backend installs; Amazon Managed Service for Prometheus's managed
# scraper collects them (no in-cluster Prometheus). dcgm-exporter 4.7.0 is the chart of exporter
# 4.4.2-4.7.0 (the version NVIDIA's GPU Operator ships, gpu-operator PR #1926); kube-state-metrics 7.0.1
# (app 2.17.0) and prometheus-node-exporter 4.45.3 (app 1.9.1) were read from the charts' Chart.yaml.
DCGM_EXPORTER = HelmChartPin(
    "dcgm-exporter", "https://nvidia.github.io/dcgm-exporter/helm-charts", "4.7.0", "monitoring", "dcgm-exporter"
)
KUBE_STATE_METRICS = HelmChartPin(
    "kube-state-metrics",
    "https://prometheus-community.github.io/helm-charts",
    "7.0.1",
    "monitoring",
    "kube-state-metrics",
)
NODE_EXPORTER = HelmChartPin(
    "prometheus-node-exporter",
    "https://prometheus-community.github.io/helm-charts",
    "4.45.3",
    "monitoring",
    "node-exporter",
)

ALL_CHARTS = (
    NVIDIA_DEVICE_PLUGIN,
    EFA_DEVICE_PLUGIN,
    NEURON,
    KUEUE,
    KUBEFLOW_TRAINER,
    KARPENTER,
    AWS_LOAD_BALANCER_CONTROLLER,
    PROMETHEUS,
    PROMETHEUS_ADAPTER,
    DCGM_EXPORTER,
    KUBE_STATE_METRICS,
    NODE_EXPORTER,
)
# Controllers with admission webhooks must be serving before their custom resources are applied.
WEBHOOK_READY_TIMEOUT = Duration.minutes(15)


def install(
    scope: Construct,
    construct_id: str,
    cluster: eks.ICluster,
    pin: HelmChartPin,
    values: Mapping[str, Any] | None = None,
    *,
    wait: bool = False,
) -> eks.HelmChart:
    return eks.HelmChart(
        scope,
        construct_id,
        cluster=cluster,
        chart=pin.chart,
        repository=pin.repository,
        version=pin.version,
        namespace=pin.namespace,
        release=pin.release,
        create_namespace=True,
        values=dict(values or {}),
        wait=wait,
        timeout=WEBHOOK_READY_TIMEOUT if wait else None,
    )
