from __future__ import annotations

import copy
import importlib.util
import json
from types import ModuleType
from typing import Any

import pytest
import yaml
from aws_cdk import assertions

from eks_ml import BaseClusterProps, MlVpc, MlVpcProps, catalog
from eks_ml.k8s.training_jobs import DEFAULT_MAX_RESTARTS
from eks_ml.training import TrainingCluster, TrainingClusterProps, TrainingNodeGroupProps, training_instance_types
from eks_ml.training.jobs import NVIDIA_IMAGE, node_resources

from .support.manifests import requires_chart_cache, validate_objects
from .support.synth import ROOT, library_stack, manifest_id, manifest_kinds, of_type, resource_id

# Variables modern aws-ofi-nccl and Neuron collectives do not need; eks-ml must not set them by default.
NVIDIA_TRAINING = "eks-ml-torch-h100-prefer-nnl3"  # the runtime of the h100 group's example job
OBSOLETE_FABRIC_ENV = {
    "FI_EFA_USE_DEVICE_RDMA",
    "FI_EFA_FORK_SAFE",
    "NCCL_PROTO",
    "NCCL_ALGO",
    "NCCL_BUFFSIZE",
    "RDMAV_FORK_SAFE",
}


@pytest.fixture(scope="module")
def mixed() -> tuple[TrainingCluster, dict[str, Any]]:
    _, stack = library_stack()
    network = MlVpc(stack, "Network", MlVpcProps(availability_zones=("us-west-2a", "us-west-2b")))
    cluster = TrainingCluster(
        stack,
        "Training",
        TrainingClusterProps(
            base=BaseClusterProps(vpc=network.vpc, cluster_name="train"),
            node_groups=[
                TrainingNodeGroupProps(name="h100", instance_type="p5.48xlarge", desired_size=2),
                TrainingNodeGroupProps(name="trn", instance_type="trn1.32xlarge", desired_size=0, max_size=4),
            ],
        ),
    )
    return cluster, assertions.Template.from_stack(stack).to_json()


def runtimes(cluster: TrainingCluster) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in cluster.runtimes_chart.to_json() if o["kind"] == "ClusterTrainingRuntime"}


def pod_spec(runtime: dict[str, Any]) -> dict[str, Any]:
    (node,) = runtime["spec"]["template"]["spec"]["replicatedJobs"]
    assert node["name"] == "node" and node["template"]["metadata"]["labels"] == {
        "trainer.kubeflow.org/trainjob-ancestor-step": "trainer"
    }
    return node["template"]["spec"]["template"]["spec"]


def jobs(cluster: TrainingCluster) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in cluster.jobs_chart.to_json()}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("p5.48xlarge", {"cpu": 172, "memory": "1782579Mi", "nvidia.com/gpu": 8, "vpc.amazonaws.com/efa": 32}),
        ("trn1.32xlarge", {"cpu": 115, "memory": "445644Mi", "aws.amazon.com/neuron": 16, "vpc.amazonaws.com/efa": 8}),
        ("p6-b200.48xlarge", {"cpu": 172, "memory": "1782579Mi", "nvidia.com/gpu": 8, "vpc.amazonaws.com/efa": 8}),
    ],
)
def test_a_pod_takes_the_whole_node(name: str, expected: dict[str, Any]) -> None:
    assert node_resources(catalog.lookup(name)) == expected


@pytest.mark.parametrize("name", training_instance_types())
def test_job_requests_cover_every_accelerator_and_efa_interface(name: str) -> None:
    spec = catalog.lookup(name)
    requests = node_resources(spec)
    assert requests[spec.accelerator_resource] == spec.accelerator_count
    assert requests["vpc.amazonaws.com/efa"] == spec.efa_interfaces
    assert 0 < int(requests["cpu"]) < spec.vcpus
    assert 0 < int(str(requests["memory"]).removesuffix("Mi")) < spec.memory_mib


