"""Model service SLOs: the props, their validation and the burn-rate rules they become (the rules' fire and
silence cases run under promtool in test_prometheus_rules.py)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from eks_ml import ValidationError
from eks_ml.errors import Problems
from eks_ml.inference import ServiceLevelObjective
from eks_ml.inference.model_service import HubWeights, ModelServiceProps
from eks_ml.inference.slo import VLLM_E2E_LATENCY_BUCKETS
from eks_ml.observability.slo_rules import SLO_ALERT_NAMES, WINDOWS, slo_rules

from .support.rule_variants import VARIANTS, Variant

SERVICE = ModelServiceProps(
    name="llm", instance_type="g6e.xlarge", weights=HubWeights(model_id="Qwen/Qwen3-8B"), parameters_billions=8.2
)


def check(service: ModelServiceProps) -> None:
    problems = Problems()
    service.check("model_services[0]", problems)
    problems.raise_if_any()


def test_defaults_are_99_percent_under_30_seconds_and_99_5_percent_without_errors() -> None:
    slo = SERVICE.slo
    assert (slo.latency_seconds, slo.latency_target, slo.availability_target) == (30.0, 0.99, 0.995)
    assert (slo.latency_budget, slo.error_budget) == (0.01, 0.005)
    check(SERVICE)


BAD = [
    pytest.param(
        {"latency_seconds": 25},
        r"slo.latency_seconds=25: allowed a bucket bound .* use the nearest bound, e.g. 20",
        id="not-a-bucket",
    ),
    pytest.param({"latency_target": 99}, r"slo.latency_target=99: allowed a share from 0.9 to 0.9999", id="percent"),
    pytest.param({"availability_target": 1.0}, r"slo.availability_target=1.0: allowed a share", id="no-budget"),
    pytest.param({"availability_target": 0.5}, r"slo.availability_target=0.5", id="too-loose"),
    pytest.param({"latency_seconds": "30s"}, r"slo.latency_seconds", id="not-a-number"),
]


@pytest.mark.parametrize(("changes", "message"), BAD)
def test_bad_objectives_are_refused(changes: dict[str, Any], message: str) -> None:
    service = ModelServiceProps(**{**SERVICE.__dict__, "slo": ServiceLevelObjective(**changes)})
    with pytest.raises(ValidationError, match=message):
        check(service)


def test_an_slo_of_the_wrong_type_is_refused() -> None:
    service = ModelServiceProps(**{**SERVICE.__dict__, "slo": 0.99})
    with pytest.raises(ValidationError, match=r"model_services\[0\].slo"):
        check(service)


def test_every_bucket_bound_is_accepted() -> None:
    for bound in VLLM_E2E_LATENCY_BUCKETS:
        check(ModelServiceProps(**{**SERVICE.__dict__, "slo": ServiceLevelObjective(latency_seconds=bound)}))


def inference(slo: ServiceLevelObjective) -> Variant:
    variant = next(v for v in VARIANTS if v.service_objectives)
    return Variant(**{**variant.__dict__, "service_objectives": (("llm", slo),)})


def test_rules_follow_the_objective() -> None:
    rules = slo_rules(inference(ServiceLevelObjective(latency_seconds=10, availability_target=0.999)))
    records = {(r["record"], r["labels"]["service"]): r["expr"] for r in rules if "record" in r}
    assert len(records) == 2 * len(WINDOWS) == 14
    slow = records[("eksml:model_request_slow:ratio_rate5m", "llm")]
    assert 'model_name="llm"' in slow and 'le=~"10\\\\.0|10"' in slow
    errors = records[("eksml:model_request_errors:ratio_rate1h", "llm")]
    assert 'pod=~"llm-[^-]+-[^-]+"' in errors and 'status="5xx"' in errors and "[1h]" in errors
    alerts = {r["alert"]: r for r in rules if "alert" in r}
    assert set(alerts) == set(SLO_ALERT_NAMES)
    # Page: 14.4x and 6x the budget rate of 0.1%; ticket: 3x and 1x (the SRE workbook's table).
    fast = alerts["ModelErrorBudgetFastBurn"]["expr"]
    assert re.findall(r"ratio_rate(\w+)\{[^}]*\} > ([\d.]+)", fast) == [
        ("1h", "0.0144"), ("5m", "0.0144"), ("6h", "0.006"), ("30m", "0.006"),
    ]  # fmt: skip
    slow_burn = alerts["ModelLatencyBudgetSlowBurn"]["expr"]
    assert re.findall(r"ratio_rate(\w+)\{[^}]*\} > ([\d.]+)", slow_burn) == [
        ("1d", "0.03"), ("2h", "0.03"), ("3d", "0.01"), ("6h", "0.01"),
    ]  # fmt: skip
    assert alerts["ModelErrorBudgetFastBurn"]["labels"]["severity"] == "critical"
    assert alerts["ModelErrorBudgetSlowBurn"]["labels"]["severity"] == "warning"


def test_a_cluster_without_model_services_has_no_slo_rules() -> None:
    assert slo_rules(VARIANTS[0]) == []
