"""Multi-window, multi-burn-rate SLO alerts for model services (Google SRE workbook, "Alerting on SLOs",
table 5-8), as Prometheus recording and alerting rules.

Two service level indicators per model service, each recorded as a ratio of bad requests per window:
- errors: API requests (``/v1/...``) answered with a server error. vLLM's OpenAI server counts every
  request in ``http_requests_total{handler, method, status}`` (prometheus-fastapi-instrumentator, status
  grouped as 2xx/4xx/5xx). Source: vllm-project/vllm @ v0.11.0, vllm/entrypoints/openai/api_server.py
  mount_metrics (Instrumentator().add()); trallnag/prometheus-fastapi-instrumentator metrics.default().
  The series carry no model label: the service's pods are selected by name (Deployment pods are
  ``<service>-<replicaset hash>-<suffix>``).
- latency: requests slower than the objective, from vLLM's ``vllm:e2e_request_latency_seconds``
  histogram (labels model_name = the served model name = the service name, engine). Source:
  vllm-project/vllm @ v0.11.0, vllm/v1/metrics/loggers.py.

An alert fires when both its long and its short window burn the budget faster than the factor: the long
window proves the burn is significant, the short one that it is still going on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..inference.metrics import VLLM_LATENCY_BUCKETS
from ..inference.slo import SLO_WINDOW_DAYS, ServiceLevelObjective
from .rule_scope import RuleScope

HTTP_REQUESTS = "http_requests_total"
VLLM_LATENCY_COUNT = "vllm:e2e_request_latency_seconds_count"
API_HANDLERS = "/v1/.+"  # the OpenAI API; /health, /metrics, /ping are excluded by vLLM itself
ERROR_RATIO = "eksml:model_request_errors:ratio_rate{window}"
SLOW_RATIO = "eksml:model_request_slow:ratio_rate{window}"


@dataclass(frozen=True)
class BurnRate:
    """``factor`` times the budget rate over ``long`` and over ``short``: with a 30-day objective, 14.4x
    for an hour spends 2% of the month's budget."""

    factor: float
    long: str
    short: str


@dataclass(frozen=True)
class BurnAlert:
    suffix: str
    severity: str
    rates: tuple[BurnRate, ...]
    meaning: str


# The workbook's recommended pairs for a 30-day objective: page on 2% of the budget in an hour or 5% in
# six hours, open a ticket on 10% in a day or in three days.
BURN_ALERTS = (
    BurnAlert(
        "FastBurn", "critical", (BurnRate(14.4, "1h", "5m"), BurnRate(6, "6h", "30m")), "pages: budget gone in days"
    ),
    BurnAlert("SlowBurn", "warning", (BurnRate(3, "1d", "2h"), BurnRate(1, "3d", "6h")), "ticket: budget gone early"),
)
WINDOWS = sorted({w for alert in BURN_ALERTS for rate in alert.rates for w in (rate.long, rate.short)})


@dataclass(frozen=True)
class Indicator:
    alert_prefix: str
    record: str
    what: str


ERRORS = Indicator("ModelErrorBudget", ERROR_RATIO, "server errors")
LATENCY = Indicator("ModelLatencyBudget", SLOW_RATIO, "requests slower than the objective")
SLO_ALERT_NAMES = tuple(f"{i.alert_prefix}{a.suffix}" for i in (ERRORS, LATENCY) for a in BURN_ALERTS)


def _promql_regex(*alternatives: str) -> str:
    # Inside a PromQL double-quoted string a regex backslash is written twice.
    return "|".join(re.escape(alternative) for alternative in alternatives).replace("\\", "\\\\")


def _error_ratio(namespace: str, service: str, window: str) -> str:
    requests = f'{HTTP_REQUESTS}{{namespace="{namespace}",pod=~"{service}-[^-]+-[^-]+",handler=~"{API_HANDLERS}"'
    total = f"sum by (namespace) (rate({requests}}}[{window}]))"
    errors = f'sum by (namespace) (rate({requests},status="5xx"}}[{window}]))'
    # No 5xx series exists until the first server error: then the ratio is 0, not absent.
    return f"({errors} or on (namespace) 0 * {total}) / {total}"


def _slow_ratio(namespace: str, service: str, slo: ServiceLevelObjective, window: str) -> str:
    # prometheus_client writes bucket bounds as floats ("30.0"); a server that normalises them may write "30".
    bound = _promql_regex(repr(float(slo.latency_seconds)), f"{slo.latency_seconds:g}")
    selector = f'namespace="{namespace}",model_name="{service}"'
    fast = f'sum by (namespace) (rate({VLLM_LATENCY_BUCKETS}{{{selector},le=~"{bound}"}}[{window}]))'
    total = f"sum by (namespace) (rate({VLLM_LATENCY_COUNT}{{{selector}}}[{window}]))"
    return f"1 - {fast} / {total}"


def _burn_expr(indicator: Indicator, alert: BurnAlert, budget: float, service: str) -> str:
    def over(window: str, factor: float) -> str:
        return f'{indicator.record.format(window=window)}{{service="{service}"}} > {factor * budget:.6g}'

    return " or ".join(f"({over(r.long, r.factor)} and {over(r.short, r.factor)})" for r in alert.rates)


def slo_rules(scope: RuleScope) -> list[dict[str, Any]]:
    """Recording rules (bad-request ratio per service and window) then the burn-rate alerts."""
    records: list[dict[str, Any]] = []
    alerts: list[dict[str, Any]] = []
    for service, slo in scope.service_objectives:
        labels = {"service": service}
        for window in WINDOWS:
            records.append(
                {
                    "record": ERROR_RATIO.format(window=window),
                    "expr": _error_ratio(scope.namespace, service, window),
                    "labels": labels,
                }
            )
            records.append(
                {
                    "record": SLOW_RATIO.format(window=window),
                    "expr": _slow_ratio(scope.namespace, service, slo, window),
                    "labels": labels,
                }
            )
        objectives = (
            (ERRORS, slo.error_budget, f"{slo.availability_target:.2%} of requests without a server error"),
            (LATENCY, slo.latency_budget, f"{slo.latency_target:.2%} of requests under {slo.latency_seconds:g} s"),
        )
        for indicator, budget, objective in objectives:
            for alert in BURN_ALERTS:
                alerts.append(
                    {
                        "alert": f"{indicator.alert_prefix}{alert.suffix}",
                        "expr": _burn_expr(indicator, alert, budget, service),
                        "for": "0m",  # the short window already resets the alert when the burn stops
                        "labels": {"severity": alert.severity, "cluster": scope.name, "service": service},
                        "annotations": {
                            "summary": (
                                f"Model service {service} burns its {SLO_WINDOW_DAYS}-day error budget "
                                f"({objective}) too fast: {{{{ $value | humanizePercentage }}}} {indicator.what} "
                                f"({alert.meaning})"
                            )
                        },
                    }
                )
    return records + alerts
