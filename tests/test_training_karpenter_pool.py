"""The opt-in Karpenter training pool: catalog-driven validation, and manifests that pass the pinned
Karpenter 1.14.1 CRDs' schemas and CEL rules (each broken on purpose once to show the check can fail)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from eks_ml import ValidationError
from eks_ml.catalog import lookup
from eks_ml.errors import Problems
from eks_ml.k8s.burn_in import BURN_IN_KEY, PENDING
from eks_ml.training.capacity import Capacity
from eks_ml.training.efa import EfaLayout
from eks_ml.training.karpenter_pool import (
    KARPENTER_POOL_LABEL,
    KarpenterNodeSetting,
    TrainingKarpenterPoolProps,
    pool_manifests,
)

from .support.manifests import requires_chart_cache, validate_object

SETTING = KarpenterNodeSetting(
    role="demo-karpenter-node",
    ami_alias="al2023@latest",
    subnet_tags={"karpenter.sh/discovery": "eks-ml"},
    security_group_tags=[{"aws:eks:cluster-name": "demo"}, {"eks-ml.io/efa-security-group": "demo"}],
    zone="us-west-2a",
)
BLOCK = "cr-0123456789abcdef0"


def BLOCK_WINDOW(**options: Any) -> Capacity:  # noqa: N802 (reads as the constant it extends)
    return Capacity.capacity_block(BLOCK, start="2026-12-01T11:30:00Z", end="2026-12-03T11:30:00Z", **options)


def checked(props: TrainingKarpenterPoolProps) -> Any:
    problems = Problems()
    spec = props.check("karpenter_pools[0]", problems)
    problems.raise_if_any()
    return spec


def manifests(props: TrainingKarpenterPoolProps, placement_group: str | None = None) -> list[dict[str, Any]]:
    return pool_manifests(props, checked(props), SETTING, placement_group_name=placement_group)


def by_kind(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {obj["kind"]: obj for obj in objects}


def test_on_demand_pool_has_efa_on_every_card_a_placement_group_and_never_consolidates_a_busy_node() -> None:
    props = TrainingKarpenterPoolProps(name="p5-karpenter")
    objects = by_kind(manifests(props, placement_group="demo-training-pg"))
    node_class, pool = objects["EC2NodeClass"]["spec"], objects["NodePool"]["spec"]
    spec = lookup("p5.48xlarge")
    efa = [i for i in node_class["networkInterfaces"] if i["interfaceType"] == "efa-only"]
    assert len(efa) == spec.efa_interfaces
    assert node_class["networkInterfaces"][0] == {"networkCardIndex": 0, "deviceIndex": 0, "interfaceType": "interface"}
    assert node_class["placementGroupSelector"] == {"name": "demo-training-pg"}
    assert "capacityReservationSelectorTerms" not in node_class
    template = pool["template"]
    assert {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]} in template["spec"][
        "requirements"
    ]
    assert template["spec"]["startupTaints"] == [{"key": BURN_IN_KEY, "value": PENDING, "effect": "NoSchedule"}]
    assert template["spec"]["taints"] == [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}]
    assert template["metadata"]["labels"][KARPENTER_POOL_LABEL] == "p5-karpenter"
    assert template["spec"]["expireAfter"] == "Never"
    assert pool["disruption"]["consolidationPolicy"] == "WhenEmpty"
    assert {"nodes": "0", "reasons": ["Drifted"]} in pool["disruption"]["budgets"]
    assert pool["limits"] == {"nvidia.com/gpu": str(2 * spec.accelerator_count)}


@pytest.mark.parametrize(
    ("capacity", "reservation_type"),
    [(Capacity.reservation(BLOCK), "default"), (Capacity.capacity_block(BLOCK), "capacity-block")],
)
def test_reserved_pools_select_the_reservation_and_take_only_reserved_capacity(
    capacity: Capacity, reservation_type: str
) -> None:
    props = TrainingKarpenterPoolProps(name="reserved", capacity=capacity)
    assert not props.uses_placement_group
    objects = by_kind(manifests(props))
    assert objects["EC2NodeClass"]["spec"]["capacityReservationSelectorTerms"] == [{"id": BLOCK}]
    requirements = objects["NodePool"]["spec"]["template"]["spec"]["requirements"]
    assert {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["reserved"]} in requirements
    assert {
        "key": "karpenter.k8s.aws/capacity-reservation-type",
        "operator": "In",
        "values": [reservation_type],
    } in requirements


def test_trainium_pool_uses_the_neuron_resource_and_the_ena_on_every_card_layout() -> None:
    props = TrainingKarpenterPoolProps(
        name="trn", instance_type="trn1.32xlarge", efa_layout=EfaLayout.ENA_ON_EVERY_CARD
    )
    objects = by_kind(manifests(props))
    spec = lookup("trn1.32xlarge")
    interfaces = objects["EC2NodeClass"]["spec"]["networkInterfaces"]
    assert sum(i["interfaceType"] == "interface" for i in interfaces) == spec.network_cards
    assert objects["NodePool"]["spec"]["template"]["spec"]["taints"][0]["key"] == spec.accelerator_resource


@pytest.mark.parametrize(
    ("props", "field"),
    [
        (TrainingKarpenterPoolProps(name="g", instance_type="g6.xlarge"), "karpenter_pools[0].instance_type"),
        (TrainingKarpenterPoolProps(name="x", instance_type="p9.huge"), "karpenter_pools[0].instance_type"),
        (TrainingKarpenterPoolProps(name="Bad_Name"), "karpenter_pools[0].name"),
        (TrainingKarpenterPoolProps(name="p", max_nodes=0), "karpenter_pools[0].max_nodes"),
        (TrainingKarpenterPoolProps(name="p", empty_after="soon"), "karpenter_pools[0].empty_after"),
        (TrainingKarpenterPoolProps(name="p", root_volume_gib=20), "karpenter_pools[0].root_volume_gib"),
        (
            TrainingKarpenterPoolProps(name="p", capacity=Capacity.capacity_block(BLOCK), placement_group=True),
            "karpenter_pools[0].placement_group",
        ),
        (TrainingKarpenterPoolProps(name="p", capacity=Capacity.reservation("r-1")), "karpenter_pools[0].capacity"),
        (TrainingKarpenterPoolProps(name="p", labels={"karpenter.sh/x": "y"}), "karpenter_pools[0].labels"),
        (
            TrainingKarpenterPoolProps(name="p", max_nodes=4, capacity=BLOCK_WINDOW(instance_count=2)),
            "karpenter_pools[0].capacity.window.instance_count",
        ),
    ],
)
def test_bad_pools_are_refused_naming_the_field(props: TrainingKarpenterPoolProps, field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        checked(props)
    assert any(problem.field.startswith(field) for problem in caught.value.problems), caught.value


def test_a_block_covering_the_pools_nodes_is_accepted_and_a_short_one_says_what_to_do() -> None:
    assert checked(TrainingKarpenterPoolProps(name="p", max_nodes=2, capacity=BLOCK_WINDOW(instance_count=2)))
    with pytest.raises(
        ValidationError, match=r"instance_count=1: allowed at least the pool's max_nodes \(2\).*lower max_nodes to 1"
    ):
        checked(TrainingKarpenterPoolProps(name="p", max_nodes=2, capacity=BLOCK_WINDOW(instance_count=1)))


VALID_POOLS = [
    TrainingKarpenterPoolProps(name="p5-karpenter"),
    TrainingKarpenterPoolProps(name="block", capacity=Capacity.capacity_block(BLOCK)),
    TrainingKarpenterPoolProps(name="trn2", instance_type="trn2.48xlarge", efa_layout=EfaLayout.ENA_ON_EVERY_CARD),
]


@requires_chart_cache
@pytest.mark.parametrize("props", VALID_POOLS, ids=lambda p: p.name)
def test_pool_manifests_pass_the_pinned_karpenter_schemas_and_cel_rules(props: TrainingKarpenterPoolProps) -> None:
    for obj in manifests(props, placement_group="pg" if props.uses_placement_group else None):
        assert validate_object(obj) == [], obj["kind"]


def _set(obj: dict[str, Any], path: list[str | int], value: Any) -> dict[str, Any]:
    broken = copy.deepcopy(obj)
    target: Any = broken
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return broken


@requires_chart_cache
@pytest.mark.parametrize(
    ("kind", "path", "value"),
    [
        # An EFA-only primary interface: the CRD's CEL rule requires an ENA primary at card 0 device 0.
        ("EC2NodeClass", ["spec", "networkInterfaces", 0, "interfaceType"], "efa-only"),
        # Two EFA interfaces on one card: the CEL rule allows at most one per card.
        ("EC2NodeClass", ["spec", "networkInterfaces", 2, "networkCardIndex"], 0),
        # A placement group selector with both name and id: mutually exclusive.
        ("EC2NodeClass", ["spec", "placementGroupSelector", "id"], "pg-0123456789abcdef0"),
        # A budget reason Karpenter does not know.
        ("NodePool", ["spec", "disruption", "budgets", 0, "reasons"], ["Expired"]),
    ],
)
def test_the_gate_catches_a_broken_pool_manifest(kind: str, path: list[str | int], value: Any) -> None:
    # p4d (4 cards): the same rules as p5's 32 cards, a fraction of the CEL evaluation time.
    props = TrainingKarpenterPoolProps(name="p4d-karpenter", instance_type="p4d.24xlarge")
    objects = by_kind(manifests(props, placement_group="pg"))
    assert validate_object(objects[kind]) == []
    assert validate_object(_set(objects[kind], path, value)) != []
