from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from aws_cdk import assertions

from eks_ml import BaseCluster, BaseClusterProps, MlVpc, MlVpcProps, helm
from eks_ml.training import TrainingCluster, TrainingClusterProps, TrainingNodeGroupProps

from .support.manifests import requires_chart_cache, validate_objects
from .support.synth import library_stack, manifest_id, of_type, resource_id

HELM = "Custom::AWSCDK-EKS-HelmChart"
TRAINING_CHARTS = (helm.NVIDIA_DEVICE_PLUGIN, helm.EFA_DEVICE_PLUGIN, helm.NEURON, helm.KUEUE, helm.KUBEFLOW_TRAINER)


def synth(*groups: TrainingNodeGroupProps, existing: bool = False) -> tuple[TrainingCluster, dict[str, Any]]:
    _, stack = library_stack()
    network = MlVpc(stack, "Network", MlVpcProps(availability_zones=("us-west-2a", "us-west-2b")))
    base = BaseClusterProps(vpc=network.vpc, cluster_name="train")
    if existing:
        cluster_props = TrainingClusterProps(
            cluster=BaseCluster(stack, "Existing", base).cluster, node_groups=groups, file_system=None
        )
    else:
        cluster_props = TrainingClusterProps(base=base, node_groups=groups, file_system=None)
    cluster = TrainingCluster(stack, "Training", cluster_props)
    return cluster, assertions.Template.from_stack(stack).to_json()


def charts(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["Properties"]["Release"]: {"id": k, **r} for k, r in of_type(template, HELM).items()}


@pytest.fixture(scope="module")
def mixed() -> tuple[TrainingCluster, dict[str, Any]]:
    return synth(
        TrainingNodeGroupProps(name="h100", instance_type="p5.48xlarge", desired_size=2),
        TrainingNodeGroupProps(name="trn", instance_type="trn1.32xlarge", desired_size=4),
    )


def test_each_chart_is_installed_at_its_pinned_version(mixed: Any) -> None:
    _, template = mixed
    installed = charts(template)
    assert set(installed) == {pin.release for pin in TRAINING_CHARTS}
    for pin in TRAINING_CHARTS:
        props = installed[pin.release]["Properties"]
        assert (props["Chart"], props["Repository"], props["Version"], props["Namespace"]) == (
            pin.chart,
            pin.repository,
            pin.version,
            pin.namespace,
        )


def test_webhook_controllers_are_waited_for_and_everything_follows_the_system_nodes(mixed: Any) -> None:
    _, template = mixed
    installed = charts(template)
    for release in ("kueue", "kubeflow-trainer"):
        assert installed[release]["Properties"]["Wait"] is True
        assert installed[release]["Properties"]["Timeout"] == "900s"
    system_nodes_id = next(
        k
        for k, r in of_type(template, "AWS::EKS::Nodegroup").items()
        if r["Properties"]["Labels"].get("eks-ml.io/node-role") == "system"
    )
    for chart in installed.values():
        assert system_nodes_id in chart["DependsOn"]


