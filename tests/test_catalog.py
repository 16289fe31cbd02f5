from __future__ import annotations

import json

import pytest

from eks_ml import ValidationError, catalog
from eks_ml.catalog import (
    EFA_RESOURCE,
    INTERFACE_EFA_ONLY,
    INTERFACE_ENA,
    NEURON_CORE_RESOURCE,
    NEURON_DEVICE_RESOURCE,
    NVIDIA_GPU_RESOURCE,
)

from .support.synth import SHARED

REFERENCE = SHARED / "reference" / "accelerated-instances.json"
REQUIRED_FAMILIES = (
    "p4d",
    "p4de",
    "p5",
    "p5e",
    "p5en",
    "p6-b200",
    "p6-b300",
    "trn1",
    "trn1n",
    "trn2",
    "g5",
    "g6",
    "g6e",
    "inf2",
)


@pytest.fixture(scope="module")
def reference() -> dict[str, dict[str, object]]:
    if not REFERENCE.exists():
        pytest.skip(f"{REFERENCE} is absent")
    return {row["instance_type"]: row for row in json.loads(REFERENCE.read_text())}


@pytest.mark.parametrize("family", REQUIRED_FAMILIES)
def test_every_required_family_is_in_the_catalog(family: str) -> None:
    assert family in catalog.families()


def test_catalog_has_every_size_of_its_families(reference: dict[str, dict[str, object]]) -> None:
    expected = {name for name, row in reference.items() if row["family"] in REQUIRED_FAMILIES}
    assert {spec.name for spec in catalog.all_instance_types()} == expected


@pytest.mark.parametrize("spec", catalog.all_instance_types(), ids=lambda s: s.name)
def test_record_matches_the_reference(spec: catalog.InstanceSpec, reference: dict[str, dict[str, object]]) -> None:
    row = reference[spec.name]
    assert row["family"] == spec.family
    assert (spec.vcpus, spec.memory_mib) == (row["vcpu"], row["memory_mib"])
    assert spec.efa_interfaces == row["efa_interfaces"]
    assert spec.network_bandwidth_mbps == row["network_bandwidth_mbps"]
    assert spec.local_nvme_gib == row["local_nvme_gib"]
    assert spec.max_pods == row["max_pods"]
    if spec.is_nvidia:
        assert (spec.accelerator_name, spec.accelerator_count) == (row["gpu_name"], row["gpu_count"])
        assert spec.accelerator_memory_mib == row["gpu_memory_mib"]
        assert row["neuron_devices"] == 0
    else:
        assert (spec.accelerator_name, spec.accelerator_count) == (row["accelerator_name"], row["neuron_devices"])
        # The reference counts physical NeuronCores; the catalog also knows the default LNC.
        assert spec.physical_neuron_cores == row["neuron_cores"]
        assert row["gpu_count"] == 0


@pytest.mark.parametrize(
    ("name", "ami_type", "resources", "workers"),
    [
        ("p5.48xlarge", "AL2023_x86_64_NVIDIA", {NVIDIA_GPU_RESOURCE: 8, EFA_RESOURCE: 32}, 8),
        ("p4d.24xlarge", "AL2023_x86_64_NVIDIA", {NVIDIA_GPU_RESOURCE: 8, EFA_RESOURCE: 4}, 8),
        ("trn1.32xlarge", "AL2023_x86_64_NEURON", {NEURON_DEVICE_RESOURCE: 16, EFA_RESOURCE: 8}, 32),
        ("trn2.48xlarge", "AL2023_x86_64_NEURON", {NEURON_DEVICE_RESOURCE: 16, EFA_RESOURCE: 16}, 64),
        ("inf2.48xlarge", "AL2023_x86_64_NEURON", {NEURON_DEVICE_RESOURCE: 12}, 24),
        ("g6e.xlarge", "AL2023_x86_64_NVIDIA", {NVIDIA_GPU_RESOURCE: 1}, 1),
    ],
)
def test_derived_facts(name: str, ami_type: str, resources: dict[str, int], workers: int) -> None:
    spec = catalog.lookup(name)
    assert spec.ami_type == ami_type
    assert spec.extended_resources() == resources
    assert spec.workers_per_node == workers


def test_neuron_device_memory_and_totals() -> None:
    assert catalog.lookup("trn2.48xlarge").accelerator_memory_mib == 96 * 1024
    assert catalog.lookup("inf2.48xlarge").total_accelerator_memory_gib == 12 * 32
    assert catalog.lookup("p5.48xlarge").total_accelerator_memory_gib == 8 * 80
    assert catalog.lookup("p5.48xlarge").network_cards == 32
    assert catalog.lookup("g5.xlarge").network_cards == 1
    assert catalog.lookup("trn1.32xlarge").network_bandwidth_gbps == 800


def test_unknown_type_suggests_near_matches() -> None:
    with pytest.raises(ValidationError, match=r"instance_type='p5.48xlarg'.*did you mean p5.48xlarge") as raised:
        catalog.lookup("p5.48xlarg")
    assert raised.value.problems[0].field == "instance_type"


def test_unknown_type_without_near_match_lists_the_families() -> None:
    with pytest.raises(ValidationError, match=r"families p4d, p4de, p5.*use one of the catalog's types"):
        catalog.lookup("m7i.metal-48xl", field="training.instance_type")


