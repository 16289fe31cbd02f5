"""eks-ml plan: each cluster construct records its plan; the command reads them from whatever app it runs.

Most tests read the plans the session's default-app synth already wrote (no extra synth); two run the
command end to end: on the default app with a context override, and on a library user's own app with
three clusters in three stacks and a minimal cdk.json (tests/apps/two_teams).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from eks_ml import cli
from eks_ml.catalog import all_instance_types
from eks_ml.catalog.prices import ON_DEMAND_USD_PER_HOUR, PRICES_AS_OF, on_demand_price
from eks_ml.cli import PIPED_WIDTH, main, render
from eks_ml.cluster.system_nodes import SystemNodesProps
from eks_ml.plan import AppPlan, plans_from_assembly, training_plan
from eks_ml.training import TrainingNodeGroupProps

from .support.default_app import synthesize_in_this_process
from .support.synth import ROOT, Synthesis

CDK_JSON = ROOT / "cdk.json"
TWO_TEAMS = Path(__file__).parent / "apps" / "two_teams" / "cdk.json"


@pytest.fixture(scope="module")
def default_plan(default_synth: Synthesis) -> AppPlan:
    return plans_from_assembly(default_synth.outdir)


def test_every_cluster_of_the_default_app_records_its_plan(default_plan: AppPlan) -> None:
    assert [(c.name, c.workload, c.path) for c in default_plan.clusters] == [
        ("eks-ml-training", "training", "Training/Cluster"),
        ("eks-ml-inference", "inference", "Inference/Cluster"),
    ]


def test_the_training_plan_states_nodes_fabric_storage_and_cost(default_plan: AppPlan) -> None:
    training = default_plan.clusters[0]
    system, group = training.nodes
    assert (system.instance_type, system.nodes) == ("m7g.large", 2)
    assert (group.instance_type, group.nodes, group.accelerators) == ("p5.48xlarge", 2, "8 x h100")
    assert (group.accelerator_memory_gib, group.efa_interfaces, group.network_gbps) == (640, 32, 3200)
    assert group.workers_per_node == 8
    assert group.usd_per_hour == pytest.approx(2 * 55.04)
    assert training.storage is not None
    assert (training.storage.storage_gib, training.storage.throughput_mbps) == (4800, 2343.75)
    # 500 GiB at 2343.75 MB/s: 536.9 GB / 2.34375 GB/s.
    assert training.storage.checkpoint_write_seconds(500) == pytest.approx(229.1, abs=0.05)
    assert training.usd_per_hour == pytest.approx(0.10 + 2 * 0.0816 + 2 * 55.04)


def test_the_inference_plan_prices_each_service_at_its_minimum(default_plan: AppPlan) -> None:
    inference = default_plan.clusters[1]
    services = {line.role: line for line in inference.nodes if line.role.startswith("model")}
    assert {role: (line.instance_type, line.nodes) for role, line in services.items()} == {
        "model qwen3-8b": ("g6e.xlarge", 1),
        "model qwen3-8b-inf2": ("inf2.8xlarge", 1),
    }
    assert inference.usd_per_hour == pytest.approx(0.10 + 2 * 0.0816 + 1.861 + 1.96786)
    assert [pool.split(":")[0] for pool in inference.pools] == ["gpu", "inferentia", "cpu"]


def test_the_inference_plan_names_each_pool_s_node_os(default_plan: AppPlan) -> None:
    # The GPU pool moved to Bottlerocket (eks_ml.inference.node_os): the plan says so, with the pinned release.
    gpu, inferentia, cpu = default_plan.clusters[1].pools
    assert gpu.endswith("on Bottlerocket (bottlerocket@v1.64.0)")
    assert inferentia.endswith("on AL2023 (al2023@v20260728)") and cpu.endswith("on AL2023 (al2023@v20260728)")


def test_the_plan_shows_where_each_workload_lands(default_plan: AppPlan) -> None:
    training, inference = default_plan.clusters
    assert "Deployment inference/qwen3-8b -> Karpenter NodePool gpu (g6e.xlarge)" in inference.placements
    assert "Deployment kube-system/karpenter -> managed node group system (m7g.large)" in inference.placements
    assert any(p.startswith("TrainJob training/p5-example (node pods)") for p in training.placements)


def _trn2_plan() -> AppPlan:
    group = TrainingNodeGroupProps(name="trn2", instance_type="trn2.48xlarge", desired_size=2)
    cluster = training_plan("c", "S/C", system=SystemNodesProps(), groups=[group], file_system=None, placements=[])
    return AppPlan([cluster])


def test_a_type_without_a_price_is_marked_not_counted_as_free() -> None:
    plan = _trn2_plan()
    (cluster,) = plan.clusters
    assert cluster.nodes[1].usd_per_hour is None
    assert [line.instance_type for line in plan.unpriced] == ["trn2.48xlarge"]
    assert plan.usd_per_hour == pytest.approx(0.10 + 2 * 0.0816)  # the priced part only ...
    data = plan.to_json()
    assert (data["complete"], data["unpriced"]) == (False, ["trn2.48xlarge"])  # ... and it says so
    out = io.StringIO()
    render(plan, Console(file=out, width=PIPED_WIDTH), 500)
    assert "+ 2 nodes with no price in the table (trn2.48xlarge), not included" in out.getvalue()
    (row,) = [line for line in out.getvalue().splitlines() if "trn2.48xlarge" in line and line.startswith("│")]
    assert row.rstrip().endswith("no price │")


def test_the_plan_states_ranks_per_node_from_the_default_lnc() -> None:
    line = _trn2_plan().clusters[0].nodes[1]
    assert (line.accelerators, line.workers_per_node) == ("16 x trainium2 (64 NeuronCores)", 64)


def test_piped_output_keeps_whole_rows(default_plan: AppPlan) -> None:
    out = io.StringIO()
    render(default_plan, Console(file=out, width=PIPED_WIDTH), 500)
    lines = out.getvalue().splitlines()
    # Every table row is one line with all nine cells, and the total is one line.
    rows = [line for line in lines if line.startswith("│ ")]
    assert rows and all(line.count("│") == 10 for line in rows)
    assert any(line.startswith("Total ~$") and line.endswith("not included).") for line in lines)


def test_the_price_table_covers_the_catalog_except_documented_gaps() -> None:
    unpriced = {spec.name for spec in all_instance_types() if on_demand_price(spec.name) is None}
    assert unpriced == {"p5e.48xlarge", "p6-b300.48xlarge", "trn2.48xlarge"}
    assert all(price > 0 for price in ON_DEMAND_USD_PER_HOUR.values())
    assert PRICES_AS_OF == "2026-01-19"


# ---- the command, end to end ----------------------------------------------------------------------------


def test_the_command_plans_the_default_app_with_context_overrides(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The default app runs in this process (tests/support/default_app.py); the two tests below run apps as
    # subprocesses, one that plans and one that fails.
    monkeypatch.setattr(cli, "synthesize", synthesize_in_this_process)
    overrides = ["-c", "eks-ml:trainingNodeCount=4", "-c", "eks-ml:trainingMaxRestarts=5"]
    code = main(["plan", "--json", "--cdk-json", str(CDK_JSON), *overrides])
    assert code == 0, capsys.readouterr().err
    plan = json.loads(capsys.readouterr().out)
    assert plan["prices"] == {"as_of": "2026-01-19", "region": "us-east-1", "kind": "On-Demand list"}
    assert plan["complete"] is True
    training = next(c for c in plan["clusters"] if c["name"] == "eks-ml-training")
    assert training["nodes"][1]["nodes"] == 4
    # The restart budget travels from the context key through the stack to the cluster's plan.
    assert training["max_restarts"] == 5
    assert training["usd_per_hour"] == pytest.approx(0.10 + 2 * 0.0816 + 4 * 55.04, abs=0.01)


def test_the_command_plans_a_library_users_own_app(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--cdk-json", str(TWO_TEAMS)]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    for title in (
        "research-train (training, Research/Pretraining)",
        "search-serving (inference, Serving/SearchInference)",
        "chat-serving (inference, Serving/ChatInference)",
    ):
        assert title in out
    assert "Deployment inference/search-model -> Karpenter NodePool gpu (g6e.xlarge)" in out
    assert "Total ~$4.51/h On-Demand + 4 nodes with no price in the table (trn2.48xlarge)" in out
    assert "eks-ml-training" not in out  # not the default app


def test_bad_configuration_gives_the_apps_own_validation_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--cdk-json", str(CDK_JSON), "-c", "eks-ml:trainingInstanceType=g6.xlarge"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("eks-ml plan: eks-ml configuration error: eks-ml:trainingInstanceType='g6.xlarge'")


def test_a_missing_cdk_json_is_named_not_replaced_by_the_default_app(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["plan", "--cdk-json", str(tmp_path / "cdk.json")]) == 1
    assert capsys.readouterr().err.strip() == (
        f"eks-ml plan: {tmp_path / 'cdk.json'} does not exist: run eks-ml plan in your CDK app's folder "
        "(where cdk.json is), or pass --cdk-json PATH"
    )


def test_an_app_without_eks_ml_clusters_or_an_app_command_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "cdk.json").write_text(json.dumps({"context": {}}))
    assert main(["plan", "--cdk-json", str(tmp_path / "cdk.json")]) == 1
    assert 'has no "app" command' in capsys.readouterr().err
    (tmp_path / "app.py").write_text("from aws_cdk import App, Stack\napp = App()\nStack(app, 'Empty')\napp.synth()\n")
    (tmp_path / "cdk.json").write_text(json.dumps({"app": "python3 app.py"}))
    assert main(["plan", "--cdk-json", str(tmp_path / "cdk.json")]) == 1
    assert "synthesizes no eks-ml TrainingCluster or InferenceCluster" in capsys.readouterr().err


def test_a_context_flag_without_a_value_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--cdk-json", str(CDK_JSON), "-c", "eks-ml:trainingNodeCount"]) == 1
    assert "-c takes key=value, got 'eks-ml:trainingNodeCount'" in capsys.readouterr().err


def test_plans_in_the_nested_assembly_of_a_stage_are_read(tmp_path: Path) -> None:
    plan = _trn2_plan().clusters[0].to_json()
    stage = tmp_path / "assembly-Prod"
    stage.mkdir()
    stack = {"type": "aws:cloudformation:stack", "additionalMetadataFile": "S.metadata.json"}
    (stage / "manifest.json").write_text(json.dumps({"artifacts": {"S": stack}}))
    (stage / "S.metadata.json").write_text(json.dumps({"/Prod/S/C": [{"type": "eks-ml:plan", "data": plan}]}))
    nested = {"type": "cdk:cloud-assembly", "properties": {"directoryName": stage.name}}
    (tmp_path / "manifest.json").write_text(json.dumps({"artifacts": {"Prod": nested}}))
    assert [c.name for c in plans_from_assembly(tmp_path).clusters] == ["c"]


def test_context_follows_the_cdk_clis_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from eks_ml.cli import app_settings

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / ".cdk.json").write_text(json.dumps({"context": {"a": "home", "b": "home", "c": "home"}}))
    (tmp_path / "cdk.context.json").write_text(json.dumps({"b": "saved", "c": "saved", "d": "saved"}))
    (tmp_path / "cdk.json").write_text(json.dumps({"app": "x", "context": {"c": "project", "d": "project"}}))
    _, context = app_settings(tmp_path / "cdk.json", ["d=flag"])
    assert context == {"a": "home", "b": "saved", "c": "project", "d": "flag"}


def test_an_app_that_never_synthesizes_or_bad_saved_context_is_said_plainly(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "cdk.json").write_text(json.dumps({"app": "python3 -c pass"}))
    assert main(["plan", "--cdk-json", str(tmp_path / "cdk.json")]) == 1
    assert "wrote no cloud assembly: does the app call app.synth()?" in capsys.readouterr().err
    (tmp_path / "cdk.context.json").write_text("{oops")
    assert main(["plan", "--cdk-json", str(tmp_path / "cdk.json")]) == 1
    assert "cdk.context.json is not JSON: fix the JSON at line 1" in capsys.readouterr().err