def test_device_plugins_land_on_the_accelerated_nodes(mixed: Any) -> None:
    _, template = mixed
    installed = charts(template)
    nvidia = json.loads(installed["nvidia-device-plugin"]["Properties"]["Values"])
    (term,) = nvidia["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert term["matchExpressions"] == [{"key": "eks-ml.io/accelerator", "operator": "In", "values": ["nvidia"]}]
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in nvidia["tolerations"]
    efa = json.loads(installed["aws-efa-device-plugin"]["Properties"]["Values"])
    assert efa["supportedInstanceLabels"]["values"] == ["p5.48xlarge", "trn1.32xlarge"]
    assert {t["key"] for t in efa["tolerations"]} >= {"nvidia.com/gpu", "aws.amazon.com/neuron"}
    neuron = json.loads(installed["neuron"]["Properties"]["Values"])
    assert neuron["npd"] == {"enabled": False}
    # Nothing uses the scheduler extension (pods take whole devices), and its image would land on arm64
    # system nodes: it stays off.
    assert neuron["scheduler"] == {"enabled": False}
    assert neuron["devicePlugin"]["nodeSelector"] == {"eks-ml.io/accelerator": "aws-neuron"}


def test_the_efa_plugin_image_comes_from_the_clusters_own_region() -> None:
    _, stack = library_stack(region="af-south-1")
    network = MlVpc(stack, "Network", MlVpcProps(availability_zones=("af-south-1a", "af-south-1b")))
    TrainingCluster(
        stack,
        "Training",
        TrainingClusterProps(
            base=BaseClusterProps(vpc=network.vpc, cluster_name="train"),
            node_groups=[TrainingNodeGroupProps(name="g")],
            file_system=None,
        ),
    )
    efa = json.loads(
        charts(assertions.Template.from_stack(stack).to_json())["aws-efa-device-plugin"]["Properties"]["Values"]
    )
    assert efa["image"]["repository"] == "877085696533.dkr.ecr.af-south-1.amazonaws.com/eks/aws-efa-k8s-device-plugin"


def test_kueue_keeps_the_charts_controller_settings(mixed: Any) -> None:
    _, template = mixed
    values = json.loads(charts(template)["kueue"]["Properties"]["Values"])
    config = yaml.safe_load(values["managerConfig"]["controllerManagerConfigYaml"])
    # The chart's own per-kind concurrency and client rates survive eks-ml's replacement config.
    assert config["controller"]["groupKindConcurrency"]["Workload.kueue.x-k8s.io"] == 10
    assert config["clientConnection"] == {"qps": 300, "burst": 500}


def test_kueue_admits_all_or_nothing_and_knows_trainjobs(mixed: Any) -> None:
    _, template = mixed
    values = json.loads(charts(template)["kueue"]["Properties"]["Values"])
    config = yaml.safe_load(values["managerConfig"]["controllerManagerConfigYaml"])
    assert config["apiVersion"] == "config.kueue.x-k8s.io/v1beta2"
    assert config["waitForPodsReady"]["blockAdmission"] is True
    assert config["waitForPodsReady"]["timeout"] == "10m"
    assert "trainer.kubeflow.org/trainjob" in config["integrations"]["frameworks"]


def requeue_problems(config: dict[str, Any]) -> list[str]:
    """What keeps Kueue from requeueing an evicted gang with backoff (the other half of surviving failures)."""
    ready = config.get("waitForPodsReady", {})
    strategy = ready.get("requeuingStrategy", {})
    problems = []
    if not strategy:
        problems.append("no requeuingStrategy: an evicted gang would not be requeued with backoff")
    if strategy.get("backoffLimitCount", 0) <= 0:
        problems.append("backoffLimitCount must be a positive bound")
    if not 0 < strategy.get("backoffBaseSeconds", 0) <= strategy.get("backoffMaxSeconds", 0):
        problems.append("backoff base and max must grow from a positive base")
    return problems


def kueue_config(template: dict[str, Any]) -> dict[str, Any]:
    values = json.loads(charts(template)["kueue"]["Properties"]["Values"])
    config: dict[str, Any] = yaml.safe_load(values["managerConfig"]["controllerManagerConfigYaml"])
    return config


def test_kueue_requeues_evicted_gangs_with_bounded_backoff(mixed: Any) -> None:
    _, template = mixed
    config = kueue_config(template)
    assert requeue_problems(config) == []
    assert config["waitForPodsReady"]["requeuingStrategy"] == {
        "timestamp": "Eviction",
        "backoffLimitCount": 5,
        "backoffBaseSeconds": 60,
        "backoffMaxSeconds": 3600,
    }


@pytest.mark.parametrize(
    ("break_config", "expected"),
    [
        (lambda c: c["waitForPodsReady"].pop("requeuingStrategy"), "no requeuingStrategy"),
        (lambda c: c.pop("waitForPodsReady"), "no requeuingStrategy"),
        (lambda c: c["waitForPodsReady"]["requeuingStrategy"].pop("backoffLimitCount"), "backoffLimitCount"),
        (lambda c: c["waitForPodsReady"]["requeuingStrategy"].update(backoffBaseSeconds=0), "backoff base"),
    ],
)
def test_a_kueue_config_without_requeue_backoff_is_caught(mixed: Any, break_config: Any, expected: str) -> None:
    _, template = mixed
    config = kueue_config(template)
    break_config(config)
    assert any(expected in problem for problem in requeue_problems(config))


def test_nvidia_only_cluster_installs_no_neuron_chart() -> None:
    _, template = synth(TrainingNodeGroupProps(name="g"))
    assert "neuron" not in charts(template) and "nvidia-device-plugin" in charts(template)


def test_neuron_only_cluster_installs_no_nvidia_chart() -> None:
    _, template = synth(TrainingNodeGroupProps(name="g", instance_type="trn2.48xlarge"))
    assert "nvidia-device-plugin" not in charts(template) and "neuron" in charts(template)


def queue_objects(cluster: TrainingCluster) -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["kind"], o["metadata"]["name"]): o for o in cluster.queues_chart.to_json()}