# Logical NeuronCores under the default LNC: trn2 defaults to LNC=2 (128 physical -> 64 on a trn2.48xlarge),
# trn1 supports only LNC=1 (16 chips x 2 NeuronCore-v2), Inferentia2 has 2 NeuronCore-v2 per device.
# https://awsdocs-neuron.readthedocs-hosted.com/en/latest/general/arch/neuron-features/logical-neuroncore-config.html
@pytest.mark.parametrize(
    ("name", "physical", "lnc", "logical"),
    [
        ("trn2.48xlarge", 128, 2, 64),
        ("trn1.32xlarge", 32, 1, 32),
        ("trn1n.32xlarge", 32, 1, 32),
        ("trn1.2xlarge", 2, 1, 2),
        ("inf2.48xlarge", 24, 1, 24),
        ("inf2.xlarge", 2, 1, 2),
    ],
)
def test_neuron_cores_are_the_logical_cores_of_the_default_lnc(
    name: str, physical: int, lnc: int, logical: int
) -> None:
    spec = catalog.lookup(name)
    assert (spec.physical_neuron_cores, spec.logical_nc_config, spec.neuron_cores) == (physical, lnc, logical)
    # What the device plugin advertises, and one rank per advertised core.
    assert spec.advertised_resources()[NEURON_CORE_RESOURCE] == logical
    assert spec.workers_per_node == logical


def test_gpu_types_advertise_no_neuron_cores() -> None:
    spec = catalog.lookup("p5.48xlarge")
    assert spec.advertised_resources() == {NVIDIA_GPU_RESOURCE: 8, EFA_RESOURCE: 32}
    assert spec.neuron_cores == 0


# Network cards per training type: Karpenter's zz_generated.vpclimits.go (aws/karpenter-provider-aws, 2026-08,
# from DescribeInstanceTypes) for all but trn2.48xlarge, whose 16 cards (card 0 with EFA) come from the Neuron
# EKS sample launch template (aws-neuron/aws-neuron-eks-samples, dp_bert_hf_pretrain/cfn/eks_trn2_ng_stack_al2023.yaml).
NETWORK_CARDS = {
    "p4d.24xlarge": 4,
    "p4de.24xlarge": 4,
    "p5.4xlarge": 1,
    "p5.48xlarge": 32,
    "p5e.48xlarge": 32,
    "p5en.48xlarge": 16,
    "p6-b200.48xlarge": 8,
    "p6-b300.48xlarge": 17,
    "trn1.32xlarge": 8,
    "trn1n.32xlarge": 16,
    "trn2.48xlarge": 16,
}


@pytest.mark.parametrize(("name", "cards"), sorted(NETWORK_CARDS.items()))
def test_network_cards_of_the_training_types(name: str, cards: int) -> None:
    spec = catalog.lookup(name)
    assert spec.network_cards == cards
    # p6-b300's extra card is card 0, which has no EFA; every other type has EFA on every card.
    assert spec.efa_on_card_zero == (name != "p6-b300.48xlarge")


@pytest.mark.parametrize("spec", catalog.all_instance_types(), ids=lambda s: s.name)
def test_interface_layout_follows_the_ec2_guide(spec: catalog.InstanceSpec) -> None:
    """The EC2 user guide's rule ("Maximize network bandwidth on instances with multiple network cards",
    checked 2026-11): ENA primary at card 0 device 0; efa-only at card 0 device 1 if card 0 supports EFA;
    efa-only at device 0 on every other card."""
    layout = spec.network_interface_layout()
    slots = {(s.network_card_index, s.device_index): s.interface_type for s in layout}
    assert len(slots) == len(layout), "duplicate card/device pair"
    assert slots[(0, 0)] == INTERFACE_ENA
    assert slots.get((0, 1)) == (INTERFACE_EFA_ONLY if spec.efa_on_card_zero and spec.supports_efa else None)
    for card in range(1, spec.network_cards):
        assert slots[(card, 0)] == INTERFACE_EFA_ONLY
    assert set(slots.values()) <= {INTERFACE_ENA, INTERFACE_EFA_ONLY}  # never the older ENA+EFA "efa" type
    assert max(card for card, _ in slots) == spec.network_cards - 1
    # One EFA device per EFA-capable card, and exactly as many as a pod that takes the node requests.
    efa_cards = [s.network_card_index for s in layout if s.has_efa]
    assert len(efa_cards) == len(set(efa_cards)) == spec.efa_interfaces
    assert tuple(sorted(efa_cards)) == spec.efa_cards
    assert spec.extended_resources().get(EFA_RESOURCE, 0) == len(efa_cards)


@pytest.mark.parametrize("name", sorted(NETWORK_CARDS))
def test_ena_on_every_card_adds_an_ip_interface_at_device_1(name: str) -> None:
    spec = catalog.lookup(name)
    layout = spec.network_interface_layout(ena_on_every_card=True)
    ena = sorted((s.network_card_index, s.device_index) for s in layout if s.interface_type == INTERFACE_ENA)
    assert ena == [(0, 0)] + [(card, 1) for card in range(1, spec.network_cards)]
    assert [s for s in layout if s.has_efa] == [s for s in spec.network_interface_layout() if s.has_efa]


def test_p6_b300_card_zero_carries_only_the_primary() -> None:
    layout = catalog.lookup("p6-b300.48xlarge").network_interface_layout()
    assert [(s.network_card_index, s.device_index, s.interface_type) for s in layout[:3]] == [
        (0, 0, "interface"),
        (1, 0, "efa-only"),
        (2, 0, "efa-only"),
    ]
    assert len(layout) == 17
