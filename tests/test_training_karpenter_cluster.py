"""A TrainingCluster with Karpenter pools beside a node group (examples/karpenter_training): Karpenter is
installed, the pools' objects are applied and pass the pinned CRDs (schemas and CEL), burn-in and a Kueue flavor
cover each pool, the cluster model places jobs on both kinds of node, and bad configurations are refused."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from eks_ml import BaseClusterProps, MlVpc, MlVpcProps, ValidationError
from eks_ml.k8s.burn_in import BURN_IN_KEY, PASSED
from eks_ml.plan import plans_from_assembly
from eks_ml.training import TrainingCluster, TrainingClusterProps, TrainingKarpenterPoolProps, TrainingNodeGroupProps

from .support.manifests import applied_objects
from .support.synth import Synthesis, library_stack, of_type

STACK = "KarpenterTraining"


def objects(synth: Synthesis) -> list[dict[str, Any]]:
    return applied_objects(synth.templates[STACK])


def of_kind(synth: Synthesis, kind: str) -> dict[str, dict[str, Any]]:
    return {obj["metadata"]["name"]: obj for obj in objects(synth) if obj["kind"] == kind}


def test_karpenter_is_installed_and_each_pool_is_applied(karpenter_training_synth: Synthesis) -> None:
    template = karpenter_training_synth.templates[STACK]
    charts = {r["Properties"]["Chart"] for r in of_type(template, "Custom::AWSCDK-EKS-HelmChart").values()}
    assert "karpenter" in charts
    assert set(of_kind(karpenter_training_synth, "EC2NodeClass")) == {"p5-on-demand", "p5-block"}
    assert set(of_kind(karpenter_training_synth, "NodePool")) == {"p5-on-demand", "p5-block"}
    # The On-Demand pool gets a cluster placement group; the Capacity Block pool does not need one.
    groups = [
        logical_id for logical_id in of_type(template, "AWS::EC2::PlacementGroup") if "KarpenterNodes" in logical_id
    ]
    assert len(groups) == 1 and "P5OnDemand" in groups[0]
    classes = of_kind(karpenter_training_synth, "EC2NodeClass")
    assert "placementGroupSelector" in classes["p5-on-demand"]["spec"]
    assert classes["p5-block"]["spec"]["capacityReservationSelectorTerms"] == [{"id": "cr-0123456789abcdef0"}]


def test_the_efa_security_group_is_tagged_for_the_node_class_to_select(karpenter_training_synth: Synthesis) -> None:
    template = karpenter_training_synth.templates[STACK]
    selected = of_kind(karpenter_training_synth, "EC2NodeClass")["p5-on-demand"]["spec"]["securityGroupSelectorTerms"]
    (efa_tag,) = [term["tags"] for term in selected if "eks-ml.io/efa-security-group" in term["tags"]]
    tagged = [
        group
        for group in of_type(template, "AWS::EC2::SecurityGroup").values()
        if {"Key": "eks-ml.io/efa-security-group", "Value": efa_tag["eks-ml.io/efa-security-group"]}
        in group["Properties"].get("Tags", [])
    ]
    assert len(tagged) == 1


def test_burn_in_and_a_kueue_flavor_cover_every_pool(karpenter_training_synth: Synthesis) -> None:
    daemonsets = of_kind(karpenter_training_synth, "DaemonSet")
    for pool in ("p5-on-demand", "p5-block"):
        assert daemonsets[f"burn-in-{pool}"]["spec"]["template"]["spec"]["nodeSelector"] == {
            "eks-ml.io/node-group": pool
        }
        flavor = of_kind(karpenter_training_synth, "ResourceFlavor")[pool]
        assert flavor["spec"]["nodeLabels"] == {"eks-ml.io/node-group": pool, BURN_IN_KEY: PASSED}
    # Each NodePool labels its nodes as the burn-in DaemonSet and the flavor select.
    pool = of_kind(karpenter_training_synth, "NodePool")["p5-block"]["spec"]["template"]
    assert pool["metadata"]["labels"]["eks-ml.io/node-group"] == "p5-block"
    (queue,) = of_kind(karpenter_training_synth, "ClusterQueue").values()
    flavors = [f["name"] for group in queue["spec"]["resourceGroups"] for f in group["flavors"]]
    assert {"trn1", "p5-on-demand", "p5-block"} <= set(flavors)


def test_the_model_places_jobs_on_the_node_group_and_on_a_karpenter_pool(karpenter_training_synth: Synthesis) -> None:
    (plan,) = [p for p in plans_from_assembly(karpenter_training_synth.outdir).clusters if p.workload == "training"]
    lines = "\n".join(plan.placements)
    assert "TrainJob training/trn1-example (node pods) in Kueue flavor trn1 -> managed node group trn1" in lines
    assert (
        "TrainJob training/p5-on-demand-fabric-test (node pods) in Kueue flavor p5-on-demand -> "
        "Karpenter NodePool p5-on-demand (p5.48xlarge)" in lines
    )
    assert "DaemonSet eks-ml-burn-in/burn-in-p5-block -> Karpenter NodePool p5-block" in lines
    assert any("p5-block" in note and "cr-0123456789abcdef0" in note for note in plan.notes)
    # Two pools of one type: each group's jobs stay on their own pool (their runtimes pin the group), so the
    # block's fabric test tests the block, and no On-Demand job lands on the block without its block settings.
    for pool in ("p5-on-demand", "p5-block"):
        for kind in ("example", "fabric-test"):
            assert (
                f"TrainJob training/{pool}-{kind} (node pods) in Kueue flavor {pool} -> Karpenter NodePool {pool} "
                in lines
            )
    # Pools launch nodes after admission, so their jobs carry no topology request (TAS places on existing nodes).
    assert any(
        note.startswith("Kueue topology: p5-block jobs are placed without a topology request") for note in plan.notes
    )


def test_custom_resources_of_the_configuration(karpenter_training_synth: Synthesis) -> None:
    """The count the README states: Karpenter's release and its own CRD upgrade Job add custom resources."""
    template = karpenter_training_synth.templates[STACK]
    custom = Counter(r["Type"] for r in template["Resources"].values() if r["Type"].startswith("Custom::"))
    assert custom == json.loads(json.dumps(CUSTOM_RESOURCES)), custom


