"""The Prometheus backend's rules and alert manager, checked by the real Prometheus tools.

- `promtool check rules` on every rule group the add-on can produce: each cluster variant
  (tests/support/rule_variants.py: training with NVIDIA, Neuron or EFA; inference with NVIDIA or Neuron)
  and the rules actually synthesized into the Prometheus stacks (AWS::APS::RuleGroupsNamespace Data).
- `promtool test rules`: every alert of every variant fires on its fault (after its ``for:``, not before)
  and stays silent on healthy series (tests/support/rule_cases.py), and no alert is without cases.
- `amtool check-config` on the workspace's alert manager definition.

The CloudWatch backend has no PromQL: its alarms are CloudWatch metric alarms on Container Insights
metrics (eks_ml/observability/cloudwatch_alerts.py) and are not covered here.

promtool and amtool come from `make prom-tools` (Debian's prometheus 2.42 and prometheus-alertmanager 0.25,
unpacked into .tools/) or PATH; without them these tests skip with the reason.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from eks_ml.cluster.system_nodes import SystemPlacement
from eks_ml.observability import Thresholds
from eks_ml.observability.cost_rules import ACCELERATOR_PRICE, NODE_INSTANCE_TYPE_LABEL, cost_rules
from eks_ml.observability.prometheus import alert_manager_definition, kube_state_metrics_values
from eks_ml.observability.prometheus_alerts import rule_groups

from .support.promtool import require_tool, run_tool
from .support.promtool_tests import alert_names, all_rules, write_alert_test
from .support.rule_cases import CASES, Case, missing_cases, silence
from .support.rule_variants import VARIANTS, Variant
from .support.synth import Synthesis, of_type

STACKS = ("TrainingObservability", "InferenceObservability")
VARIANT_IDS = [variant.name for variant in VARIANTS]


def groups_of(variant: Variant) -> dict[str, Any]:
    return rule_groups(variant, Thresholds())


def write_rules(directory: Path, groups: dict[str, Any]) -> Path:
    path = directory / "rules.yml"
    path.write_text(yaml.safe_dump(groups))
    return path


def check_rules(path: Path) -> tuple[bool, str]:
    result = run_tool("promtool", "check", "rules", path)
    return result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("variant", VARIANTS, ids=VARIANT_IDS)
def test_every_variants_rule_groups_pass_promtool_check(variant: Variant, tmp_path: Path) -> None:
    ok, output = check_rules(write_rules(tmp_path, groups_of(variant)))
    assert ok, output
    names = [group["name"] for group in groups_of(variant)["groups"]]
    assert names == [f"{variant.name}-{kind}" for kind in ("ml", "idle-cost", "slo")][: len(names)]


@pytest.mark.parametrize("stack", STACKS)
def test_synthesized_rule_groups_pass_promtool_check(prometheus_synth: Synthesis, stack: str, tmp_path: Path) -> None:
    require_tool("promtool")
    (namespace,) = of_type(prometheus_synth.templates[stack], "AWS::APS::RuleGroupsNamespace").values()
    path = tmp_path / "rules.yml"
    path.write_text(namespace["Properties"]["Data"])
    ok, output = check_rules(path)
    assert ok, output
    assert "SUCCESS" in output


def test_promtool_check_rejects_a_broken_expression(tmp_path: Path) -> None:
    groups = copy.deepcopy(groups_of(VARIANTS[0]))
    groups["groups"][0]["rules"][0]["expr"] = "rate(DCGM_FI_DEV_XID_ERRORS[5m]"  # unclosed
    ok, output = check_rules(write_rules(tmp_path, groups))
    assert not ok and "unclosed left parenthesis" in output


def run_alert_tests(directory: Path, groups: dict[str, Any], table: dict[str, Any], variant: Variant) -> str:
    """Runs every alert's cases in one promtool call; returns the failure output ('' when all pass)."""
    files = [write_alert_test(directory, groups, alert, table[alert](variant)) for alert in alert_names(groups)]
    result = run_tool("promtool", "test", "rules", *files)
    return "" if result.returncode == 0 else result.stdout + result.stderr


