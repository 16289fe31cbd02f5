"""PromQL read by a real parser (promql-parser: Python bindings of GreptimeTeam's Rust parser, Prometheus
2.45 grammar): what series an expression selects, with which label matchers, and which labels it groups or
matches on.

Grafana's variables and prometheus-adapter's template placeholders are substituted first, the way those tools
do before they send the query, so the parser sees what Prometheus will.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import promql_parser as pp

# MatchOp values are not hashable: keyed by their repr.
OPERATORS = {"MatchOp.Equal": "=", "MatchOp.NotEqual": "!=", "MatchOp.Re": "=~", "MatchOp.NotRe": "!~"}


class PromQLError(ValueError):
    """An expression the parser refuses, or one these checks cannot read (a metric name matched by regex)."""


@dataclass(frozen=True)
class Matcher:
    label: str
    op: str
    value: str


@dataclass(frozen=True)
class Selector:
    """One vector selector: the series name it reads and its other label matchers."""

    metric: str
    matchers: tuple[Matcher, ...]


@dataclass(frozen=True)
class Analysis:
    """``grouping``: labels named in by/without/on/ignoring/group_left/group_right; ``introduced``: labels
    label_replace/label_join create (they exist on the result without any exporter setting them)."""

    selectors: tuple[Selector, ...]
    grouping: frozenset[str]
    introduced: frozenset[str]


def parse(expr: str) -> pp.Expr:
    try:
        return pp.parse(expr)
    except (ValueError, RuntimeError) as error:
        raise PromQLError(f"not PromQL: {error}: {expr!r}") from error


def analyse(expr: str) -> Analysis:
    """Walks the parsed expression; raises PromQLError if it does not parse."""
    selectors: list[Selector] = []
    grouping: set[str] = set()
    introduced: set[str] = set()

    def visit(node: pp.Expr) -> None:
        if isinstance(node, pp.VectorSelector):
            selectors.append(_selector(node, expr))
        elif isinstance(node, pp.AggregateExpr) and node.modifier is not None:
            grouping.update(node.modifier.labels)
        elif isinstance(node, pp.BinaryExpr) and node.modifier is not None:
            if node.modifier.matching is not None:
                grouping.update(node.modifier.matching.labels)
            grouping.update(node.modifier.group_labels or ())
        elif isinstance(node, pp.Call) and node.func.name in ("label_replace", "label_join"):
            destination = node.args[1]
            if isinstance(destination, pp.StringLiteral):
                introduced.add(destination.val)

    pp.walk(parse(expr), visit)
    return Analysis(tuple(selectors), frozenset(grouping), frozenset(introduced))


def _selector(node: pp.VectorSelector, expr: str) -> Selector:
    matchers = [Matcher(m.name, OPERATORS[repr(m.op)], m.value) for m in node.matchers.matchers]
    if node.matchers.or_matchers:
        raise PromQLError(f"`or` inside a selector is not read by these checks: {expr!r}")
    name = node.name
    for matcher in [m for m in matchers if m.label == "__name__"]:
        if matcher.op != "=":
            raise PromQLError(f"a metric name matched with {matcher.op} cannot be checked against exporters: {expr!r}")
        name = matcher.value
        matchers.remove(matcher)
    if name is None:
        raise PromQLError(f"a selector without a metric name: {expr!r}")
    return Selector(name, tuple(matchers))


# --- Grafana ---------------------------------------------------------------------------------------------------
# Grafana interpolates a panel query before sending it: $__rate_interval and friends become durations, dashboard
# variables their values. Durations get a fixed stand-in; other variables a marker value that the label-value
# checks skip (the value is chosen in the dashboard, not by eks-ml).
GRAFANA_VALUE = "__grafana_variable__"
_GRAFANA_DURATIONS = ("__rate_interval", "__interval", "__range", "__range_s", "__range_ms", "__interval_ms")
_GRAFANA_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)(?::\w+)?\]\]")


def grafana_interpolated(expr: str) -> str:
    def substitute(match: re.Match[str]) -> str:
        name = next(group for group in match.groups() if group)
        if name in ("__range_s", "__range_ms", "__interval_ms"):
            return "300"
        return "5m" if name in _GRAFANA_DURATIONS else GRAFANA_VALUE

    return _GRAFANA_VARIABLE.sub(substitute, expr)


# --- prometheus-adapter ------------------------------------------------------------------------------------------
# metricsQuery is a Go template with << >> delimiters. For a request about pods in a namespace the adapter fills
# .Series (the series name), .LabelMatchers (the group-resource's label =~ the objects' names, plus the
# namespace label) and .GroupBy (the group-resource label): kubernetes-sigs/prometheus-adapter @ v0.12.0,
# docs/config.md, "Querying". Any other template action is refused here rather than guessed.
_ADAPTER_ACTION = re.compile(r"<<\s*(.*?)\s*>>")


def adapter_query(template: str, series: str, resource_labels: Mapping[str, str], namespace: str) -> str:
    """``resource_labels``: the rule's resources.overrides (label -> resource); the query asks for two pods."""
    pod_label = next(label for label, resource in resource_labels.items() if resource == "pod")
    namespace_label = next(label for label, resource in resource_labels.items() if resource == "namespace")
    fields = {
        ".Series": series,
        ".LabelMatchers": f'{pod_label}=~"server-0|server-1",{namespace_label}="{namespace}"',
        ".GroupBy": pod_label,
    }

    def substitute(match: re.Match[str]) -> str:
        action = match.group(1)
        if action not in fields:
            raise PromQLError(f"prometheus-adapter template action <<{action}>> is not one these checks fill")
        return fields[action]

    return _ADAPTER_ACTION.sub(substitute, template)
