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
from .support.releases import Renderer, ignored_keys


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
