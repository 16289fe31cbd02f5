"""The one table of pinned third-party Helm charts. Bump a version here, deliberately, and nowhere else.

Each pin also declares the pods its chart runs and where in the chart's values eks-ml sets their
placement and requests (:class:`PodValues`). The cluster model (:mod:`eks_ml.placement`) reads the
declarations to prove every release's pods can land; the real-chart tests render each chart with the
exact values eks-ml passes and check the rendered pods match the declaration, so the two cannot drift.

Each pin was read from the chart's upstream release (Chart.yaml or release notes) in 2026-11.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import cdk8s
from aws_cdk import Duration
from aws_cdk import aws_eks_v2 as eks
from constructs import Construct, IConstruct, IDependable

from .catalog import EFA_RESOURCE, NEURON_CORE_RESOURCE, NEURON_DEVICE_RESOURCE, NVIDIA_GPU_RESOURCE
from .k8s.crd_upgrade import CrdFile, CrdUpgradeChart, upgrade_job_name
from .k8s.pod_security import PodSecurityLevel
from .k8s.pod_security import labels as pod_security_labels
from .manifest_bundle import ManifestBundle, prelude_of
from .placement import ClusterModel, Workload, workload, workloads_from_objects
from .release_values import DEPLOY_VALUES_KEY, DEPLOY_VALUES_LABEL, deploy_values_name, split_deploy_time

CRITICAL_ADDONS_ONLY = {"key": "CriticalAddonsOnly", "operator": "Exists"}


@dataclass(frozen=True)
class PodValues:
    """One pod-running object a chart renders, and the values paths (dotted) that set its pods'
    placement and per-container resources. ``defaults`` holds the chart's own value at a path where
    it is not empty (Helm merges maps given in values into it and replaces lists). ``enabled`` is the
    path of the flag that turns the object off; ``optional`` marks a DaemonSet meant for nodes that
    only some clusters have (it may land on none)."""

    kind: str
    name: str
    node_selector: str | None = "nodeSelector"
    affinity: str | None = "affinity"
    tolerations: str | None = "tolerations"
    resources: Mapping[str, str] = field(default_factory=dict)
    defaults: Mapping[str, Any] = field(default_factory=dict)
    provides: tuple[str, ...] = ()
    enabled: str | None = None
    enabled_by_default: bool = True
    optional: bool = False
    # What the chart's template adds whatever the values say.
    fixed_tolerations: tuple[Mapping[str, str], ...] = ()
    fixed_node_selector: Mapping[str, str] = field(default_factory=dict)
    affinity_from: Callable[[Mapping[str, Any]], Any] | None = None

    def is_enabled(self, values: Mapping[str, Any]) -> bool:
        if self.enabled is None:
            return True
        flag = lookup_path(values, self.enabled)
        return self.enabled_by_default if flag is None else bool(flag)

    def pod_spec(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The placement and requests part of the pod spec the chart renders for ``values``."""

        def at(path: str | None) -> Any:
            if path is None:
                return None
            return coalesce(self.defaults.get(path), lookup_path(values, path))

        affinity = self.affinity_from(values) if self.affinity_from else at(self.affinity)
        return {
            "nodeSelector": {**self.fixed_node_selector, **(at(self.node_selector) or {})},
            "affinity": affinity or {},
            "tolerations": [*self.fixed_tolerations, *(at(self.tolerations) or [])],
            "containers": [{"name": name, "resources": at(path) or {}} for name, path in self.resources.items()],
        }


