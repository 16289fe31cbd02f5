from __future__ import annotations

import json

import pytest

from eks_ml import ValidationError, catalog
from eks_ml.catalog import EFA_RESOURCE, NEURON_DEVICE_RESOURCE, NVIDIA_GPU_RESOURCE

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
        assert spec.neuron_cores == row["neuron_cores"]
        assert row["gpu_count"] == 0


@pytest.mark.parametrize(
    ("name", "ami_type", "resources", "workers"),
    [
        ("p5.48xlarge", "AL2023_x86_64_NVIDIA", {NVIDIA_GPU_RESOURCE: 8, EFA_RESOURCE: 32}, 8),
        ("p4d.24xlarge", "AL2023_x86_64_NVIDIA", {NVIDIA_GPU_RESOURCE: 8, EFA_RESOURCE: 4}, 8),
        ("trn1.32xlarge", "AL2023_x86_64_NEURON", {NEURON_DEVICE_RESOURCE: 16, EFA_RESOURCE: 8}, 32),
        ("trn2.48xlarge", "AL2023_x86_64_NEURON", {NEURON_DEVICE_RESOURCE: 16, EFA_RESOURCE: 16}, 128),
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
