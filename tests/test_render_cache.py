"""The test run's helm render cache (tests/support/charts.py) and the real-chart gate's fresh render.

The cache may only save time: a render it answers is the render helm would give for the same chart, values and
flags, and a gate that must see helm run again (randomly generated certificates) gets a new render.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from eks_ml.helm import AWS_LOAD_BALANCER_CONTROLLER, DCGM_EXPORTER, HelmChartPin

from .support import charts
from .support.releases import Renderer, _DocumentComparison, ignored_keys


def _need(pin: HelmChartPin) -> None:
    if charts.chart_archive(pin) is None:
        pytest.skip(charts.HOW_TO_ENABLE)


def _counting_helm(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    calls: list[list[str]] = []
    run = subprocess.run

    def counted(command: list[str], **kwargs: Any) -> Any:
        calls.append(command)
        return run(command, **kwargs)

    monkeypatch.setattr(charts.subprocess, "run", counted)
    return calls


def test_a_render_is_reused_only_for_the_same_chart_values_and_flags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _need(DCGM_EXPORTER)
    monkeypatch.setattr(charts, "_render_cache", [])
    charts.set_render_cache(tmp_path)
    calls = _counting_helm(monkeypatch)
    values = {"serviceMonitor": {"enabled": False}}
    first = charts.render(DCGM_EXPORTER, values)
    assert charts.render(DCGM_EXPORTER, dict(values)) == first
    assert len(calls) == 1  # the second came from the cache
    assert len(list(tmp_path.glob("*.yaml"))) == 1
    # Other values, other flags, or a fresh render: helm runs again.
    assert charts.render(DCGM_EXPORTER, {"serviceMonitor": {"enabled": True}}) != first
    charts.render(DCGM_EXPORTER, values, include_crds=True)
    assert charts.render(DCGM_EXPORTER, values, fresh=True) == first
    assert len(calls) == 4
    charts.set_render_cache(None)
    charts.render(DCGM_EXPORTER, values)
    assert len(calls) == 5  # without a cache directory every call runs helm


def test_an_ignored_key_is_found_in_a_chart_that_generates_certificates() -> None:
    # The load balancer controller's chart makes a new webhook CA and certificate on every render. The gate
    # masks those fields by rendering twice; were the second render a cached copy of the first, no field would
    # be masked, every changed-value render would differ by its certificates, and no key could ever be found
    # ignored for this chart.
    _need(AWS_LOAD_BALANCER_CONTROLLER)
    values = {"clusterName": "c", "notAValueOfTheChart": "x"}
    assert ignored_keys(AWS_LOAD_BALANCER_CONTROLLER, values, Renderer()) == ["notAValueOfTheChart"]


def test_the_per_document_comparison_finds_an_ignored_key(monkeypatch: pytest.MonkeyPatch) -> None:
    # The gate parses only the documents a value changes (kueue renders ~1.7 MB, its CRDs are templates) and
    # still tells an ignored key from one the chart reads: every verdict below came from that comparison.
    _need(DCGM_EXPORTER)
    verdicts: list[bool | None] = []
    same = _DocumentComparison.same

    def recorded(self: _DocumentComparison, documents: list[str] | str) -> bool | None:
        verdicts.append(same(self, documents))
        return verdicts[-1]

    monkeypatch.setattr(_DocumentComparison, "same", recorded)
    values = {"mapPodsMetrics": True, "serviceMonitor": {"enabled": False}, "image": {"pullPolicy": "Always"}}
    assert ignored_keys(DCGM_EXPORTER, values, Renderer()) == ["mapPodsMetrics"]
    # mapPodsMetrics: neither removed nor changed does it change a document; image.pullPolicy: its removal
    # changes the DaemonSet's document; serviceMonitor.enabled: its removal adds a document (None: whole parse).
    assert sorted(verdicts, key=str) == [False, None, True, True]


def test_the_per_document_comparison_answers_only_when_the_objects_stay_aligned() -> None:
    base = ["---\na: 1\n", "---\nb: 1\n", "---\n# empty\n"]
    comparison = _DocumentComparison(base, [[{"a": 1}], [{"b": 1}], []])
    assert comparison.same(list(base)) is True
    assert comparison.same(["---\na: 1\n", "---\nb: 2\n", "---\n# empty\n"]) is False
    assert comparison.same(["---\na: 1\n", "---\nb:   1\n", "---\n# empty\n"]) is True  # other text, same object
    # A document gains an object, or one is missing, or helm failed: the caller parses the whole render.
    assert comparison.same(["---\na: 1\n", "---\nb: 1\n", "---\nc: 1\n"]) is None
    assert comparison.same(base[:2]) is None
    assert comparison.same("render failed: boom") is None


def test_a_shared_result_is_reused_only_for_the_same_kind_and_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(charts, "_render_cache", [])
    charts.set_render_cache(tmp_path)
    monkeypatch.setattr(charts, "helm_binary", lambda: tmp_path / "helm")  # part of every key; need not exist
    computed: list[str] = []

    def verdict(value: str) -> Any:
        return lambda: computed.append(value) or [value]

    assert charts.shared_result("ignored-keys", ["kueue", "a"], verdict("first")) == ["first"]
    assert charts.shared_result("ignored-keys", ["kueue", "a"], verdict("again")) == ["first"]  # from the file
    assert charts.shared_result("ignored-keys", ["kueue", "b"], verdict("other key")) == ["other key"]
    assert charts.shared_result("other-gate", ["kueue", "a"], verdict("other kind")) == ["other kind"]
    charts.set_render_cache(None)
    assert charts.shared_result("ignored-keys", ["kueue", "a"], verdict("no cache")) == ["no cache"]
    assert computed == ["first", "other key", "other kind", "no cache"]
