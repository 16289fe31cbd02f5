"""The cluster model: every workload of every cluster lands on a node source that can run it."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import App

from eks_ml import ValidationError, load_app_config
from eks_ml.catalog import lookup
from eks_ml.placement import ClusterModel, Taint, Workload, karpenter_pool, managed_node_group
from eks_ml.placement.pods import workloads_from_objects
from stacks import build_default_app

from .support.synth import CDK_CONTEXT, make_app

GPU = "nvidia.com/gpu"


def built(tmp_path: Any, **context: str) -> App:
    app = make_app(tmp_path, {**CDK_CONTEXT, **context})
    build_default_app(app, load_app_config({**CDK_CONTEXT, **context}), bootstrap_version_rule=False)
    return app


def models(app: App) -> dict[str, ClusterModel]:
    """The cluster models of an app's clusters, by cluster name."""
    from eks_ml.inference import InferenceCluster
    from eks_ml.training import TrainingCluster

    found = {}
    for construct in app.node.find_all():
        if isinstance(construct, TrainingCluster | InferenceCluster):
            found[construct.model.name] = construct.model
    return found


@pytest.fixture(scope="module")
def default_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ClusterModel]:
    return models(built(tmp_path_factory.mktemp("placement")))


def landing(model: ClusterModel, name: str) -> dict[str, tuple[str, ...]]:
    (placement,) = [p for p in model.placements() if p.workload.name == name]
    return dict(placement.landings)


def test_every_workload_of_the_default_app_lands(default_models: dict[str, ClusterModel]) -> None:
    for model in default_models.values():
        placements = model.prove()
        assert placements and all(p.landings for p in placements)


def test_model_servers_land_on_nodes_that_advertise_their_accelerators(
    default_models: dict[str, ClusterModel],
) -> None:
    inference = default_models["eks-ml-inference"]
    names = {p.workload.name for p in inference.placements()}
    # The Neuron device plugin the AL2023 Neuron AMI lacks is installed; the gpu pool runs Bottlerocket, whose
    # NVIDIA variant advertises nvidia.com/gpu itself, so no NVIDIA plugin release runs there.
    assert "DaemonSet kube-system/neuron-device-plugin" in names
    assert "DaemonSet kube-system/nvidia-device-plugin" not in names
    (gpu_pool,) = [s for s in inference.sources if s.name == "Karpenter NodePool gpu"]
    assert gpu_pool.builtin_resources == {GPU}
    vllm = [n for n in names if n.startswith("Deployment inference/")]
    assert len(vllm) == 2
    lands = {n: landing(inference, n) for n in vllm}
    assert any(set(where) == {"Karpenter NodePool gpu"} for where in lands.values())
    assert any(set(where) == {"Karpenter NodePool inferentia"} for where in lands.values())


def test_controllers_land_on_the_system_nodes_only(default_models: dict[str, ClusterModel]) -> None:
    inference = default_models["eks-ml-inference"]
    assert set(landing(inference, "Deployment kube-system/karpenter")) == {"managed node group system"}
    assert set(landing(inference, "Deployment monitoring/prometheus-server")) == {"managed node group system"}


def test_training_jobs_are_admitted_to_their_flavor_and_land_on_their_group(
    default_models: dict[str, ClusterModel],
) -> None:
    training = default_models["eks-ml-training"]
    jobs = [p for p in training.placements() if p.workload.kind == "TrainJob"]
    assert len(jobs) == 2  # the example job and the fabric test of the p5 group
    for job in jobs:
        assert "in Kueue flavor p5" in job.workload.name
        assert dict(job.landings) == {"managed node group p5": ("p5.48xlarge",)}


@pytest.mark.parametrize(
    "context",
    [
        {"eks-ml:autoMode": "true"},
        {"eks-ml:trainingInstanceType": "trn1.32xlarge"},
        {"eks-ml:trainingInstanceType": "trn2.48xlarge"},
        {"eks-ml:observabilityBackend": "prometheus"},
    ],
    ids=["auto-mode", "trn1", "trn2", "prometheus-backend"],
)
def test_every_variant_proves_placeable(tmp_path: Any, context: dict[str, str]) -> None:
    for model in models(built(tmp_path, **context)).values():
        assert all(p.landings for p in model.prove())