CUSTOM_RESOURCES = {
    "Custom::AWSCDK-EKS-HelmChart": 6,
    "Custom::AWSCDK-EKS-KubernetesResource": 3,
    "Custom::AWSCDK-EKS-KubernetesObjectValue": 2,
    "Custom::VpcRestrictDefaultSG": 1,
}


def _props(**overrides: Any) -> dict[str, Any]:
    return {"node_groups": [TrainingNodeGroupProps(name="p5")], "file_system": None, **overrides}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"karpenter_pools": [TrainingKarpenterPoolProps(name="p5")]},
            r"node_groups.name='p5': allowed unique group names",
        ),
        (
            {"karpenter_pools": [TrainingKarpenterPoolProps(name="k", instance_type="g6.xlarge")]},
            r"karpenter_pools\[0\].instance_type='g6.xlarge'",
        ),
        ({"karpenter_pools": TrainingKarpenterPoolProps(name="k")}, r"karpenter_pools"),
    ],
)
def test_bad_karpenter_pools_are_refused(overrides: dict[str, Any], message: str) -> None:
    _, stack = library_stack()
    network = MlVpc(stack, "Network", MlVpcProps(availability_zones=("us-west-2a", "us-west-2b")))
    with pytest.raises(ValidationError, match=message):
        TrainingCluster(
            stack,
            "Training",
            TrainingClusterProps(base=BaseClusterProps(vpc=network.vpc, cluster_name="t"), **_props(**overrides)),
        )


def test_karpenter_pools_are_refused_on_auto_mode() -> None:
    _, stack = library_stack()
    network = MlVpc(stack, "Network", MlVpcProps(availability_zones=("us-west-2a", "us-west-2b")))
    base = BaseClusterProps(vpc=network.vpc, cluster_name="t", auto_mode=True)
    with pytest.raises(ValidationError, match=r"karpenter_pools=\['k'\]: allowed Karpenter pools only on a cluster"):
        TrainingCluster(
            stack,
            "Training",
            TrainingClusterProps(base=base, **_props(karpenter_pools=[TrainingKarpenterPoolProps(name="k")])),
        )