@pytest.mark.parametrize("variant", VARIANTS, ids=VARIANT_IDS)
def test_every_alert_fires_on_its_fault_and_stays_silent_when_healthy(variant: Variant, tmp_path: Path) -> None:
    require_tool("promtool")
    assert run_alert_tests(tmp_path, groups_of(variant), CASES, variant) == ""


def _rule(groups: dict[str, Any], alert: str) -> dict[str, Any]:
    return next(rule for group in groups["groups"] for rule in group["rules"] if rule.get("alert") == alert)


def test_alert_tests_fail_on_a_rule_that_misses_the_fault_or_ignores_its_for(tmp_path: Path) -> None:
    require_tool("promtool")
    variant = VARIANTS[0]
    blind = copy.deepcopy(groups_of(variant))
    _rule(blind, "GpuXidError")["expr"] = "DCGM_FI_DEV_XID_ERRORS > 1000"
    (tmp_path / "blind").mkdir()
    output = run_alert_tests(tmp_path / "blind", blind, CASES, variant)
    assert "alertname: GpuXidError" in output and "FAILED" in output
    hasty = copy.deepcopy(groups_of(variant))
    _rule(hasty, "GpuThermalThrottling")["for"] = "0m"  # fires before its 5 minutes
    (tmp_path / "hasty").mkdir()
    output = run_alert_tests(tmp_path / "hasty", hasty, CASES, variant)
    assert "alertname: GpuThermalThrottling, time: 9m" in output


def test_alert_tests_fail_on_a_silence_case_that_shows_a_fault(tmp_path: Path) -> None:
    require_tool("promtool")
    variant = VARIANTS[0]
    table = dict(CASES)
    noisy = [case for case in CASES["GpuXidError"](variant) if case.fires][0]
    table["GpuXidError"] = lambda _: [noisy, silence(noisy.series, noisy.at)]
    output = run_alert_tests(tmp_path, groups_of(variant), table, variant)
    assert "alertname: GpuXidError, time: 15m" in output


def produced_alerts() -> dict[str, Variant]:
    """Every alert name any variant produces, with the first variant producing it."""
    found: dict[str, Variant] = {}
    for variant in VARIANTS:
        for alert in alert_names(groups_of(variant)):
            found.setdefault(alert, variant)
    return found


def test_every_alert_has_a_fire_and_a_silence_case() -> None:
    alerts = produced_alerts()
    assert missing_cases(alerts, CASES) == {}
    assert len(alerts) == len(CASES)  # no case table for an alert that no longer exists


def test_an_alert_added_without_cases_is_reported() -> None:
    alerts = {**produced_alerts(), "GpuFellOffTheBus": VARIANTS[0]}
    assert missing_cases(alerts, CASES) == {"GpuFellOffTheBus": "no fire case"}
    only_fire: dict[str, Any] = {**CASES, "GpuXidError": lambda v: [c for c in CASES["GpuXidError"](v) if c.fires]}
    assert missing_cases(produced_alerts(), only_fire) == {"GpuXidError": "no silence case"}


def test_fire_cases_say_when_they_must_not_fire_yet() -> None:
    for alert, variant in produced_alerts().items():
        for case in CASES[alert](variant):
            assert isinstance(case, Case)
            assert not case.fires or case.not_before is not None, alert


SNS_ARN = "arn:aws:sns:us-west-2:123456789012:training-alerts"


def alertmanager_config(definition: str) -> str:
    return str(yaml.safe_load(definition)["alertmanager_config"])


def test_alert_manager_definition_passes_amtool(tmp_path: Path) -> None:
    require_tool("amtool")
    path = tmp_path / "alertmanager.yml"
    path.write_text(alertmanager_config(alert_manager_definition(SNS_ARN, "us-west-2")))
    result = run_tool("amtool", "check-config", path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Found:" in result.stdout and "1 receivers" in result.stdout


def test_amtool_rejects_a_route_to_a_missing_receiver(tmp_path: Path) -> None:
    require_tool("amtool")
    config = yaml.safe_load(alertmanager_config(alert_manager_definition(SNS_ARN, "us-west-2")))
    config["route"]["receiver"] = "pagerduty"
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config))
    result = run_tool("amtool", "check-config", path)
    assert result.returncode != 0
    assert 'undefined receiver "pagerduty"' in result.stdout + result.stderr


