"""In-cluster software of a training cluster: device plugins, Kueue and Kubeflow Trainer (pinned Helm)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aws_cdk import aws_eks_v2 as eks
from constructs import Construct, IDependable

from .. import helm
from .._yaml import dump as to_yaml
from ..cluster.device_plugins import install_device_plugins
from ..cluster.system_nodes import SystemPlacement
from ..placement import ClusterModel
from .node_group import TrainingNodes

# Kueue's controller configuration: the chart's own (health, metrics, webhook, leader election, the
# per-kind reconcile concurrency and API client rates of kueue 0.19.2's values.yaml), plus all-or-nothing
# admission: a gang whose pods are not all Ready within the timeout is evicted and requeued with
# backoff instead of holding accelerators half-used (waitForPodsReady). Frameworks: the ones eks-ml runs.
KUEUE_CONFIG: dict[str, Any] = {
    "apiVersion": "config.kueue.x-k8s.io/v1beta2",
    "kind": "Configuration",
    "health": {"healthProbeBindAddress": ":8081"},
    "metrics": {"bindAddress": ":8443"},
    "webhook": {"port": 9443},
    "leaderElection": {"leaderElect": True, "resourceName": "c1f6bfd2.kueue.x-k8s.io"},
    "controller": {
        "groupKindConcurrency": {
            "Job.batch": 5,
            "Pod": 5,
            "Workload.kueue.x-k8s.io": 10,
            "LocalQueue.kueue.x-k8s.io": 5,
            "ClusterQueue.kueue.x-k8s.io": 5,
            "ResourceFlavor.kueue.x-k8s.io": 1,
        }
    },
    "clientConnection": {"qps": 300, "burst": 500},
    "waitForPodsReady": {
        "timeout": "10m",
        "blockAdmission": True,
        "requeuingStrategy": {
            "timestamp": "Eviction",
            "backoffLimitCount": 5,
            "backoffBaseSeconds": 60,
            "backoffMaxSeconds": 3600,
        },
    },
    "integrations": {"frameworks": ["batch/job", "jobset.x-k8s.io/jobset", "trainer.kubeflow.org/trainjob"]},
}
# Requests of the controllers on the system nodes (two m7g.large by default): enough to schedule them
# honestly, with memory limits equal to requests so a leak cannot starve the node.
KUEUE_RESOURCES = {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"cpu": "2", "memory": "512Mi"}}
TRAINER_RESOURCES = {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "256Mi"}}
JOBSET_RESOURCES = {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}}


def kueue_values(placement: SystemPlacement, config: Mapping[str, Any] = KUEUE_CONFIG) -> dict[str, Any]:
    """The Kueue release's values; ``config``: the controller configuration (the inference cluster's batch jobs
    use their own, eks_ml.inference.batch)."""
    return {
        "managerConfig": {"controllerManagerConfigYaml": to_yaml(config)},
        "controllerManager": {**placement.values(), "manager": {"resources": KUEUE_RESOURCES}},
    }


def trainer_values(placement: SystemPlacement) -> dict[str, Any]:
    return {
        "manager": {**placement.values(), "resources": TRAINER_RESOURCES},
        "jobset": {"controller": {**placement.values(), "resources": JOBSET_RESOURCES}},
    }


class TrainingSoftware(Construct):
    """Attributes: ``charts`` (name -> HelmChart), ``kueue``, ``trainer``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster: eks.ICluster,
        model: ClusterModel,
        placement: SystemPlacement,
        groups: Sequence[TrainingNodes],
        efa_image_repository: str,
        after: Sequence[IDependable] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        self.charts: dict[str, eks.HelmChart] = install_device_plugins(
            self,
            cluster=cluster,
            model=model,
            vendors={group.spec.vendor for group in groups},
            efa_instance_types={group.spec.name for group in groups if group.spec.supports_efa},
            efa_image_repository=efa_image_repository,
        )
        self.kueue = helm.install(self, "Kueue", cluster, helm.KUEUE, kueue_values(placement), model=model, wait=True)
        self.trainer = helm.install(
            self,
            "KubeflowTrainer",
            cluster,
            helm.KUBEFLOW_TRAINER,
            trainer_values(placement),
            model=model,
            wait=True,
            after=after,
            placement=placement.values(),
        )
        self.charts["kueue"] = self.kueue
        self.charts["trainer"] = self.trainer
        for chart in self.charts.values():
            for dependency in after:
                chart.node.add_dependency(dependency)