def test_with_auto_mode_controllers_go_to_the_built_in_system_pool(tmp_path: Any) -> None:
    inference = models(built(tmp_path, **{"eks-ml:autoMode": "true"}))["eks-ml-inference"]
    assert set(landing(inference, "Deployment monitoring/prometheus-server")) == {"EKS Auto Mode NodePool system"}
    # Auto Mode nodes bring their own device plugins: eks-ml installs none there.
    assert not [p for p in inference.placements() if p.workload.name.endswith("device-plugin")]


# -- the proof refuses what cannot run, and says why ------------------------------------------------


def gpu_model(*, plugin: bool) -> ClusterModel:
    model = ClusterModel("test")
    model.add_source(managed_node_group("system", ["m7g.large"], {"eks-ml.io/node-role": "system"}))
    model.add_source(
        karpenter_pool(
            "gpu",
            specs=[lookup("g6e.xlarge")],
            labels={"eks-ml.io/accelerator": "nvidia"},
            taints=[Taint(GPU, "true", "NoSchedule")],
            capacity_types=["on-demand"],
        )
    )
    if plugin:
        model.add_workloads([daemon_set(provides=frozenset({GPU}))])
    return model


def daemon_set(provides: frozenset[str]) -> Workload:
    from eks_ml.placement import Toleration

    return Workload(
        name="DaemonSet kube-system/plugin",
        origin="test",
        kind="DaemonSet",
        node_selector={"eks-ml.io/accelerator": "nvidia"},
        tolerations=(Toleration(GPU, "Exists", None, "NoSchedule"),),
        requests={"cpu": 10, "memory": 32},
        provides=provides,
    )


def gpu_pod(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "nodeSelector": {"eks-ml.io/accelerator": "nvidia"},
        "tolerations": [{"key": GPU, "operator": "Exists", "effect": "NoSchedule"}],
        "containers": [{"name": "server", "resources": {"requests": {"cpu": "3", "memory": "24Gi", GPU: "1"}}}],
        **overrides,
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "vllm", "namespace": "inference"},
        "spec": {"template": {"spec": spec}},
    }
    return deployment


def test_a_gpu_pod_lands_where_a_device_plugin_advertises_gpus() -> None:
    model = gpu_model(plugin=True)
    model.add_workloads(workloads_from_objects([gpu_pod()], "test"))
    model.prove()


def test_a_gpu_pod_without_a_device_plugin_is_refused_with_the_reason() -> None:
    # The defect of the last round: no device plugin, so the pod would stay Pending forever.
    model = gpu_model(plugin=False)
    model.add_workloads(workloads_from_objects([gpu_pod()], "test"))
    with pytest.raises(ValidationError) as raised:
        model.prove()
    message = str(raised.value)
    assert "Deployment inference/vllm" in message
    assert "Karpenter NodePool gpu refused it: no device plugin advertises nvidia.com/gpu" in message
    assert "managed node group system refused it: nodeSelector eks-ml.io/accelerator=nvidia" in message


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"tolerations": []}, "taint nvidia.com/gpu=true:NoSchedule not tolerated"),
        ({"nodeSelector": {"eks-ml.io/accelerator": "amd"}}, "nodeSelector eks-ml.io/accelerator=amd"),
        (
            {"containers": [{"name": "s", "resources": {"requests": {"cpu": "3", "memory": "64Gi", GPU: "1"}}}]},
            "g6e.xlarge has",
        ),
        (
            {"containers": [{"name": "s", "resources": {"limits": {GPU: "2"}}}]},
            "g6e.xlarge has 1 nvidia.com/gpu, the pod asks 2",
        ),
        (
            {
                "affinity": {
                    "nodeAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": {
                            "nodeSelectorTerms": [
                                {
                                    "matchExpressions": [
                                        {"key": "kubernetes.io/arch", "operator": "In", "values": ["arm64"]}
                                    ]
                                }
                            ]
                        }
                    }
                }
            },
            "required node affinity (kubernetes.io/arch In ['arm64'])",
        ),
    ],
    ids=["untolerated-taint", "selector", "memory", "too-many-gpus", "affinity"],
)
def test_each_reason_a_node_refuses_a_pod(overrides: dict[str, Any], reason: str) -> None:
    model = gpu_model(plugin=True)
    model.add_workloads(workloads_from_objects([gpu_pod(**overrides)], "test"))
    with pytest.raises(ValidationError, match="Deployment inference/vllm") as raised:
        model.prove()
    assert reason in str(raised.value)


