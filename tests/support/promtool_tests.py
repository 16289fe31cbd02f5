"""Writes `promtool test rules` files from the case tables (tests/support/rule_cases.py).

One rules file and one test file per alert and cluster variant: the alert rule (as rule_groups() makes it)
with the recording rules it reads, and a test per case. Annotations are compared only where a case gives
the expected summary; otherwise they are dropped from the copy under test (promtool compares all of them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .rule_cases import Case


def all_rules(groups: dict[str, Any]) -> list[dict[str, Any]]:
    return [rule for group in groups["groups"] for rule in group["rules"]]


def alert_names(groups: dict[str, Any]) -> list[str]:
    return list(dict.fromkeys(rule["alert"] for rule in all_rules(groups) if "alert" in rule))


def rules_under_test(groups: dict[str, Any], alert: str, *, keep_annotations: bool) -> list[dict[str, Any]]:
    """The alert's rules, after the recording rules their expressions read (evaluated first, in order)."""
    rules = all_rules(groups)
    alerts = [dict(rule) for rule in rules if rule.get("alert") == alert]
    if not keep_annotations:
        for rule in alerts:
            rule.pop("annotations", None)
    records = [rule for rule in rules if "record" in rule and any(rule["record"] in a["expr"] for a in alerts)]
    return records + alerts


def _duration_minutes(text: str) -> float:
    units = {"d": 1440.0, "h": 60.0, "m": 1.0, "s": 1 / 60}
    total, number = 0.0, ""
    for char in text:
        if char.isdigit() or char == ".":
            number += char
        else:
            total += float(number) * units[char]
            number = ""
    return total


def _test(case: Case, alert: str, static_labels: dict[str, str]) -> dict[str, Any]:
    checks: list[dict[str, Any]] = []
    if case.fires:
        expected: dict[str, Any] = {"exp_labels": {**case.labels, **static_labels}}
        if case.summary is not None:
            expected["exp_annotations"] = {"summary": case.summary}
        checks.append({"eval_time": case.at, "alertname": alert, "exp_alerts": [expected]})
        assert case.not_before is not None and _duration_minutes(case.not_before) < _duration_minutes(case.at)
        checks.append({"eval_time": case.not_before, "alertname": alert, "exp_alerts": []})
    else:
        checks.append({"eval_time": case.at, "alertname": alert, "exp_alerts": []})
    return {
        "interval": case.interval,
        "input_series": [{"series": s.text(), "values": s.values} for s in case.series],
        "alert_rule_test": checks,
    }


def write_alert_test(directory: Path, groups: dict[str, Any], alert: str, cases: list[Case]) -> Path:
    """The test file (with its rules file next to it) for one alert of one variant."""
    keep = any(case.summary is not None for case in cases)
    rules = rules_under_test(groups, alert, keep_annotations=keep)
    (rule,) = [r for r in rules if "alert" in r]  # one model service per variant: one rule per alert
    rules_file = directory / f"{alert}.rules.yml"
    rules_file.write_text(yaml.safe_dump({"groups": [{"name": f"{alert}-under-test", "rules": rules}]}))
    intervals = sorted({case.interval for case in cases}, key=_duration_minutes)
    test_file = directory / f"{alert}.test.yml"
    document = {
        "rule_files": [rules_file.name],
        "evaluation_interval": intervals[0],
        "tests": [_test(case, alert, rule["labels"]) for case in cases],
    }
    test_file.write_text(yaml.safe_dump(document, sort_keys=False))
    return test_file