def test_a_flavor_per_group_with_its_labels_and_toleration(mixed: Any) -> None:
    cluster, _ = mixed
    objects = queue_objects(cluster)
    h100 = objects[("ResourceFlavor", "h100")]["spec"]
    # Jobs land only on the group's nodes that passed burn-in; they never tolerate its startup taint.
    assert h100["nodeLabels"] == {"eks-ml.io/node-group": "h100", "eks-ml.io/burn-in": "passed"}
    assert h100["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    trn = objects[("ResourceFlavor", "trn")]["spec"]
    assert trn["tolerations"] == [{"key": "aws.amazon.com/neuron", "operator": "Exists", "effect": "NoSchedule"}]


def test_cluster_queue_quota_is_each_group_at_its_maximum_size(mixed: Any) -> None:
    cluster, _ = mixed
    spec = queue_objects(cluster)[("ClusterQueue", "training")]["spec"]
    assert spec["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": "training"}}
    (group,) = spec["resourceGroups"]
    assert group["coveredResources"] == [
        "cpu",
        "memory",
        "nvidia.com/gpu",
        "aws.amazon.com/neuron",
        "aws.amazon.com/neuroncore",
        "vpc.amazonaws.com/efa",
    ]
    quotas = {f["name"]: {r["name"]: r["nominalQuota"] for r in f["resources"]} for f in group["flavors"]}
    assert quotas["h100"] == {
        "cpu": 384,
        "memory": "4194304Mi",
        "nvidia.com/gpu": 16,
        "aws.amazon.com/neuron": 0,
        "aws.amazon.com/neuroncore": 0,
        "vpc.amazonaws.com/efa": 64,
    }
    assert quotas["trn"] == {
        "cpu": 512,
        "memory": "2097152Mi",
        "nvidia.com/gpu": 0,
        "aws.amazon.com/neuron": 64,
        "aws.amazon.com/neuroncore": 128,  # 4 nodes x 32 NeuronCores (trn1: LNC=1)
        "vpc.amazonaws.com/efa": 32,
    }


def test_trn2_quota_counts_the_logical_neuron_cores_the_device_plugin_advertises() -> None:
    # trn2's default LNC=2 presents 64 NeuronCores per trn2.48xlarge, not its 128 physical cores.
    cluster, _ = synth(TrainingNodeGroupProps(name="trn2", instance_type="trn2.48xlarge", desired_size=2))
    (group,) = queue_objects(cluster)[("ClusterQueue", "training")]["spec"]["resourceGroups"]
    (flavor,) = group["flavors"]
    quotas = {r["name"]: r["nominalQuota"] for r in flavor["resources"]}
    assert (quotas["aws.amazon.com/neuron"], quotas["aws.amazon.com/neuroncore"]) == (32, 128)
    assert quotas["vpc.amazonaws.com/efa"] == 32


def test_local_queue_in_the_training_namespace(mixed: Any) -> None:
    cluster, _ = mixed
    objects = queue_objects(cluster)
    assert ("Namespace", "training") in objects
    local = objects[("LocalQueue", "training")]
    assert (local["metadata"]["namespace"], local["spec"]["clusterQueue"]) == ("training", "training")


@requires_chart_cache
def test_queue_objects_pass_the_validator(mixed: Any) -> None:
    cluster, _ = mixed
    assert validate_objects(cluster.queues_chart.to_json()) == []


def test_queues_are_applied_after_kueue_is_serving(mixed: Any) -> None:
    _, template = mixed
    queues = template["Resources"][manifest_id(template, "ClusterQueue")]
    assert resource_id(template, HELM, Release="kueue") in queues["DependsOn"]