def test_a_runtime_per_group_and_topology_request_with_pinned_images(mixed: Any) -> None:
    cluster, _ = mixed
    found = runtimes(cluster)
    # p5 and trn1 nodes carry EC2 network labels: each group has a runtime per topology request (no
    # fine-tuning runtime: neither type is a fine-tuning type), pinned to the group's nodes.
    assert set(found) == {
        f"eks-ml-torch-{group}-{request}"
        for group in ("h100", "trn")
        for request in ("prefer-nnl3", "require-nnl1")
    }
    for name, runtime in found.items():
        group = name.removeprefix("eks-ml-torch-").rsplit("-", 2)[0]
        assert pod_spec(runtime)["nodeSelector"] == {"eks-ml.io/node-group": group}, name
    nvidia = pod_spec(found[NVIDIA_TRAINING])["containers"][0]
    assert nvidia["image"] == NVIDIA_IMAGE
    neuron = pod_spec(found["eks-ml-torch-trn-prefer-nnl3"])["containers"][0]
    assert (
        neuron["image"]
        == "763104351884.dkr.ecr.us-west-2.amazonaws.com/pytorch-training-neuronx:2.8.0-neuronx-py311-sdk2.26.1-ubuntu22.04"
    )
    assert ":latest" not in nvidia["image"] + neuron["image"]


def test_runtime_mounts_shared_memory_scripts_and_the_file_system(mixed: Any) -> None:
    cluster, _ = mixed
    spec = pod_spec(runtimes(cluster)[NVIDIA_TRAINING])
    container = spec["containers"][0]
    assert {m["mountPath"] for m in container["volumeMounts"]} == {"/dev/shm", "/opt/eks-ml", "/fsx"}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["dshm"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "64Gi"}
    assert volumes["fsx"]["persistentVolumeClaim"] == {"claimName": "fsx"}
    assert volumes["workloads"]["configMap"] == {"name": "eks-ml-workloads"}
    env = {e["name"]: e.get("value") or e["valueFrom"]["fieldRef"]["fieldPath"] for e in container["env"]}
    assert env == {
        "FI_PROVIDER": "efa",
        "EKS_ML_CHECKPOINT_DIR": "/fsx/checkpoints",
        # each job's own checkpoint directory when it names none (the JobSet, hence the TrainJob, name)
        "EKS_ML_JOBSET_NAME": "metadata.labels['jobset.sigs.k8s.io/jobset-name']",
    }
    assert not OBSOLETE_FABRIC_ENV & set(env)


def restart_problems(runtime: dict[str, Any], max_restarts: int) -> list[str]:
    """What keeps a runtime from surviving a failed node: the gang must restart as a whole, a bounded number of times."""
    problems = []
    jobset = runtime["spec"]["template"]["spec"]
    policy = jobset.get("failurePolicy", {})
    if policy.get("maxRestarts") != max_restarts:
        problems.append(f"failurePolicy.maxRestarts is {policy.get('maxRestarts')!r}, not {max_restarts}")
    if policy.get("restartStrategy") != "BlockingRecreate":
        problems.append(f"failurePolicy.restartStrategy is {policy.get('restartStrategy')!r}")
    # Only disruptions restart for free, and only through the node Jobs' pod failure policy; any other rule
    # could fail the gang without a restart, or restart a crashing script forever.
    free = [{"name": rule.get("name"), "action": rule.get("action")} for rule in policy.get("rules", [])]
    if free != [{"name": "RestartOnDisruptionWithoutCounting", "action": "RestartJobSetAndIgnoreMaxRestarts"}]:
        problems.append(f"failurePolicy.rules are {policy.get('rules')!r}")
    elif policy["rules"][0].get("onJobFailureReasons") != ["PodFailurePolicy"]:
        problems.append("the free restart is not limited to Jobs failed by their pod failure policy")
    for job in jobset["replicatedJobs"]:
        pod_failure_rules = job["template"]["spec"].get("podFailurePolicy", {}).get("rules", [])
        if pod_failure_rules != [{"action": "FailJob", "onPodConditions": [{"type": "DisruptionTarget"}]}]:
            problems.append(f"{job['name']}: podFailurePolicy does not mark exactly disruptions: {pod_failure_rules!r}")
        if job["template"]["spec"].get("backoffLimit") != 0:
            problems.append(f"{job['name']}: backoffLimit is not 0 (one pod would retry inside a broken gang)")
        if job["template"]["spec"]["template"]["spec"].get("restartPolicy") != "Never":
            problems.append(f"{job['name']}: restartPolicy is not Never")
    return problems