def lookup_path(values: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path (a numeric part indexes a list); None where it is not set."""
    node: Any = values
    for part in path.split("."):
        if isinstance(node, Sequence) and not isinstance(node, str) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, Mapping) and part in node:
            node = node[part]
        else:
            return None
    return node


def coalesce(default: Any, given: Any) -> Any:
    """Helm's merge of user values into chart defaults: maps merge key by key, anything else replaces."""
    if given is None:
        return default
    if isinstance(default, Mapping) and isinstance(given, Mapping):
        merged = dict(default)
        for key, value in given.items():
            merged[key] = coalesce(default.get(key), value)
        return merged
    return given


@dataclass(frozen=True, eq=False)  # one object per pin: compared and hashed by identity
class HelmChartPin:
    """A chart at one version. For OCI charts ``repository`` is the full ``oci://.../<chart>`` URL,
    which is how the aws_eks_v2 kubectl handler pulls them. ``pods`` declares its pod-running objects;
    ``crd_files`` the files of its ``crds/`` folders (its own and its enabled subcharts'), which Helm
    would never upgrade, so :func:`install` applies them first (:mod:`eks_ml.k8s.crd_upgrade`)."""

    chart: str
    repository: str
    version: str
    namespace: str
    release: str
    pods: tuple[PodValues, ...] = ()
    crd_files: tuple[CrdFile, ...] = ()

    def workloads(self, values: Mapping[str, Any]) -> list[Workload]:
        origin = f"Helm release {self.release} ({self.chart} {self.version})"
        return [
            workload(
                f"{pod.kind} {self.namespace}/{pod.name.format(release=self.release)}",
                origin,
                pod.kind,
                pod.pod_spec(values),
                provides=pod.provides,
            )
            for pod in self.pods
            if pod.is_enabled(values) and not pod.optional
        ]


# The defaults below are the charts' own values.yaml entries at the declared paths; the real-chart
# tests fail when a bump changes them.
_OS_LINUX = {"kubernetes.io/os": "linux"}
_NODEPOOL_ABSENT = {
    "nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{"key": "karpenter.sh/nodepool", "operator": "DoesNotExist"}]}]
        }
    }
}
_NOT_FARGATE = {
    "nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [
                {
                    "matchExpressions": [
                        {"key": "eks.amazonaws.com/compute-type", "operator": "NotIn", "values": ["fargate"]},
                        {"key": "type", "operator": "NotIn", "values": ["virtual-kubelet"]},
                    ]
                }
            ]
        }
    }
}


def _efa_affinity(values: Mapping[str, Any]) -> dict[str, Any]:
    """The EFA chart builds its node affinity from supportedInstanceLabels (one term per key) and adds
    an Auto Mode exclusion to the last term."""
    labels = values.get("supportedInstanceLabels") or {}
    terms: list[dict[str, Any]] = [
        {"matchExpressions": [{"key": key, "operator": "In", "values": list(labels.get("values") or [])}]}
        for key in labels.get("keys") or []
    ]
    if terms:
        terms[-1]["matchExpressions"].append(
            {"key": "eks.amazonaws.com/compute-type", "operator": "NotIn", "values": ["auto"]}
        )
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}}