def test_a_train_job_no_flavor_can_hold_is_refused() -> None:
    model = ClusterModel("test")
    model.add_source(managed_node_group("p5", ["p5.48xlarge"], {"eks-ml.io/node-group": "p5"}))
    queue = {"kueue.x-k8s.io/queue-name": "training"}
    objects = [
        {"kind": "LocalQueue", "metadata": {"name": "training", "namespace": "t"}, "spec": {"clusterQueue": "cq"}},
        {
            "kind": "ClusterQueue",
            "metadata": {"name": "cq"},
            "spec": {
                "resourceGroups": [
                    {
                        "coveredResources": ["cpu", GPU],
                        "flavors": [
                            {
                                "name": "p5",
                                "resources": [{"name": "cpu", "nominalQuota": 192}, {"name": GPU, "nominalQuota": 8}],
                            }
                        ],
                    }
                ]
            },
        },
        {
            "kind": "ClusterTrainingRuntime",
            "metadata": {"name": "rt"},
            "spec": {
                "template": {
                    "spec": {
                        "replicatedJobs": [
                            {
                                "name": "node",
                                "template": {"spec": {"template": {"spec": {"containers": [{"name": "node"}]}}}},
                            }
                        ]
                    }
                }
            },
        },
        {
            "kind": "TrainJob",
            "metadata": {"name": "big", "namespace": "t", "labels": queue},
            "spec": {
                "runtimeRef": {"name": "rt"},
                "trainer": {"numNodes": 2, "resourcesPerNode": {"requests": {"cpu": "100", GPU: "8"}}},
            },
        },
    ]
    model.add_workloads(workloads_from_objects(objects, "test"))
    with pytest.raises(ValidationError, match="no flavor of ClusterQueue cq has quota for 2 pods"):
        model.prove()


def test_the_default_app_without_inference_device_plugins_does_not_synthesize(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The last round's defect, rebuilt: the inference cluster installs no device plugin.
    import eks_ml.inference.cluster

    monkeypatch.setattr(eks_ml.inference.cluster, "install_device_plugins", lambda *args, **kwargs: {})
    with pytest.raises(ValidationError) as raised:
        built(tmp_path)
    assert "no device plugin advertises aws.amazon.com/neuron on inf2.8xlarge" in str(raised.value)
    # The GPU server still lands: Bottlerocket's NVIDIA nodes need no plugin of the cluster.
    assert "Deployment inference/qwen3-8b=" not in str(raised.value)


def test_gpu_nodes_whose_os_advertised_no_gpus_would_need_the_plugin(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What the Bottlerocket pool's proof rests on, broken: its OS advertises nothing and no plugin is installed.
    import eks_ml.inference.cluster
    from eks_ml.inference import NodeOS

    monkeypatch.setattr(NodeOS, "builtin_device_resources", property(lambda self: frozenset()))
    monkeypatch.setattr(eks_ml.inference.cluster, "install_device_plugins", lambda *args, **kwargs: {})
    with pytest.raises(ValidationError) as raised:
        built(tmp_path)
    assert "Deployment inference/qwen3-8b=" in str(raised.value)
    assert "no device plugin advertises nvidia.com/gpu on g6e.xlarge" in str(raised.value)


def test_controllers_selecting_the_system_label_cannot_run_on_auto_mode(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The Auto Mode defect, rebuilt: Prometheus pinned to eks-ml's system label, which no Auto Mode node has.
    import eks_ml.cluster.base
    from eks_ml.cluster.system_nodes import MANAGED_SYSTEM_PLACEMENT

    monkeypatch.setattr(eks_ml.cluster.base, "AUTO_MODE_SYSTEM_PLACEMENT", MANAGED_SYSTEM_PLACEMENT)
    with pytest.raises(ValidationError, match="Deployment kueue-system/kueue-controller-manager"):
        built(tmp_path, **{"eks-ml:autoMode": "true"})