def test_every_runtime_restarts_the_whole_gang_a_bounded_number_of_times(mixed: Any) -> None:
    cluster, _ = mixed
    found = runtimes(cluster)
    assert len(found) == 4  # per vendor: one runtime per topology request
    for name, runtime in found.items():
        assert restart_problems(runtime, DEFAULT_MAX_RESTARTS) == [], name
    assert DEFAULT_MAX_RESTARTS == 3


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (("failurePolicy", "maxRestarts"), "failurePolicy.maxRestarts is None, not 3"),
        (("failurePolicy", "restartStrategy"), "failurePolicy.restartStrategy is None"),
        (("failurePolicy",), "failurePolicy.maxRestarts is None, not 3"),
    ],
)
def test_a_runtime_without_its_restart_policy_is_caught(mixed: Any, path: tuple[str, ...], expected: str) -> None:
    cluster, _ = mixed
    runtime = copy.deepcopy(runtimes(cluster)[NVIDIA_TRAINING])
    parent = runtime["spec"]["template"]["spec"]
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    assert expected in restart_problems(runtime, DEFAULT_MAX_RESTARTS)


def test_disruptions_restart_for_free_only_through_the_pod_failure_policy(mixed: Any) -> None:
    cluster, _ = mixed
    original = runtimes(cluster)[NVIDIA_TRAINING]
    no_rule = copy.deepcopy(original)
    del no_rule["spec"]["template"]["spec"]["failurePolicy"]["rules"]
    assert any("failurePolicy.rules" in p for p in restart_problems(no_rule, DEFAULT_MAX_RESTARTS))
    every_failure_free = copy.deepcopy(original)
    del every_failure_free["spec"]["template"]["spec"]["failurePolicy"]["rules"][0]["onJobFailureReasons"]
    assert any("not limited" in p for p in restart_problems(every_failure_free, DEFAULT_MAX_RESTARTS))
    no_pod_policy = copy.deepcopy(original)
    del no_pod_policy["spec"]["template"]["spec"]["replicatedJobs"][0]["template"]["spec"]["podFailurePolicy"]
    assert any("podFailurePolicy" in p for p in restart_problems(no_pod_policy, DEFAULT_MAX_RESTARTS))


def test_a_node_job_that_retries_one_pod_is_caught(mixed: Any) -> None:
    cluster, _ = mixed
    runtime = copy.deepcopy(runtimes(cluster)[NVIDIA_TRAINING])
    (node,) = runtime["spec"]["template"]["spec"]["replicatedJobs"]
    del node["template"]["spec"]["backoffLimit"]
    node["template"]["spec"]["template"]["spec"]["restartPolicy"] = "OnFailure"
    assert restart_problems(runtime, DEFAULT_MAX_RESTARTS) == [
        "node: backoffLimit is not 0 (one pod would retry inside a broken gang)",
        "node: restartPolicy is not Never",
    ]


def test_max_restarts_reaches_every_runtime() -> None:
    _, stack = library_stack()
    network = MlVpc(stack, "Network", MlVpcProps(availability_zones=("us-west-2a", "us-west-2b")))
    cluster = TrainingCluster(
        stack,
        "Training",
        TrainingClusterProps(
            base=BaseClusterProps(vpc=network.vpc, cluster_name="train"),
            node_groups=[TrainingNodeGroupProps(name="trn", instance_type="trn1.32xlarge", desired_size=1)],
            file_system=None,
            max_restarts=7,
        ),
    )
    found = runtimes(cluster).values()
    assert len(found) == 2  # trn1: the training and the fabric-test runtime
    for runtime in found:
        assert restart_problems(runtime, 7) == []


