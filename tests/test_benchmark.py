"""Autoscaling presets from a benchmark: vllm bench serve results -> per-replica load, HPA target, cost."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from eks_ml import ValidationError
from eks_ml.catalog.prices import on_demand_price
from eks_ml.cli import PIPED_WIDTH, render
from eks_ml.errors import Problems
from eks_ml.inference.benchmark import load_benchmark, percentile_key
from eks_ml.inference.model_service import HubWeights, ModelServiceProps
from eks_ml.inference.quantization import Quantization
from eks_ml.inference.slo import ServiceLevelObjective
from eks_ml.plan import AppPlan, ClusterPlan, inference_plan

# Six runs of `vllm bench serve` (concurrency 1 to 128, 1024 input and 256 output tokens) against one
# Qwen3-8B replica on a g6e.xlarge, in the exact format vLLM v0.11.0 writes with --save-result
# --append-result --percentile-metrics ttft,tpot,itl,e2el --metric-percentiles 50,90,99 and the Job's
# --metadata (vllm-project/vllm @ v0.11.0, vllm/benchmarks/serve.py, benchmark() and main()). The numbers
# are made up to be plausible; the field names and types are vLLM's.
FIXTURE = Path(__file__).parent / "data" / "vllm_bench_qwen3_8b_g6e_xlarge.jsonl"
SERVICE = ModelServiceProps(
    name="qwen3-8b",
    instance_type="g6e.xlarge",
    weights=HubWeights(model_id="Qwen/Qwen3-8B"),
    parameters_billions=8.2,
    benchmark=load_benchmark(FIXTURE),
)


def runs() -> list[dict[str, Any]]:
    return [json.loads(line) for line in FIXTURE.read_text().splitlines()]


def write(tmp_path: Path, objects: list[dict[str, Any]]) -> Path:
    path = tmp_path / "bench.jsonl"
    path.write_text("\n".join(json.dumps(o) for o in objects) + "\n")
    return path


def check(service: ModelServiceProps) -> None:
    problems = Problems()
    service.check("service", problems)
    problems.raise_if_any()


def test_the_fixture_has_every_field_vllm_writes() -> None:
    # The field list of vllm/benchmarks/serve.py @ v0.11.0 (without the --save-detailed lists).
    fields = {
        "date", "endpoint_type", "backend", "label", "model_id", "tokenizer_id", "num_prompts", "request_rate",
        "burstiness", "max_concurrency", "duration", "completed", "total_input_tokens", "total_output_tokens",
        "request_throughput", "request_goodput", "output_throughput", "total_token_throughput",
        "max_output_tokens_per_s", "max_concurrent_requests",
    }  # fmt: skip
    stats = {
        f"{s}_{m}_ms" for m in ("ttft", "tpot", "itl", "e2el") for s in ("mean", "median", "std", "p50", "p90", "p99")
    }
    for run in runs():
        assert set(run) == fields | stats | {"instance_type", "tensor_parallel", "replicas"}


def test_the_sustainable_load_is_the_busiest_run_within_the_slo() -> None:
    result = load_benchmark(FIXTURE)
    assert (result.model_id, result.instance_type, result.tensor_parallel, result.replicas) == (
        "Qwen/Qwen3-8B", "g6e.xlarge", 1, 1,
    )  # fmt: skip
    load = result.sustainable(ServiceLevelObjective())  # p99 under 30 s
    # Concurrency 64 has p99 22.8 s; 128 has 39.5 s, over the objective.
    assert (load.concurrency, load.latency_seconds, load.output_tokens_per_second) == (64, 22.799, 776.1)
    # Little's law: 3.03 requests/s drain a queue of 21 within the 7.2 s left of the objective.
    assert (load.requests_per_second, load.queue_target) == (3.032, 21)
    price = on_demand_price("g6e.xlarge")
    assert price is not None
    assert load.usd_per_million_output_tokens == pytest.approx(price / (776.1 * 3600) * 1e6, abs=1e-3)
    tight = result.sustainable(ServiceLevelObjective(latency_seconds=10.0))  # concurrency 16 takes 10.3 s
    assert (tight.concurrency, tight.queue_target) == (4, 1)
    assert tight.usd_per_million_output_tokens is not None
    assert tight.usd_per_million_output_tokens > load.usd_per_million_output_tokens  # fewer tokens per hour


def test_replicas_and_a_partial_node_are_accounted_per_replica(tmp_path: Path) -> None:
    # Two replicas measured together on g6e.12xlarge at tensor_parallel=1: each gets half the tokens and a
    # quarter of the node's price.
    doubled = [{**r, "replicas": "2", "instance_type": "g6e.12xlarge"} for r in runs()]
    load = load_benchmark(write(tmp_path, doubled)).sustainable(ServiceLevelObjective())
    assert load.output_tokens_per_second == pytest.approx(776.1 / 2, abs=0.1)
    price = on_demand_price("g6e.12xlarge")
    assert price is not None
    assert load.usd_per_million_output_tokens == pytest.approx(price / 4 / (776.1 / 2 * 3600) * 1e6, abs=1e-3)


def test_percentile_keys_are_spelt_as_vllm_spells_them() -> None:
    assert percentile_key(0.99) == "p99_e2el_ms"
    assert percentile_key(0.995) == "p99.5_e2el_ms"
    assert percentile_key(0.9) == "p90_e2el_ms"


def test_a_benchmarked_service_scales_on_the_measured_queue_and_caps_its_batch() -> None:
    check(SERVICE)
    values = SERVICE.values(namespace="models", region="us-west-2", load_balancer_cidrs=["10.0.0.0/16"])
    assert values.autoscaling.queue_target == 21
    assert values.args[values.args.index("--max-num-seqs") + 1] == "64"
    plain = replace(SERVICE, benchmark=None)
    values = plain.values(namespace="models", region="us-west-2", load_balancer_cidrs=["10.0.0.0/16"])
    assert values.autoscaling.queue_target == 4 and "--max-num-seqs" not in values.args


def test_the_plan_prints_cost_per_million_tokens_for_benchmarked_services() -> None:
    cluster = inference_plan(
        "serve", "Lib/Inference", system=None, services=[SERVICE, replace(SERVICE, name="plain", benchmark=None)],
        pools=[], placements=[],
    )  # fmt: skip
    (line,) = cluster.serving
    assert (line.service, line.queue_target, line.output_tokens_per_second) == ("qwen3-8b", 21, 776.1)
    assert ClusterPlan.from_json(json.loads(json.dumps(cluster.to_json()))) == cluster  # survives the assembly
    out = io.StringIO()
    render(AppPlan([cluster]), Console(file=out, width=PIPED_WIDTH), 500)
    assert (
        "model qwen3-8b: 776 output tokens/s per replica on g6e.xlarge at p99 22.8 s (SLO 30 s), queue target 21; "
        f"${line.usd_per_million_output_tokens:.2f} per million output tokens (On-Demand)"
    ) in out.getvalue()
    assert "model plain:" not in out.getvalue()


def test_the_plan_says_when_fp8_runs_weight_only(tmp_path: Path) -> None:
    on_g5 = [{**r, "instance_type": "g5.xlarge"} for r in runs()]
    service = replace(
        SERVICE,
        instance_type="g5.xlarge",
        quantization=Quantization.FP8,
        benchmark=load_benchmark(write(tmp_path, on_g5)),
    )
    check(service)
    (line,) = inference_plan("serve", "Lib/Inference", system=None, services=[service], pools=[], placements=[]).serving
    assert line.note is not None and "a10g (compute capability 8.6) has no FP8 compute" in line.note


# --- bad input --------------------------------------------------------------------------------------------


def broken(change: Any) -> list[dict[str, Any]]:
    objects = runs()
    for run in objects:
        change(run)
    return objects


FILE_PROBLEMS = [
    pytest.param(
        lambda o: [o.pop(k) for k in list(o) if k.endswith("e2el_ms")],  # the default --percentile-metrics
        r"runs with p99_e2el_ms.*Fix: run vllm bench serve with --save-result --percentile-metrics",
        id="no-e2el-percentiles",
    ),
    pytest.param(lambda o: o.pop("instance_type"), r"benchmark.instance_type=.*missing on line 1", id="no-metadata"),
    pytest.param(
        lambda o: o.update(instance_type="g6e.2xlarge") if o["max_concurrency"] == 4 else None,
        r"benchmark.instance_type=\['g6e.2xlarge', 'g6e.xlarge'\]: allowed one value for the whole file",
        id="mixed-types",
    ),
    pytest.param(
        lambda o: o.update(replicas="two"), r"benchmark.replicas='two': allowed a positive whole", id="bad-replicas"
    ),
    pytest.param(lambda o: o.update(completed="40"), r"non-negative numbers for completed", id="string-count"),
    pytest.param(lambda o: o.update(instance_type="g6e.xlarg"), r"did you mean g6e.xlarge", id="unknown-type"),
]


@pytest.mark.parametrize(("change", "message"), FILE_PROBLEMS)
def test_bad_result_files_are_refused(tmp_path: Path, change: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        load_benchmark(write(tmp_path, broken(change))).sustainable(ServiceLevelObjective())


def test_unreadable_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"benchmark=.*missing.jsonl.*a readable vllm bench serve result"):
        load_benchmark(tmp_path / "missing.jsonl")
    (tmp_path / "bad.jsonl").write_text('{"completed": 1}\n{not json\n')
    with pytest.raises(ValidationError, match=r"JSON objects, one per line.*Fix: line 2"):
        load_benchmark(tmp_path / "bad.jsonl")


SERVICE_PROBLEMS = [
    pytest.param(
        {"instance_type": "g6e.2xlarge"},
        r"service.benchmark.instance_type='g6e.xlarge': allowed the service's instance type, g6e.2xlarge",
        id="other-hardware",
    ),
    pytest.param(
        {"queue_target": 8}, r"service.queue_target=8: allowed the default \(4\) when a benchmark sets it", id="both"
    ),
    pytest.param(
        {"slo": ServiceLevelObjective(latency_seconds=5.0)},
        r"service.benchmark=.*a run within the SLO \(p99_e2el_ms <= 5 s.*lowest was 6.4 s at concurrency 1",
        id="slo-never-met",
    ),
    pytest.param(
        {"slo": ServiceLevelObjective(latency_target=0.995)}, r"service.benchmark=.*runs with p99.5_e2el_ms", id="pct"
    ),
    pytest.param({"benchmark": str(FIXTURE)}, r"service.benchmark=.*Fix: pass load_benchmark\(path\)", id="a-path"),
]


@pytest.mark.parametrize(("changes", "message"), SERVICE_PROBLEMS)
def test_benchmarks_that_contradict_the_service_are_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        check(replace(SERVICE, **changes))
