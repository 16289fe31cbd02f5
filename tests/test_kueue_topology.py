"""Kueue Topology-Aware Scheduling: a Topology per EC2 network layer count, topologyName on flavors of labelled
types only, podset topology annotations on the runtimes' pod templates, all accepted by the pinned CRDs."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from eks_ml import BaseClusterProps, MlVpc, MlVpcProps, ValidationError
from eks_ml.catalog.topology import network_layers
from eks_ml.training import TrainingCluster, TrainingClusterProps, TrainingNodeGroupProps

from .support.manifests import requires_chart_cache, validate_objects
from .support.synth import library_stack

LAYER = "topology.k8s.aws/network-node-layer-"
REQUIRED = "kueue.x-k8s.io/podset-required-topology"
PREFERRED = "kueue.x-k8s.io/podset-preferred-topology"
GROUPS = (
    TrainingNodeGroupProps(name="h100", instance_type="p5.48xlarge", desired_size=2),  # 3 layers
    TrainingNodeGroupProps(name="b200", instance_type="p6-b200.48xlarge", desired_size=0, max_size=2),  # 4 layers
    TrainingNodeGroupProps(name="small", instance_type="p5.4xlarge", desired_size=0, max_size=2),  # no labels
)


def build(**overrides: Any) -> TrainingCluster:
    _, stack = library_stack()
    network = MlVpc(stack, "Network", MlVpcProps(availability_zones=("us-west-2a", "us-west-2b")))
    props = TrainingClusterProps(
        base=BaseClusterProps(vpc=network.vpc, cluster_name="train"), node_groups=GROUPS, file_system=None
    )
    for name, value in overrides.items():
        object.__setattr__(props, name, value)
    return TrainingCluster(stack, "Training", props)


@pytest.fixture(scope="module")
def cluster() -> TrainingCluster:
    return build()


def by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def pod_metadata(runtime: dict[str, Any]) -> dict[str, Any]:
    (node,) = runtime["spec"]["template"]["spec"]["replicatedJobs"]
    metadata: dict[str, Any] = node["template"]["spec"]["template"].get("metadata", {})
    return metadata


def test_the_catalog_knows_which_types_get_how_many_layers() -> None:
    assert (network_layers("p5.48xlarge"), network_layers("p6-b200.48xlarge"), network_layers("p5.4xlarge")) == (
        3,
        4,
        0,
    )


def test_a_topology_per_layer_count_top_down_then_the_host(cluster: TrainingCluster) -> None:
    topologies = by_kind(cluster.queues_chart.to_json(), "Topology")
    assert {name: [level["nodeLabel"] for level in t["spec"]["levels"]] for name, t in topologies.items()} == {
        "aws-network-3-layers": [f"{LAYER}1", f"{LAYER}2", f"{LAYER}3", "kubernetes.io/hostname"],
        "aws-network-4-layers": [f"{LAYER}1", f"{LAYER}2", f"{LAYER}3", f"{LAYER}4", "kubernetes.io/hostname"],
    }


def test_only_flavors_of_labelled_types_name_a_topology(cluster: TrainingCluster) -> None:
    flavors = by_kind(cluster.queues_chart.to_json(), "ResourceFlavor")
    assert {name: f["spec"].get("topologyName") for name, f in flavors.items()} == {
        "h100": "aws-network-3-layers",
        "b200": "aws-network-4-layers",
        "small": None,
    }


def test_jobs_ask_for_the_level_their_kind_needs(cluster: TrainingCluster) -> None:
    runtimes = by_kind(cluster.runtimes_chart.to_json(), "ClusterTrainingRuntime")
    jobs = by_kind(cluster.jobs_chart.to_json(), "TrainJob")
    annotations = {
        name: pod_metadata(runtimes[job["spec"]["runtimeRef"]["name"]]).get("annotations") for name, job in jobs.items()
    }
    assert annotations == {
        # Training prefers the bottom layer (Kueue climbs when the gang does not fit); the fabric test requires
        # one top-layer domain.
        "h100-example": {PREFERRED: f"{LAYER}3"},
        "h100-fabric-test": {REQUIRED: f"{LAYER}1"},
        "b200-example": {PREFERRED: f"{LAYER}4"},
        "b200-fabric-test": {REQUIRED: f"{LAYER}1"},
        # A request on a flavor without a Topology would make the job inadmissible.
        "small-example": None,
        "small-fabric-test": None,
        "small-fine-tune": None,  # single node: no topology request
    }


def test_topology_aware_false_leaves_no_topology_anywhere() -> None:
    plain = build(topology_aware=False)
    queues = plain.queues_chart.to_json()
    assert by_kind(queues, "Topology") == {}
    assert all("topologyName" not in f["spec"] for f in by_kind(queues, "ResourceFlavor").values())
    assert all(not pod_metadata(r) for r in by_kind(plain.runtimes_chart.to_json(), "ClusterTrainingRuntime").values())


def test_the_plan_says_how_each_group_s_gangs_are_kept_close(cluster: TrainingCluster) -> None:
    notes = [note for note in cluster.plan.notes if note.startswith("Kueue topology:")]
    assert notes == [
        "Kueue topology: h100 (p5.48xlarge, Topology aws-network-3-layers): the example prefers one "
        "topology.k8s.aws/network-node-layer-3 domain, the fabric test requires one "
        "topology.k8s.aws/network-node-layer-1 domain",
        "Kueue topology: b200 (p6-b200.48xlarge, Topology aws-network-4-layers): the example prefers one "
        "topology.k8s.aws/network-node-layer-4 domain, the fabric test requires one "
        "topology.k8s.aws/network-node-layer-1 domain",
        "Kueue topology: small jobs are placed without a topology request (EKS does not label p5.4xlarge nodes)",
    ]
    off = [note for note in build(topology_aware=False).plan.notes if note.startswith("Kueue topology:")]
    assert all(note.endswith("(topology_aware is off)") for note in off) and len(off) == 3


def test_a_topology_aware_that_is_not_a_bool_is_refused() -> None:
    with pytest.raises(ValidationError, match="topology_aware"):
        build(topology_aware="yes")


@requires_chart_cache
def test_the_pinned_crds_accept_every_generated_object(cluster: TrainingCluster) -> None:
    objects = cluster.queues_chart.to_json() + cluster.runtimes_chart.to_json() + cluster.jobs_chart.to_json()
    assert validate_objects(objects) == []


@requires_chart_cache
@pytest.mark.parametrize(
    ("kind", "name", "break_it"),
    [
        # hostname anywhere but the lowest level (a Kueue CRD CEL rule)
        ("Topology", "aws-network-3-layers", lambda s: s["levels"].reverse()),
        # a repeated level (CEL: must be unique)
        ("Topology", "aws-network-3-layers", lambda s: s["levels"].append(dict(s["levels"][0]))),
        # a label key that is not one (schema pattern)
        ("Topology", "aws-network-4-layers", lambda s: s["levels"][0].update(nodeLabel="not a label")),
        # a TAS flavor must select nodes (CEL: nodeLabels.size() >= 1)
        ("ResourceFlavor", "h100", lambda s: s.update(nodeLabels={})),
    ],
    ids=["hostname-not-lowest", "repeated-level", "bad-label", "tas-flavor-without-node-labels"],
)
def test_the_pinned_crds_refuse_a_broken_topology_object(
    cluster: TrainingCluster, kind: str, name: str, break_it: Any
) -> None:
    broken = copy.deepcopy(by_kind(cluster.queues_chart.to_json(), kind)[name])
    break_it(broken["spec"])
    assert validate_objects([broken]) != []