@requires_chart_cache
@pytest.mark.parametrize(
    ("field", "value"),
    [("restartStrategy", "Restart"), ("maxRestarts", "3"), ("rules", [{"action": "RestartJobSet"}])],
)
def test_the_validator_rejects_a_failure_policy_the_jobset_api_does_not_accept(
    mixed: Any, field: str, value: Any
) -> None:
    # The policy is checked against the pinned Trainer CRD (JobSet v0.12.0's FailurePolicy): a wrong value fails.
    cluster, _ = mixed
    runtime = copy.deepcopy(runtimes(cluster)[NVIDIA_TRAINING])
    runtime["spec"]["template"]["spec"]["failurePolicy"][field] = value
    assert validate_objects([runtime]) != []


def test_example_jobs_resume_from_the_shared_checkpoint_directory(mixed: Any) -> None:
    cluster, _ = mixed
    for runtime in runtimes(cluster).values():  # pre-training and fine-tuning runtimes alike
        runtime_env = {(e["name"], e.get("value")) for e in pod_spec(runtime)["containers"][0]["env"]}
        assert ("EKS_ML_CHECKPOINT_DIR", "/fsx/checkpoints") in runtime_env
    for name, job in jobs(cluster).items():
        if not name.endswith("-example"):
            continue
        trainer = job["spec"]["trainer"]
        assert trainer["command"][:2] == ["torchrun", "/opt/eks-ml/train_example.py"]
        assert "--fail-at-step" not in trainer["command"]  # the fault drill is for tests, never a real job
        # Each job resumes from its own directory: <EKS_ML_CHECKPOINT_DIR>/<EKS_ML_JOB_NAME>/.
        assert {e["name"]: e["value"] for e in trainer["env"]} == {"EKS_ML_JOB_NAME": name}


def test_example_and_fabric_jobs_per_group_sized_from_the_catalog(mixed: Any) -> None:
    cluster, _ = mixed
    found = jobs(cluster)
    assert set(found) == {"h100-example", "h100-fabric-test", "trn-example", "trn-fabric-test"}
    for group in cluster.node_groups.values():
        for kind in ("example", "fabric-test"):
            job = found[f"{group.name}-{kind}"]
            assert job["metadata"]["labels"] == {"kueue.x-k8s.io/queue-name": "training"}
            assert job["metadata"]["namespace"] == "training"
            trainer = job["spec"]["trainer"]
            assert trainer["numNodes"] == group.max_size  # every node of the group
            assert trainer["numProcPerNode"] == group.spec.workers_per_node
            resources = trainer["resourcesPerNode"]
            assert resources["requests"] == resources["limits"]
            assert resources["limits"][group.spec.accelerator_resource] == str(group.spec.accelerator_count)
            assert resources["limits"]["vpc.amazonaws.com/efa"] == str(group.spec.efa_interfaces)
            assert trainer["command"][0] == "torchrun"
            assert not OBSOLETE_FABRIC_ENV & {e["name"] for e in trainer.get("env", [])}
    assert found["trn-fabric-test"]["spec"]["trainer"]["command"][-2:] == ["--backend", "xla"]
    assert found["h100-fabric-test"]["spec"]["runtimeRef"]["name"] == "eks-ml-torch-h100-require-nnl1"
    efa_gbps = {e["name"]: e["value"] for e in found["h100-fabric-test"]["spec"]["trainer"]["env"]}["EKS_ML_EFA_GBPS"]
    assert efa_gbps == "3200"