@pytest.mark.parametrize("stack", STACKS)
def test_every_synthesized_alert_has_cases(prometheus_synth: Synthesis, stack: str) -> None:
    (namespace,) = of_type(prometheus_synth.templates[stack], "AWS::APS::RuleGroupsNamespace").values()
    synthesized = alert_names(yaml.safe_load(namespace["Properties"]["Data"]))
    assert set(synthesized) <= set(produced_alerts())
    assert "IdleGpusCost" in synthesized


def test_idle_cost_reads_the_labels_kube_state_metrics_is_allowed_to_export() -> None:
    # kube-state-metrics names a Kubernetes label label_<key, non-alphanumerics as _> (its --metric-labels-allowlist).
    values = kube_state_metrics_values(SystemPlacement({}))
    exported = {
        f"{resource}:label_{re.sub('[^a-zA-Z0-9_]', '_', key)}"
        for entry in values["metricLabelsAllowlist"]
        for resource, keys in [entry.rstrip("]").split("=[")]
        for key in keys.split(",")
    }
    assert f"nodes:{NODE_INSTANCE_TYPE_LABEL}" in exported
    # The per-job views of the dashboards: model service and TrainJob (its JobSet's name) of a pod.
    assert {"pods:label_app_kubernetes_io_name", "pods:label_jobset_sigs_k8s_io_jobset_name"} <= exported
    rules = all_rules(groups_of(VARIANTS[0]))
    assert any(NODE_INSTANCE_TYPE_LABEL in rule.get("expr", "") for rule in rules)


def test_prices_are_one_accelerator_of_each_type_from_the_plan_table() -> None:
    rows = {(r["labels"]["instance_type"], r["labels"]["resource"]): r["expr"] for r in price_rules(VARIANTS[1])}
    # trn1.32xlarge: 21.50 USD per hour, 16 Neuron devices, 32 NeuronCores.
    assert rows == {
        ("trn1.32xlarge", "aws.amazon.com/neuron"): "vector(1.343750)",
        ("trn1.32xlarge", "aws.amazon.com/neuroncore"): "vector(0.671875)",
    }
    # A type without a list price (trn2: Capacity Blocks) gets no price row and no cost alert.
    unpriced = Variant("trn2", "training", "training", False, True, True, ("trn2.48xlarge",))
    assert cost_rules(unpriced) == []


def price_rules(variant: Variant) -> list[dict[str, Any]]:
    return [rule for rule in cost_rules(variant) if rule.get("record") == ACCELERATOR_PRICE]


def test_the_readme_figures_are_the_tests(prometheus_synth: Synthesis) -> None:
    readme = " ".join((Path(__file__).parents[1] / "README.md").read_text().split())
    variant_groups = [groups_of(variant) for variant in VARIANTS]
    pairs = [(v, alert) for v, groups in zip(VARIANTS, variant_groups, strict=True) for alert in alert_names(groups)]
    cases = [case for v, alert in pairs for case in CASES[alert](v)]
    synthesized = sum(
        len(yaml.safe_load(ns["Properties"]["Data"])["groups"])
        for stack in STACKS
        for ns in of_type(prometheus_synth.templates[stack], "AWS::APS::RuleGroupsNamespace").values()
    )
    figures = {
        "rule groups of the five cluster variants": sum(len(g["groups"]) for g in variant_groups),
        "groups synthesized": synthesized,
        "alerts have": len(produced_alerts()),
        "alert-and-variant pairs": len(pairs),
        "fire cases": sum(case.fires for case in cases),
        "silence cases": sum(not case.fires for case in cases),
    }
    quoted = {
        "rule groups of the five cluster variants": r"all (\d+) rule groups of the five cluster variants",
        "groups synthesized": r"on the (\d+) groups synthesized",
        "alerts have": r"All (\d+) alerts have",
        "alert-and-variant pairs": r"(\d+) alert-and-variant pairs",
        "fire cases": r"with (\d+) fire cases",
        "silence cases": r"and (\d+) silence cases",
    }
    found = {key: int(m.group(1)) if (m := re.search(pattern, readme)) else None for key, pattern in quoted.items()}
    assert found == figures
