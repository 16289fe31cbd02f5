"""In-cluster software of a training cluster: device plugins, Kueue and Kubeflow Trainer (pinned Helm)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import Annotations
from aws_cdk import aws_eks_v2 as eks
from constructs import Construct, IDependable

from .. import helm
from ..catalog import AcceleratorVendor
from ..cluster import KubernetesRelease
from .node_group import ACCELERATOR_LABEL, TrainingNodeGroup

CRITICAL_ADDONS_ONLY = {"key": "CriticalAddonsOnly", "operator": "Exists"}
# Kueue admits a gang only when all its pods can start; pods that are not all Ready within the timeout
# are evicted and requeued with backoff instead of holding accelerators half-used (waitForPodsReady,
# enabled by its presence in config v1beta2).
KUEUE_CONFIG = """\
apiVersion: config.kueue.x-k8s.io/v1beta2
kind: Configuration
health:
  healthProbeBindAddress: :8081
metrics:
  bindAddress: :8443
webhook:
  port: 9443
leaderElection:
  leaderElect: true
  resourceName: c1f6bfd2.kueue.x-k8s.io
waitForPodsReady:
  timeout: 10m
  blockAdmission: true
  requeuingStrategy:
    timestamp: Eviction
    backoffLimitCount: 5
    backoffBaseSeconds: 60
    backoffMaxSeconds: 3600
integrations:
  frameworks:
  - "batch/job"
  - "jobset.x-k8s.io/jobset"
  - "trainer.kubeflow.org/trainjob"
"""


def _toleration(key: str) -> dict[str, str]:
    return {"key": key, "operator": "Exists", "effect": "NoSchedule"}


def nvidia_values() -> dict[str, Any]:
    # The chart's default affinity expects Node Feature Discovery labels, which EKS nodes do not carry;
    # select nodes by the label eks-ml puts on every NVIDIA node group instead.
    return {
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {
                                    "key": ACCELERATOR_LABEL,
                                    "operator": "In",
                                    "values": [AcceleratorVendor.NVIDIA.value],
                                }
                            ]
                        }
                    ]
                }
            }
        },
        "tolerations": [_toleration("nvidia.com/gpu"), CRITICAL_ADDONS_ONLY],
    }


def efa_values(instance_types: Sequence[str]) -> dict[str, Any]:
    return {
        "supportedInstanceLabels": {"keys": ["node.kubernetes.io/instance-type"], "values": sorted(instance_types)},
        "tolerations": [_toleration("nvidia.com/gpu"), _toleration("aws.amazon.com/neuron"), CRITICAL_ADDONS_ONLY],
    }


def neuron_values(kube_scheduler_tag: str | None) -> dict[str, Any]:
    # The node monitoring agent add-on already reports Neuron hardware errors: no second detector.
    values: dict[str, Any] = {"npd": {"enabled": False}}
    if kube_scheduler_tag:
        values["scheduler"] = {
            "enabled": True,
            "customScheduler": {"enabled": True, "image": {"tag": kube_scheduler_tag}},
        }
    return values


def kueue_values() -> dict[str, Any]:
    return {"managerConfig": {"controllerManagerConfigYaml": KUEUE_CONFIG}}


class TrainingSoftware(Construct):
    """Attributes: ``charts`` (name -> HelmChart), ``kueue``, ``trainer``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster: eks.ICluster,
        groups: Sequence[TrainingNodeGroup],
        release: KubernetesRelease | None,
        after: Sequence[IDependable] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        vendors = {group.spec.vendor for group in groups}
        self.charts: dict[str, eks.HelmChart] = {}
        if AcceleratorVendor.NVIDIA in vendors:
            self.charts["nvidia"] = helm.install(
                self, "NvidiaDevicePlugin", cluster, helm.NVIDIA_DEVICE_PLUGIN, nvidia_values()
            )
        if AcceleratorVendor.AWS_NEURON in vendors:
            tag = release.kube_scheduler_tag if release else None
            if tag is None:
                Annotations.of(self).add_warning_v2(
                    "eks-ml:neuron-scheduler-skipped",
                    "The Neuron scheduler extension needs a kube-scheduler image of the cluster's Kubernetes "
                    "version and eks-ml knows none for this cluster; only the Neuron device plugin is installed. "
                    "Whole-node jobs do not need the extension.",
                )
            self.charts["neuron"] = helm.install(self, "Neuron", cluster, helm.NEURON, neuron_values(tag))
        self.charts["efa"] = helm.install(
            self, "EfaDevicePlugin", cluster, helm.EFA_DEVICE_PLUGIN, efa_values([g.spec.name for g in groups])
        )
        self.kueue = helm.install(self, "Kueue", cluster, helm.KUEUE, kueue_values(), wait=True)
        self.trainer = helm.install(self, "KubeflowTrainer", cluster, helm.KUBEFLOW_TRAINER, wait=True)
        self.charts["kueue"] = self.kueue
        self.charts["trainer"] = self.trainer
        for chart in self.charts.values():
            for dependency in after:
                chart.node.add_dependency(dependency)