def test_trn2_jobs_run_one_rank_per_logical_neuron_core() -> None:
    # trn2.48xlarge at its default LNC=2 exposes 64 NeuronCores; 128 ranks would oversubscribe them.
    _, stack = library_stack()
    network = MlVpc(stack, "Network", MlVpcProps(availability_zones=("us-west-2a", "us-west-2b")))
    cluster = TrainingCluster(
        stack,
        "Training",
        TrainingClusterProps(
            base=BaseClusterProps(vpc=network.vpc, cluster_name="train"),
            node_groups=[TrainingNodeGroupProps(name="trn2", instance_type="trn2.48xlarge", desired_size=2)],
            file_system=None,
        ),
    )
    for job in jobs(cluster).values():
        trainer = job["spec"]["trainer"]
        assert trainer["numProcPerNode"] == 64
        assert trainer["resourcesPerNode"]["requests"]["aws.amazon.com/neuron"] == "16"  # whole devices


def test_jobs_are_rendered_not_applied(mixed: Any) -> None:
    cluster, template = mixed
    manifests = json.dumps(
        [r["Properties"]["Manifest"] for r in of_type(template, "Custom::AWSCDK-EKS-KubernetesResource").values()]
    )
    assert "ClusterTrainingRuntime" in manifests and "TrainJob" not in manifests.replace("TrainJobs", "")
    docs = list(yaml.safe_load_all(cluster.jobs_yaml()))
    assert [d["kind"] for d in docs] == ["TrainJob"] * 4


def test_runtimes_follow_trainer_and_the_namespace(mixed: Any) -> None:
    _, template = mixed
    workloads = manifest_id(template, "ClusterTrainingRuntime")
    trainer = resource_id(template, "Custom::AWSCDK-EKS-HelmChart", Release="kubeflow-trainer")
    kueue = resource_id(template, "Custom::AWSCDK-EKS-HelmChart", Release="kueue")
    # Kueue's and the trainer's webhooks admit these objects: both releases are installed first.
    assert {trainer, kueue} <= set(template["Resources"][workloads]["DependsOn"])
    # The queues (with the jobs' namespace) come first in the same manifest.
    assert manifest_id(template, "ClusterQueue") == workloads
    kinds = manifest_kinds(template, workloads)
    assert kinds.index("Namespace") < kinds.index("ClusterQueue") < kinds.index("ClusterTrainingRuntime")


@requires_chart_cache
def test_runtime_and_job_objects_pass_the_validator(mixed: Any) -> None:
    cluster, _ = mixed
    assert validate_objects(cluster.runtimes_chart.to_json() + cluster.jobs_chart.to_json()) == []


def _script(name: str) -> ModuleType:
    path = ROOT / "eks_ml" / "training" / "workloads" / name
    spec = importlib.util.spec_from_file_location(name.removesuffix(".py"), path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # torch is imported only inside main(): this works without it
    return module


def test_bus_bandwidth_is_computed_as_nccl_tests_does() -> None:
    bench = _script("allreduce_bench.py")
    size, seconds, ranks = 2**30, 0.01, 16
    assert bench.algorithm_bandwidth(size, seconds) == pytest.approx(107.374, rel=1e-4)
    assert bench.bus_bandwidth(size, seconds, ranks) == pytest.approx(107.374 * 2 * 15 / 16, rel=1e-4)
    assert bench.bus_bandwidth(size, seconds, 1) == 0  # a single rank moves nothing over the fabric
    assert bench.line_rate_gbytes(3200) == 400
    assert bench.verdict(250.0, 400.0, 0.5) and not bench.verdict(12.5, 400.0, 0.5)


def test_example_checkpoints_land_on_the_shared_file_system() -> None:
    from eks_ml.training.workloads import train_example as example  # torch is imported only inside main()

    assert (
        str(example.checkpoint_path("/fsx/checkpoints", "h100-example", 50))
        == "/fsx/checkpoints/h100-example/step-000050.pt"
    )


def test_scripts_ship_in_the_config_map(mixed: Any) -> None:
    cluster, _ = mixed
    (config_map,) = [o for o in cluster.runtimes_chart.to_json() if o["kind"] == "ConfigMap"]
    assert set(config_map["data"]) == {"allreduce_bench.py", "checkpoint_contract.py", "train_example.py"}
    assert config_map["metadata"]["namespace"] == "training"