NVIDIA_DEVICE_PLUGIN = HelmChartPin(
    "nvidia-device-plugin",
    "https://nvidia.github.io/k8s-device-plugin",
    "0.20.0",
    "kube-system",
    "nvidia-device-plugin",
    pods=(
        PodValues(
            "DaemonSet",
            "{release}",
            resources={"nvidia-device-plugin-ctr": "resources"},
            defaults={
                "tolerations": [
                    CRITICAL_ADDONS_ONLY,
                    {"key": NVIDIA_GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"},
                ]
            },
            provides=(NVIDIA_GPU_RESOURCE,),
        ),
        # Runs only on nodes labelled nvidia.com/mps.capable (GPU sharing with MPS), which eks-ml never sets.
        PodValues(
            "DaemonSet",
            "{release}-mps-control-daemon",
            fixed_node_selector={"nvidia.com/mps.capable": "true"},
            optional=True,
        ),
    ),
)
# Chart v0.5.30 ships device plugin v0.5.20 (chart v0.5.20 shipped plugin v0.5.13); p6 needs >= 0.5.10.
EFA_DEVICE_PLUGIN = HelmChartPin(
    "aws-efa-k8s-device-plugin",
    "https://aws.github.io/eks-charts",
    "v0.5.30",
    "kube-system",
    "aws-efa-device-plugin",
    pods=(
        PodValues(
            "DaemonSet",
            "{release}-aws-efa-k8s-device-plugin",
            affinity=None,
            resources={"aws-efa-k8s-device-plugin": "resources"},
            defaults={"resources": {"requests": {"cpu": "10m", "memory": "20Mi"}}},
            fixed_tolerations=(CRITICAL_ADDONS_ONLY,),
            affinity_from=_efa_affinity,
            provides=(EFA_RESOURCE,),
        ),
    ),
)
# The Neuron device plugin (the chart's scheduler extension and node problem detector are left off: whole-
# device requests need no scheduler extension, and the node monitoring agent add-on reports Neuron errors).
# 1.1.2 is the newest release eks-ml could verify; see the README on the chart cache.
# The Neuron chart's own device plugin tolerations (values.yaml of 1.1.2).
NEURON_PLUGIN_TOLERATIONS: tuple[Mapping[str, str], ...] = (
    CRITICAL_ADDONS_ONLY,
    {"key": NEURON_DEVICE_RESOURCE, "operator": "Exists", "effect": "NoSchedule"},
    {
        "key": "sagemaker.amazonaws.com/node-health-status",
        "operator": "Equal",
        "value": "Unschedulable",
        "effect": "NoSchedule",
    },
)
NEURON = HelmChartPin(
    "neuron-helm-chart",
    "oci://public.ecr.aws/neuron/neuron-helm-chart",
    "1.1.2",
    "kube-system",
    "neuron",
    pods=(
        PodValues(
            "DaemonSet",
            "neuron-device-plugin",
            node_selector="devicePlugin.nodeSelector",
            affinity="devicePlugin.affinity",
            tolerations="devicePlugin.tolerations",
            resources={"neuron-device-plugin": "devicePlugin.resources"},
            defaults={"devicePlugin.tolerations": list(NEURON_PLUGIN_TOLERATIONS)},
            provides=(NEURON_DEVICE_RESOURCE, NEURON_CORE_RESOURCE),
        ),
        PodValues("DaemonSet", "node-problem-detector", enabled="npd.enabled", optional=True),
    ),
)
KUEUE = HelmChartPin(
    "kueue",
    "oci://registry.k8s.io/kueue/charts/kueue",
    "0.19.2",
    "kueue-system",
    "kueue",
    pods=(
        PodValues(
            "Deployment",
            "{release}-controller-manager",
            node_selector="controllerManager.nodeSelector",
            affinity=None,
            tolerations="controllerManager.tolerations",
            resources={"manager": "controllerManager.manager.resources"},
            defaults={
                "controllerManager.manager.resources": {
                    "limits": {"cpu": "2", "memory": "512Mi"},
                    "requests": {"cpu": "500m", "memory": "512Mi"},
                }
            },
        ),
    ),
)
# Kubeflow Trainer v2 (TrainJob, ClusterTrainingRuntime), with its JobSet subchart.
KUBEFLOW_TRAINER = HelmChartPin(
    "kubeflow-trainer",
    "oci://ghcr.io/kubeflow/charts/kubeflow-trainer",
    "2.3.0",
    "kubeflow-system",
    "kubeflow-trainer",
    pods=(
        PodValues(
            "Deployment",
            "{release}-controller-manager",
            node_selector="manager.nodeSelector",
            affinity="manager.affinity",
            tolerations="manager.tolerations",
            resources={"manager": "manager.resources"},
        ),
        PodValues(
            "Deployment",
            "jobset-controller",
            node_selector="jobset.controller.nodeSelector",
            affinity="jobset.controller.affinity",
            tolerations="jobset.controller.tolerations",
            resources={"controller": "jobset.controller.resources"},
            defaults={
                "jobset.controller.resources": {
                    "limits": {"cpu": 2, "memory": "4Gi"},
                    "requests": {"cpu": "500m", "memory": "128Mi"},
                }
            },
            enabled="jobset.install",
        ),
    ),
    # JobSet's CRD, from its chart's crds/ (the subchart jobset 0.12.0 = kubernetes-sigs/jobset v0.12.0).
    crd_files=(
        CrdFile(
            "kubeflow-trainer/charts/jobset/crds/jobset.x-k8s.io_jobsets.yaml",
            "https://raw.githubusercontent.com/kubernetes-sigs/jobset/f22e565ac3cc3265c7c45ef67ecffdc689af5d77/"
            "charts/jobset/crds/jobset.x-k8s.io_jobsets.yaml",
            "d022b87624512cf0b6741b31b24a2bea9945b5a838b50713af29332c878bb6fe",
            ("jobsets.jobset.x-k8s.io",),
        ),
    ),
)

# LeaderWorkerSet (kubernetes-sigs/lws v0.10.0, chart charts/lws at the tag, commit 2161f38): one object per group
# of pods that serve one model replica across nodes (eks_ml.inference.multi_node). Installed only on clusters
# that have a multi-node model service. The chart version is the git tag, with its leading v.
_LWS_0_10_0 = (
    "https://raw.githubusercontent.com/kubernetes-sigs/lws/2161f38ff333f9e24d3c44adef7cd5d9787cac00/charts/lws/crds"
)


def _lws_crd(stem: str, sha256: str, name: str) -> CrdFile:
    return CrdFile(f"lws/crds/{stem}.yaml", f"{_LWS_0_10_0}/{stem}.yaml", sha256, (name,))


LWS = HelmChartPin(
    "lws",
    "oci://registry.k8s.io/lws/charts/lws",
    "v0.10.0",
    "lws-system",
    "lws",
    pods=(
        PodValues(
            "Deployment",
            "{release}-controller-manager",
            resources={"manager": "resources"},
            defaults={"resources": {"requests": {"cpu": 1, "memory": "1Gi"}}},
        ),
    ),
    # Its crds/ folder: LeaderWorkerSet and the DisaggregatedSet pair Helm installs beside it.
    crd_files=(
        _lws_crd(
            "disaggregatedset.x-k8s.io_disaggregatedsetrolescalers",
            "8b9ec2b17c27ad6301f5ca5d96c97fac905a04d3e8a4caee5b83461bae6b227e",
            "disaggregatedsetrolescalers.disaggregatedset.x-k8s.io",
        ),
        _lws_crd(
            "disaggregatedset.x-k8s.io_disaggregatedsets",
            "8fdbfe596e8a61459f737a5773a0592a38e8555fa49d265db12f0f5aeabad77e",
            "disaggregatedsets.disaggregatedset.x-k8s.io",
        ),
        _lws_crd(
            "leaderworkerset.x-k8s.io_leaderworkersets",
            "4c5518df96ae0456ff66ec3d4337f5419aa42daae5b15c68878b85a2aee8556e",
            "leaderworkersets.leaderworkerset.x-k8s.io",
        ),
    ),
)

_KARPENTER_1_14_1 = "https://raw.githubusercontent.com/aws/karpenter-provider-aws/bde00654cd316fddb3dccfba3f5ac07039865429/pkg/apis/crds"


def _karpenter_crd(stem: str, sha256: str, name: str) -> CrdFile:
    # The chart's crds/ entries are links to pkg/apis/crds/ in the repository (v1.14.1 = bde0065).
    return CrdFile(f"karpenter/crds/{stem}.yaml", f"{_KARPENTER_1_14_1}/{stem}.yaml", sha256, (name,))


KARPENTER = HelmChartPin(
    chart="karpenter",
    repository="oci://public.ecr.aws/karpenter/karpenter",
    version="1.14.1",
    namespace="kube-system",
    release="karpenter",
    pods=(
        PodValues(
            "Deployment",
            "{release}",
            resources={"controller": "controller.resources"},
            defaults={"nodeSelector": _OS_LINUX, "affinity": _NODEPOOL_ABSENT, "tolerations": [CRITICAL_ADDONS_ONLY]},
        ),
    ),
    # Upgraded by the CRD Job, like the other charts' crds/, rather than by the karpenter-crd chart that Karpenter's
    # upgrade guide offers: the same files, and one Job (and one deploy-time wait) for all of a cluster's charts.
    crd_files=(
        _karpenter_crd(
            "autoscaling.x-k8s.io_capacitybuffers",
            "66fd5680b902b38fb9657ad2b432196a06c42b37d078e53be2e39909200a6342",
            "capacitybuffers.autoscaling.x-k8s.io",
        ),
        _karpenter_crd(
            "karpenter.k8s.aws_ec2nodeclasses",
            "62dec59f01c0972d4503ca3ed25f243ba9c2f561be0d964ce7a14c8df406132f",
            "ec2nodeclasses.karpenter.k8s.aws",
        ),
        _karpenter_crd(
            "karpenter.sh_nodeclaims",
            "96037dc241031fe0f7a09ddf78183d885ce6a1dfe115f7b3fbf8a12c564be694",
            "nodeclaims.karpenter.sh",
        ),
        _karpenter_crd(
            "karpenter.sh_nodeoverlays",
            "6ff6199aff096cc87cd9508f8c5ae62c6d3452aa90c2828ee36380340f3ece62",
            "nodeoverlays.karpenter.sh",
        ),
        _karpenter_crd(
            "karpenter.sh_nodepools",
            "3bb64a20c80776b77aa19a699ebdaf34480a7b2e7ec4ef890b43225b3517f878",
            "nodepools.karpenter.sh",
        ),
    ),
)
_EKS_CHARTS_3_2_2 = (
    "https://raw.githubusercontent.com/aws/eks-charts/20b1f5dfb4a4d2ad4eb564ece91286c02093a11e/"
    "stable/aws-load-balancer-controller/crds"
)
# AWS Load Balancer Controller v3.2.2 (chart 3.2.2), the newest version aws-cdk-lib 2.275 ships an IAM
# policy for (eks_ml.inference.load_balancer reads it from there).
AWS_LOAD_BALANCER_CONTROLLER = HelmChartPin(
    chart="aws-load-balancer-controller",
    repository="https://aws.github.io/eks-charts",
    version="3.2.2",
    namespace="kube-system",
    release="aws-load-balancer-controller",
    pods=(PodValues("Deployment", "{release}", resources={"aws-load-balancer-controller": "resources"}),),
    # The chart's crds/ at the aws/eks-charts commit that released 3.2.2.
    crd_files=(
        CrdFile(
            "aws-load-balancer-controller/crds/crds.yaml",
            f"{_EKS_CHARTS_3_2_2}/crds.yaml",
            "cb00e9a8ee22cc51307bbed799faff306ab4d23a9fd201d26fcd53ab035777d9",
            (
                "albtargetcontrolconfigs.elbv2.k8s.aws",
                "globalaccelerators.aga.k8s.aws",
                "ingressclassparams.elbv2.k8s.aws",
                "targetgroupbindings.elbv2.k8s.aws",
            ),
        ),
        CrdFile(
            "aws-load-balancer-controller/crds/gateway-crds.yaml",
            f"{_EKS_CHARTS_3_2_2}/gateway-crds.yaml",
            "89983f8b43b1b85c3d065d6f0007ee1fa2bffe8790282b9a57ccc9a355f65bd7",
            (
                "listenerruleconfigurations.gateway.k8s.aws",
                "loadbalancerconfigurations.gateway.k8s.aws",
                "targetgroupconfigurations.gateway.k8s.aws",
            ),
        ),
    ),
)
# Prometheus server (scrapes pods annotated prometheus.io/scrape) and the adapter that serves its series
# to the HorizontalPodAutoscaler through the custom metrics API.
PROMETHEUS = HelmChartPin(
    chart="prometheus",
    repository="https://prometheus-community.github.io/helm-charts",
    version="29.27.0",
    namespace="monitoring",
    release="prometheus",
    pods=(
        PodValues(
            "Deployment",
            "{release}-server",
            node_selector="server.nodeSelector",
            affinity="server.affinity",
            tolerations="server.tolerations",
            resources={
                "prometheus-server-configmap-reload": "configmapReload.prometheus.resources",
                "prometheus-server": "server.resources",
            },
        ),
    ),
)
PROMETHEUS_ADAPTER = HelmChartPin(
    chart="prometheus-adapter",
    repository="oci://ghcr.io/prometheus-community/charts/prometheus-adapter",
    version="5.3.0",
    namespace="monitoring",
    release="prometheus-adapter",
    pods=(PodValues("Deployment", "{release}", resources={"prometheus-adapter": "resources"}),),
)

# KEDA (event-driven autoscaling: queue workers scaled on SQS depth or Kafka lag, scale to zero). Its CRDs are
# chart templates (templates/crds/), so Helm installs and upgrades them with the release: no CRD upgrade Job.
# Names and value paths from kedacore/charts @ v2.20.2 (keda/values.yaml, keda/templates/*/deployment.yaml).
_KEDA_RESOURCES = {"limits": {"cpu": 1, "memory": "1000Mi"}, "requests": {"cpu": "100m", "memory": "100Mi"}}


def _keda_pod(name: str, resources: str, enabled: str | None = None) -> PodValues:
    # Each Deployment reads <component>.nodeSelector | default .Values.nodeSelector (the same for affinity and
    # tolerations); eks-ml sets only the top-level ones, which then place all three.
    return PodValues(
        "Deployment",
        name,
        resources={name: f"resources.{resources}"},
        defaults={f"resources.{resources}": _KEDA_RESOURCES},
        fixed_node_selector=_OS_LINUX,
        enabled=enabled,
    )


KEDA = HelmChartPin(
    "keda",
    "https://kedacore.github.io/charts",
    "2.20.2",
    "keda",
    "keda",
    pods=(
        _keda_pod("keda-operator", "operator"),
        _keda_pod("keda-operator-metrics-apiserver", "metricServer", enabled="metricsServer.enabled"),
        _keda_pod("keda-admission-webhooks", "webhooks", enabled="webhooks.enabled"),
    ),
)

# The observability add-on's own namespace: it lives and dies with that stack, apart from the Inference
# stack's "monitoring" namespace (Prometheus and adapter for autoscaling), which it must never delete.
OBSERVABILITY_NAMESPACE = "eks-ml-observability"
# Exporters the Prometheus observability backend installs; Amazon Managed Service for Prometheus's managed
# scraper collects them (no in-cluster Prometheus). dcgm-exporter 4.8.2 (exporter 4.5.3-4.8.2) is the
# newest chart in NVIDIA's Helm repository; kube-state-metrics 8.4.0 (app 2.20.0) and
# prometheus-node-exporter 4.56.1 (app 1.12.1) are the charts' newest releases.
DCGM_EXPORTER = HelmChartPin(
    "dcgm-exporter",
    "https://nvidia.github.io/dcgm-exporter/helm-charts",
    "4.8.2",
    OBSERVABILITY_NAMESPACE,
    "dcgm-exporter",
    pods=(
        PodValues(
            "DaemonSet",
            "{release}",
            resources={"exporter": "resources"},
            defaults={
                "resources": {
                    "limits": {"cpu": "200m", "memory": "512Mi"},
                    "requests": {"cpu": "100m", "memory": "128Mi"},
                },
                "tolerations": [
                    {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"}
                ],
            },
        ),
    ),
)
KUBE_STATE_METRICS = HelmChartPin(
    "kube-state-metrics",
    "https://prometheus-community.github.io/helm-charts",
    "8.4.0",
    OBSERVABILITY_NAMESPACE,
    "kube-state-metrics",
    pods=(PodValues("Deployment", "{release}", resources={"kube-state-metrics": "resources"}),),
)
NODE_EXPORTER = HelmChartPin(
    "prometheus-node-exporter",
    "https://prometheus-community.github.io/helm-charts",
    "4.56.1",
    OBSERVABILITY_NAMESPACE,
    "node-exporter",
    pods=(
        PodValues(
            "DaemonSet",
            "{release}-prometheus-node-exporter",
            resources={"node-exporter": "resources", "efa-counters": "sidecars.0.resources"},
            defaults={
                "nodeSelector": _OS_LINUX,
                "affinity": _NOT_FARGATE,
                "tolerations": [{"effect": "NoSchedule", "operator": "Exists"}],
            },
        ),
    ),
)

ALL_CHARTS = (
    NVIDIA_DEVICE_PLUGIN,
    EFA_DEVICE_PLUGIN,
    NEURON,
    KUEUE,
    KUBEFLOW_TRAINER,
    LWS,
    KARPENTER,
    AWS_LOAD_BALANCER_CONTROLLER,
    PROMETHEUS,
    PROMETHEUS_ADAPTER,
    KEDA,
    DCGM_EXPORTER,
    KUBE_STATE_METRICS,
    NODE_EXPORTER,
)
# Controllers with admission webhooks must be serving before their custom resources are applied.
WEBHOOK_READY_TIMEOUT = Duration.minutes(15)
# Pulling the kubectl image and applying a few CRDs takes seconds; the Job's own deadline is 10 minutes.
CRD_UPGRADE_TIMEOUT = Duration.minutes(12)

# The namespaces eks-ml's releases install into (kube-system is EKS's own), each applied with its Pod Security
# labels before the release: the strictest level the pods of every release there meet (tests/test_pod_security).
RELEASE_NAMESPACES: Mapping[str, PodSecurityLevel] = {
    # Kueue's, Kubeflow Trainer's and JobSet's controllers run non-root, without capabilities, with RuntimeDefault.
    KUEUE.namespace: PodSecurityLevel.RESTRICTED,
    KUBEFLOW_TRAINER.namespace: PodSecurityLevel.RESTRICTED,
    # The LeaderWorkerSet controller runs non-root without capabilities; eks-ml's values add RuntimeDefault.
    LWS.namespace: PodSecurityLevel.RESTRICTED,
    # Prometheus (hardened by eks-ml's values) and prometheus-adapter run non-root, without capabilities.
    PROMETHEUS.namespace: PodSecurityLevel.RESTRICTED,
    # KEDA's operator, metrics server and webhooks run non-root, drop all capabilities, RuntimeDefault seccomp.
    KEDA.namespace: PodSecurityLevel.RESTRICTED,
    # privileged: node-exporter uses the host's network and PID namespaces and hostPath mounts, and dcgm-exporter
    # adds SYS_ADMIN (GPU profiling counters); both are monitors that must read the host.
    OBSERVABILITY_NAMESPACE: PodSecurityLevel.PRIVILEGED,
}


def namespace_object(name: str) -> dict[str, Any] | None:
    """The labelled Namespace eks-ml applies before a release into ``name``; None where eks-ml does not own it."""
    level = RELEASE_NAMESPACES.get(name)
    if level is None:
        return None
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": pod_security_labels(level)}}


@dataclass(frozen=True)
class Release:
    """One release as the stack installs it: the pin, the exact values (CDK tokens included), and the
    releases installed before it (the stack's dependencies between them)."""

    pin: HelmChartPin
    values: Mapping[str, Any]
    depends_on: tuple[HelmChartPin, ...] = ()


class _Releases(Construct):
    """Construct path of each HelmChart :func:`install` created -> its Release, in install order; one per app
    (a child of the construct tree's root), so separate apps never see each other's releases."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.by_path: dict[str, Release] = {}


def _releases(scope: IConstruct) -> _Releases:
    root = scope.node.root
    assert isinstance(root, Construct)
    found = root.node.try_find_child("EksMlHelmReleases")
    return found if isinstance(found, _Releases) else _Releases(root, "EksMlHelmReleases")


def releases_under(scope: IConstruct) -> tuple[Release, ...]:
    """The releases installed under ``scope``, in install order, with their exact values."""
    prefix = f"{scope.node.path}/"
    return tuple(release for path, release in _releases(scope).by_path.items() if path.startswith(prefix))


def release_namespace(prelude: ManifestBundle, name: str) -> None:
    """Add the labelled Namespace of a release into ``name`` to ``prelude``, the one the release shares and
    waits for (once per prelude); nothing for a namespace eks-ml does not own."""
    namespace = namespace_object(name)
    if namespace is not None:
        prelude.add([namespace])


def install(
    scope: Construct,
    construct_id: str,
    cluster: eks.ICluster,
    pin: HelmChartPin,
    values: Mapping[str, Any] | None = None,
    *,
    model: ClusterModel,
    wait: bool = False,
    after: Sequence[IDependable] = (),
    placement: Mapping[str, Any] | None = None,
) -> eks.HelmChart:
    """Install ``pin`` with ``values`` after ``after``, and add the pods it runs to the cluster's ``model``.
    A pin with ``crd_files`` first has them applied by a Job on the system nodes (``placement``: their
    nodeSelector and tolerations), and is installed once that Job has succeeded."""
    model.add_workloads(pin.workloads(values or {}))
    prelude = prelude_of(scope, cluster)
    release_namespace(prelude, pin.namespace)
    chart = eks.HelmChart(
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
    # The prelude first (the labelled namespace eks-ml owns, deploy-time values), then what the caller needs first.
    chart_node = chart.node  # each read of a construct's node is a jsii call
    chart_node.add_dependency(prelude, *after)
    installed = _releases(scope).by_path
    after_paths = [d.node.path for d in after if isinstance(d, Construct)]
    earlier = tuple(installed[path].pin for path in after_paths if path in installed)
    installed[chart_node.path] = Release(pin, dict(values or {}), earlier)
    _, deploy_time = split_deploy_time(values or {})
    if deploy_time:
        # For a GitOps install of the same release (eks_ml.gitops): the values known only after deploy.
        prelude.add(
            [
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {
                        "name": deploy_values_name(pin.release),
                        "namespace": pin.namespace,
                        "labels": DEPLOY_VALUES_LABEL,
                    },
                    "data": {DEPLOY_VALUES_KEY: json.dumps(deploy_time, sort_keys=True)},
                }
            ]
        )
    if pin.crd_files:
        if placement is None:
            raise TypeError(f"{pin.chart} ships CRDs that need the upgrade Job: pass placement")
        upgrade = CrdUpgrade.of(prelude) or upgrade_crds(prelude, [pin], placement=placement, model=model)
        if pin not in upgrade.pins:
            raise TypeError(f"{pin.chart}: list it in the helm.upgrade_crds call of {prelude.node.path}")
        chart_node.add_dependency(upgrade.succeeded)
    return chart


class CrdUpgrade(Construct):
    """The one Job that server-side applies the ``crds/`` files of ``pins`` (in the prelude, so it runs before
    their releases), and ``succeeded``, a value that resolves only once the Job has succeeded: each of those
    releases waits for it. One Job, and one wait, for all of a prelude's charts that need it."""

    def __init__(
        self,
        prelude: ManifestBundle,
        pins: Sequence[HelmChartPin],
        *,
        placement: Mapping[str, Any],
        model: ClusterModel,
    ) -> None:
        scope = prelude.node.scope
        assert isinstance(scope, Construct)
        super().__init__(scope, f"{prelude.node.id}Crds")
        namespaces = {pin.namespace for pin in pins}
        if len(namespaces) != 1:
            raise TypeError(f"one CRD upgrade Job runs in one namespace, not {sorted(namespaces)}")  # internal
        self.pins = tuple(pins)
        (namespace,) = namespaces
        release, version = _crd_job_release_and_version(pins)
        job = CrdUpgradeChart(
            cdk8s.App(),
            "CrdUpgrade",
            release=release,
            version=version,
            namespace=namespace,
            files=[file for pin in pins for file in pin.crd_files],
            placement=placement,
        )
        self.job_name = job.job_name
        objects = job.to_json()
        charts = ", ".join(f"{pin.chart} {pin.version}" for pin in pins)
        model.add_workloads(workloads_from_objects(objects, f"CRD upgrade of {charts}"))
        labelled_namespace = namespace_object(namespace)
        if labelled_namespace is not None:
            prelude.add([labelled_namespace])  # the Job's namespace before the Job
        prelude.add(objects)
        assert prelude.manifest is not None
        # The kubectl provider polls until the JSONPath is non-empty: .status.succeeded appears on success only,
        # so a failed Job fails the deploy after the timeout instead of installing a chart over stale CRDs.
        self.succeeded = eks.KubernetesObjectValue(
            self,
            "Succeeded",
            cluster=prelude.cluster,
            object_type="job",
            object_name=job.job_name,
            object_namespace=namespace,
            json_path=".status.succeeded",
            timeout=CRD_UPGRADE_TIMEOUT,
        )
        self.succeeded.node.add_dependency(prelude.manifest)

    @staticmethod
    def of(prelude: ManifestBundle) -> CrdUpgrade | None:
        node = prelude.node
        scope = node.scope
        assert scope is not None
        found = scope.node.try_find_child(f"{node.id}Crds")
        return found if isinstance(found, CrdUpgrade) else None


def _crd_job_release_and_version(pins: Sequence[HelmChartPin]) -> tuple[str, str]:
    # A chart's own Job is named after it; a Job for several after all of their versions.
    if len(pins) == 1:
        return pins[0].release, pins[0].version
    return "charts", "-".join(pin.version for pin in pins)


def crd_upgrade_job_name(pins: Sequence[HelmChartPin], placement: Mapping[str, Any]) -> str:
    """The name of the Job :class:`CrdUpgrade` runs for ``pins`` on ``placement``."""
    release, version = _crd_job_release_and_version(pins)
    return upgrade_job_name(release, version, [file for pin in pins for file in pin.crd_files], placement)


def upgrade_crds(
    prelude: ManifestBundle,
    pins: Sequence[HelmChartPin],
    *,
    placement: Mapping[str, Any],
    model: ClusterModel,
) -> CrdUpgrade:
    """Declare, before installing them, every chart of ``prelude`` whose CRDs need the upgrade Job (a chart
    with ``crd_files`` installed without this gets a Job of its own, and a second such chart is refused)."""
    if CrdUpgrade.of(prelude) is not None:
        raise TypeError(f"{prelude.node.path} already has its CRD upgrade Job")  # internal
    return CrdUpgrade(prelude, [pin for pin in pins if pin.crd_files], placement=placement, model=model)
