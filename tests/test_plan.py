"""eks-ml plan: the numbers it derives from the configuration, its output forms, and its errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eks_ml import AppConfig, ValidationError, load_app_config
from eks_ml.catalog import all_instance_types
from eks_ml.catalog.prices import ON_DEMAND_USD_PER_HOUR, PRICES_AS_OF, on_demand_price
from eks_ml.cli import main
from eks_ml.plan import plan_app

from .support.synth import CDK_CONTEXT, ROOT

CDK_JSON = Path(__file__).parent.parent / "cdk.json"


def test_the_training_plan_states_nodes_fabric_storage_and_cost(default_config: AppConfig) -> None:
    training = plan_app(default_config).clusters[0]
    system, group = training.nodes
    assert (system.instance_type, system.nodes) == ("m7g.large", 2)
    assert (group.instance_type, group.nodes, group.accelerators) == ("p5.48xlarge", 2, "8 x h100")
    assert (group.accelerator_memory_gib, group.efa_interfaces, group.network_gbps) == (640, 32, 3200)
    assert group.workers_per_node == 8
    assert group.usd_per_hour == pytest.approx(2 * 55.04)
    assert training.storage is not None
    assert (training.storage.storage_gib, training.storage.throughput_mbps) == (4800, 2343.75)
    # 500 GiB at 2343.75 MB/s: 536.9 GB / 2.34375 GB/s.
    assert training.storage.checkpoint_write_seconds == pytest.approx(229.1, abs=0.05)
    assert training.usd_per_hour == pytest.approx(0.10 + 2 * 0.0816 + 2 * 55.04)


def test_the_inference_plan_prices_each_service_at_its_minimum(default_config: AppConfig) -> None:
    inference = plan_app(default_config).clusters[1]
    services = {line.role: line for line in inference.nodes if line.role.startswith("model")}
    assert {role: (line.instance_type, line.nodes) for role, line in services.items()} == {
        "model qwen3-8b": ("g6e.xlarge", 1),
        "model qwen3-8b-inf2": ("inf2.8xlarge", 1),
    }
    assert inference.usd_per_hour == pytest.approx(0.10 + 2 * 0.0816 + 1.861 + 1.96786)
    assert [pool.split(":")[0] for pool in inference.pools] == ["gpu", "inferentia", "cpu"]


def test_a_type_without_a_price_is_named_not_guessed() -> None:
    config = load_app_config({**CDK_CONTEXT, "eks-ml:trainingInstanceType": "trn2.48xlarge"})
    training = plan_app(config).clusters[0]
    assert training.nodes[1].usd_per_hour is None
    assert any("trn2.48xlarge" in note for note in training.notes)
    assert training.usd_per_hour == pytest.approx(0.10 + 2 * 0.0816)


def test_the_plan_states_ranks_per_node_from_the_default_lnc() -> None:
    config = load_app_config({**CDK_CONTEXT, "eks-ml:trainingInstanceType": "trn2.48xlarge"})
    line = plan_app(config).clusters[0].nodes[1]
    assert (line.accelerators, line.workers_per_node) == ("16 x trainium2 (64 NeuronCores)", 64)


def test_the_price_table_covers_the_catalog_except_documented_gaps() -> None:
    unpriced = {spec.name for spec in all_instance_types() if on_demand_price(spec.name) is None}
    assert unpriced == {"p5e.48xlarge", "p6-b300.48xlarge", "trn2.48xlarge"}
    assert all(price > 0 for price in ON_DEMAND_USD_PER_HOUR.values())
    assert PRICES_AS_OF == "2026-01-19"


def test_json_output_reads_cdk_json_and_context_overrides(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["plan", "--json", "--cdk-json", str(CDK_JSON), "-c", "eks-ml:trainingNodeCount=4"])
    assert code == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["prices"] == {"as_of": "2026-01-19", "region": "us-east-1", "kind": "On-Demand list"}
    training = plan["clusters"][0]
    assert training["name"] == "eks-ml-training"
    assert training["nodes"][1]["nodes"] == 4
    assert training["usd_per_hour"] == pytest.approx(0.10 + 2 * 0.0816 + 4 * 55.04, abs=0.01)


def test_the_table_output_names_every_section(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--cdk-json", str(CDK_JSON), "--checkpoint-gib", "1000"]) == 0
    out = capsys.readouterr().out
    for text in ("eks-ml-training (training)", "eks-ml-inference (inference)", "FSx for Lustre", "1000 GiB", "Total"):
        assert text in out


def test_bad_configuration_gives_the_same_validation_error_as_synth(capsys: pytest.CaptureFixture[str]) -> None:
    override = "eks-ml:trainingInstanceType=g6e.xlarge"
    assert main(["plan", "--cdk-json", str(CDK_JSON), "-c", override]) == 1
    with pytest.raises(ValidationError) as error:
        load_app_config({**json.loads(CDK_JSON.read_text())["context"], "eks-ml:trainingInstanceType": "g6e.xlarge"})
    assert capsys.readouterr().err.strip() == f"eks-ml configuration error: {error.value}"


def test_a_context_flag_without_a_value_is_refused() -> None:
    with pytest.raises(SystemExit, match="-c takes key=value"):
        main(["plan", "--cdk-json", str(CDK_JSON), "-c", "eks-ml:trainingNodeCount"])


def test_the_plan_shows_where_each_workload_lands(capsys: pytest.CaptureFixture[str]) -> None:
    from eks_ml.cli import main

    assert main(["plan", "--cdk-json", str(ROOT / "cdk.json")]) == 0
    out = capsys.readouterr().out
    assert "lands: Deployment inference/qwen3-8b -> Karpenter NodePool gpu (g6e.xlarge)" in out
    assert "lands: Deployment kube-system/karpenter -> managed node group system (m7g.large)" in out
