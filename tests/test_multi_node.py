"""Multi-node model serving (eks_ml.inference.multi_node): the fit check's decisions, bad input, the cluster
model's proof that every group pod lands on a node whose EFA interfaces a device plugin serves, and the objects
the examples/inference_patterns app applies (validated against the pinned LWS CRD by tests/test_gated_apps)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import cdk8s
import pytest

from eks_ml import BaseClusterProps, MlVpc, MlVpcProps, ValidationError, catalog, helm
from eks_ml.errors import Problems
from eks_ml.inference import InferenceCluster, InferenceClusterProps, MultiNodeServiceProps, NodePoolProps, PoolKind
from eks_ml.inference import cluster as cluster_module
from eks_ml.inference.model_service import ClaimWeights, HubWeights
from eks_ml.inference.multi_node import MAX_STAGES, multi_node_types, per_node_gib
from eks_ml.k8s.multi_node import MultiNodeServiceChart
from eks_ml.placement import workloads_from_objects

from .support.manifests import applied_objects, requires_chart_cache, validate_objects
from .support.releases import releases
from .support.synth import Synthesis, library_stack

HUB = HubWeights(model_id="meta-llama/Llama-3.1-405B-Instruct")


def service(**overrides: Any) -> MultiNodeServiceProps:
    props: dict[str, Any] = {
        "name": "big",
        "instance_type": "g6e.48xlarge",
        "weights": HUB,
        "parameters_billions": 405,
        **overrides,
    }
    return MultiNodeServiceProps(**props)


def problems_of(props: MultiNodeServiceProps) -> list[str]:
    problems = Problems()
    props.check("multi_node_services[0]", problems)
    return [f"{p.field}: {p.allowed}" for p in problems.found]


# --- the fit check decides the pipeline ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instance_type", "parameters", "dtype", "stages"),
    [
        # 405B bf16 is 754.4 GiB: 241.4 GiB per g6e.48xlarge (8 x 44.7 GiB x 0.9 x 0.75), 432 per p5.48xlarge.
        ("g6e.48xlarge", 405, 2.0, 4),
        ("p5.48xlarge", 405, 2.0, 2),
        ("g6e.48xlarge", 405, 1.0, 2),  # fp8 halves the weights
        ("g5.48xlarge", 180, 2.0, 3),
    ],
)
def test_stages_are_the_nodes_the_weights_need(
    instance_type: str, parameters: float, dtype: float, stages: int
) -> None:
    props = service(instance_type=instance_type, parameters_billions=parameters, bytes_per_parameter=dtype)
    spec = catalog.lookup(instance_type)
    assert props.stages(spec) == stages
    assert props.weights_gib() > per_node_gib(spec) * (stages - 1)  # one node fewer would not hold it
    assert problems_of(props) == []


def test_a_model_that_fits_one_node_is_sent_to_model_services() -> None:
    # 70B bf16 (130 GiB) fits one p5.48xlarge (432 GiB with headroom): no cross-node hop is worth it.
    problems = problems_of(service(instance_type="p5.48xlarge", parameters_billions=70))
    assert len(problems) == 1
    assert problems[0].startswith("multi_node_services[0].instance_type: a type one node of which cannot hold")
    with pytest.raises(ValidationError, match=r"serve it with ModelServiceProps in model_services"):
        cluster_with(service(instance_type="p5.48xlarge", parameters_billions=70))


def test_more_stages_than_the_limit_are_refused() -> None:
    props = service(instance_type="g5.48xlarge", bytes_per_parameter=4.0)  # 1509 GiB over 123.6 GiB nodes: 13
    assert props.stages(catalog.lookup("g5.48xlarge")) > MAX_STAGES
    assert any(f"at most {MAX_STAGES} nodes per replica" in p for p in problems_of(props))


def test_multi_node_types_are_efa_nvidia_types_with_four_or_more_gpus() -> None:
    names = {s.name for s in multi_node_types()}
    assert {"g5.48xlarge", "g6e.12xlarge", "g6e.24xlarge", "g6e.48xlarge", "p4d.24xlarge", "p5.48xlarge"} <= names
    assert not names & {"g6e.8xlarge", "g6e.xlarge", "p5.4xlarge", "inf2.48xlarge", "trn1.32xlarge"}
    assert all(catalog.lookup(n).efa_interfaces > 0 for n in names)


# --- bad input ------------------------------------------------------------------------------------------------

BAD = [
    pytest.param({"instance_type": "g6e.8xlarge"}, r"an EFA-capable NVIDIA type with 4\+ GPUs", id="one-gpu-type"),
    pytest.param({"instance_type": "inf2.48xlarge"}, r"an EFA-capable NVIDIA type", id="neuron-type"),
    pytest.param({"instance_type": "g9.huge"}, r"instance_type", id="unknown-type"),
    pytest.param({"bytes_per_parameter": 3.0}, r"0.5, 1, 2 or 4 bytes per parameter", id="dtype"),
    pytest.param({"groups": 0}, r"groups", id="no-groups"),
    pytest.param({"capacity_types": ["reserved"]}, r"one or both of spot, on-demand", id="capacity"),
    pytest.param({"extra_args": ["--pipeline-parallel-size=2"]}, r"remove --pipeline-parallel-size", id="pp-flag"),
    pytest.param({"extra_args": ["--tensor_parallel_size=4"]}, r"remove --tensor-parallel-size", id="tp-flag"),
    pytest.param({"weights": HubWeights(model_id="llama")}, r"an org/name Hub id", id="hub-id"),
    pytest.param({"weights": "s3://bucket/model"}, r"HubWeights\(model_id=...\) or ClaimWeights", id="weights-type"),
    pytest.param({"name": "Big_Model"}, r"name", id="name"),
    pytest.param({"client_namespaces": ["Bad NS"]}, r"client_namespaces\[0\]", id="client-namespace"),
]


@pytest.mark.parametrize(("overrides", "message"), BAD)
def test_bad_multi_node_props(overrides: dict[str, Any], message: str) -> None:
    problems = Problems()
    service(**overrides).check("multi_node_services[0]", problems)
    with pytest.raises(ValidationError, match=message):
        problems.raise_if_any()


def test_a_good_service_has_no_problems() -> None:
    assert problems_of(service()) == []
    assert problems_of(service(weights=ClaimWeights(claim_name="llama-405b", path="405b"))) == []


# --- on a cluster -------------------------------------------------------------------------------------------------


def cluster_with(*services: MultiNodeServiceProps, **props: Any) -> InferenceCluster:
    _, stack = library_stack()
    network = MlVpc(stack, "Network", MlVpcProps(availability_zones=("us-west-2a", "us-west-2b")))
    return InferenceCluster(
        stack,
        "Inference",
        InferenceClusterProps(
            base=BaseClusterProps(vpc=network.vpc, cluster_name="serve", auto_mode=props.pop("auto_mode", False)),
            multi_node_services=services,
            **props,
        ),
    )


@pytest.mark.parametrize(
    ("services", "props", "message"),
    [
        pytest.param([service(), service()], {}, r"unique service names", id="duplicate"),
        pytest.param([service(name="gpu")], {}, r"a name no pool of the cluster has", id="clashes-with-the-gpu-pool"),
        pytest.param([service()], {"auto_mode": True}, r"self-managed Karpenter", id="auto-mode"),
        pytest.param([service()], {"multi_node_namespace": "Bad"}, r"multi_node_namespace", id="namespace"),
    ],
)
def test_bad_cluster_props(services: list[MultiNodeServiceProps], props: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        cluster_with(*services, **props)


@pytest.fixture(scope="module")
def p5_cluster() -> InferenceCluster:
    return cluster_with(service(instance_type="p5.48xlarge"))


def test_every_group_pod_lands_on_the_services_efa_pool(p5_cluster: InferenceCluster) -> None:
    placements = {p.workload.name: p.landings for p in p5_cluster.model.placements()}
    pool = (("Karpenter NodePool big", ("p5.48xlarge",)),)
    assert placements["LeaderWorkerSet multi-node/big (leader pods)"] == pool
    assert placements["LeaderWorkerSet multi-node/big (worker pods)"] == pool
    requests = next(w.requests for w in p5_cluster.model.workloads if w.name.endswith("(worker pods)"))
    assert requests["vpc.amazonaws.com/efa"] == 32 and requests["nvidia.com/gpu"] == 8
    assert "efa" in p5_cluster.device_plugins


def test_the_efa_pool_runs_al2023_with_the_nvidia_plugin_on_its_nodes_only(p5_cluster: InferenceCluster) -> None:
    # Multi-node pools stay on AL2023 (eks_ml.inference.node_os); the default gpu pool runs Bottlerocket.
    objects = {(o["kind"], o["metadata"]["name"]): o for o in p5_cluster.pools_chart.to_json()}
    assert objects[("EC2NodeClass", "big")]["spec"]["amiSelectorTerms"] == [{"alias": "al2023@v20260728"}]
    assert objects[("EC2NodeClass", "gpu")]["spec"]["amiSelectorTerms"] == [{"alias": "bottlerocket@v1.64.0"}]
    assert "nvidia" in p5_cluster.device_plugins
    (plugin,) = [
        p for p in p5_cluster.model.placements() if p.workload.name == "DaemonSet kube-system/nvidia-device-plugin"
    ]
    assert [where for where, _ in plugin.landings] == ["Karpenter NodePool big"]


def test_without_the_efa_device_plugin_the_group_lands_nowhere(monkeypatch: pytest.MonkeyPatch) -> None:
    # The whole-cluster lesson: EFA interfaces no plugin advertises keep the pods Pending forever.
    monkeypatch.setattr(cluster_module, "efa_instance_types", lambda services: [])
    with pytest.raises(ValidationError, match=r"no device plugin advertises vpc.amazonaws.com/efa on p5.48xlarge"):
        cluster_with(service(instance_type="p5.48xlarge"))


def test_a_group_of_one_pod_has_no_worker_pods() -> None:
    lws = {
        "kind": "LeaderWorkerSet",
        "metadata": {"name": "x", "namespace": "n"},
        "spec": {"leaderWorkerTemplate": {"size": 1, "workerTemplate": {"spec": {"containers": []}}}},
    }
    assert [w.name for w in workloads_from_objects([lws], "test")] == ["LeaderWorkerSet n/x (leader pods)"]


def test_p5_pods_use_gpudirect_rdma_and_the_pool_has_every_efa_card(p5_cluster: InferenceCluster) -> None:
    assert p5_cluster.multi_node is not None
    chart = p5_cluster.multi_node.service_charts["big"]
    obj = next(o for o in chart.to_json() if o["kind"] == "LeaderWorkerSet")
    worker = obj["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in worker["env"]}
    assert env["FI_PROVIDER"] == "efa" and env["FI_EFA_USE_DEVICE_RDMA"] == "1"
    node_class = next(
        o for o in p5_cluster.pools_chart.to_json() if o["kind"] == "EC2NodeClass" and o["metadata"]["name"] == "big"
    )
    interfaces = node_class["spec"]["networkInterfaces"]
    assert sum(i["interfaceType"] == "efa-only" for i in interfaces) == catalog.lookup("p5.48xlarge").efa_interfaces
    assert interfaces[0] == {"networkCardIndex": 0, "deviceIndex": 0, "interfaceType": "interface"}
    assert {"tags": {"eks-ml.io/inference-efa-security-group": "serve"}} in node_class["spec"][
        "securityGroupSelectorTerms"
    ]


# --- the example app ----------------------------------------------------------------------------------------------


def patterns_objects(synth: Synthesis) -> list[dict[str, Any]]:
    return [obj for template in synth.templates.values() for obj in applied_objects(template)]


def test_the_405b_example_is_a_group_of_four_g6e_nodes(inference_patterns_synth: Synthesis) -> None:
    objects = patterns_objects(inference_patterns_synth)
    lws = next(o for o in objects if o["kind"] == "LeaderWorkerSet")
    template = lws["spec"]["leaderWorkerTemplate"]
    assert template["size"] == 4 and template["restartPolicy"] == "RecreateGroupOnPodRestart"
    leader = template["leaderTemplate"]["spec"]["containers"][0]
    worker = template["workerTemplate"]["spec"]["containers"][0]
    assert "leader --ray_cluster_size=$(LWS_GROUP_SIZE)" in leader["command"][2]
    parallel = "--tensor-parallel-size 8 --pipeline-parallel-size 4 --distributed-executor-backend ray"
    assert parallel in leader["command"][2]
    assert "worker --ray_address=$(LWS_LEADER_ADDRESS)" in worker["command"][2]
    for container in (leader, worker):
        assert container["resources"]["limits"] == {"nvidia.com/gpu": "8", "vpc.amazonaws.com/efa": "4"}
    # Each group follows its own pods into one zone; groups may differ.
    affinity = template["workerTemplate"]["spec"]["affinity"]["podAffinity"]
    assert affinity["requiredDuringSchedulingIgnoredDuringExecution"] == [
        {
            "labelSelector": {"matchLabels": {"leaderworkerset.sigs.k8s.io/name": "llama-405b"}},
            "matchLabelKeys": ["leaderworkerset.sigs.k8s.io/group-key"],
            "topologyKey": "topology.kubernetes.io/zone",
        }
    ]
    service_obj = next(o for o in objects if o["kind"] == "Service" and o["metadata"]["name"] == "llama-405b")
    assert service_obj["spec"]["selector"] == {"app.kubernetes.io/name": "llama-405b", "eks-ml.io/role": "leader"}


def test_the_example_installs_lws_and_the_efa_plugin_for_its_type(inference_patterns_synth: Synthesis) -> None:
    installed = {r.pin.chart: r for r in releases(inference_patterns_synth.templates) if r.pin is not None}
    assert installed["lws"].pin is helm.LWS and installed["lws"].namespace == "lws-system"
    efa = installed["aws-efa-k8s-device-plugin"].values
    assert efa["supportedInstanceLabels"]["values"] == ["g6e.48xlarge"]
    assert efa["image"]["repository"].endswith(".dkr.ecr.us-west-2.amazonaws.com/eks/aws-efa-k8s-device-plugin")


def test_the_default_app_installs_no_lws(default_synth: Synthesis) -> None:
    charts = {r.pin.chart for r in releases(default_synth.templates) if r.pin is not None}
    assert "lws" not in charts
    # Its Inference stack serves single-node models: no EFA plugin there either (the Training stack has one).
    inference = {r.pin.chart for r in releases({"Inference": default_synth.templates["Inference"]}) if r.pin}
    assert "aws-efa-k8s-device-plugin" not in inference and "karpenter" in inference


@requires_chart_cache
def test_a_broken_leader_worker_set_fails_the_pinned_crd(inference_patterns_synth: Synthesis) -> None:
    lws = next(o for o in patterns_objects(inference_patterns_synth) if o["kind"] == "LeaderWorkerSet")
    assert validate_objects([lws]) == []
    template = lws["spec"]["leaderWorkerTemplate"]
    broken = {**lws, "spec": {**lws["spec"], "leaderWorkerTemplate": {**template, "restartPolicy": "Always"}}}
    assert validate_objects([broken]) != []
    no_workers = {**lws, "spec": {**lws["spec"], "leaderWorkerTemplate": replace_key(template, "workerTemplate")}}
    assert validate_objects([no_workers]) != []


def replace_key(mapping: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if k != key}


def test_props_replace_keeps_the_service_valid() -> None:
    assert problems_of(replace(service(), groups=2, spare_groups=1)) == []
    pool = replace(service(), groups=2, spare_groups=1).pool()
    assert isinstance(pool, NodePoolProps) and pool.kind is PoolKind.NVIDIA
    # three groups' worth of 4 nodes with 8 GPUs each
    assert pool.accelerator_limit == 3 * 4 * 8


def test_group_pods_reach_each_other_and_clients_reach_only_the_leader() -> None:
    values = service(client_namespaces=["apps"]).values(namespace="multi-node")
    chart = MultiNodeServiceChart(cdk8s.App(), "T", values)
    policies = {o["metadata"]["name"]: o["spec"] for o in chart.to_json() if o["kind"] == "NetworkPolicy"}
    group = policies["big-group"]
    peer = [{"podSelector": {"matchLabels": {"leaderworkerset.sigs.k8s.io/name": "big"}}}]
    assert group["ingress"] == [{"from": peer}] and group["egress"] == [{"to": peer}]
    server = policies["big"]
    assert server["podSelector"]["matchLabels"]["eks-ml.io/role"] == "leader"
    sources = [
        p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for p in server["ingress"][0]["from"]
    ]
    assert sources == ["monitoring", "apps"]
    assert server["ingress"][0]["ports"] == [{"port": 8000, "protocol": "TCP"}]
