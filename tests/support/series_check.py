"""Does a query read series that exist? Each problem is a sentence naming the query, the series or label and
what the installed exporters offer instead; an empty list means the query passed."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .exporter_series import Exporter
from .promql import GRAFANA_VALUE, Selector, analyse


@dataclass(frozen=True)
class Emitted:
    """What a Prometheus holds for one cluster: the installed exporters' series, the labels its scrape job adds
    to every series (target labels, external labels), and the series eks-ml's recording rules write (their
    labels are not tabled: any label passes on them)."""

    exporters: tuple[Exporter, ...]
    target_labels: frozenset[str]
    recorded: frozenset[str] = frozenset()

    def owner(self, metric: str) -> Exporter | None:
        return next((exporter for exporter in self.exporters if metric in exporter.series), None)

    def emits(self, metric: str) -> bool:
        return metric in self.recorded or self.owner(metric) is not None


def has_label(labels: Iterable[str], label: str) -> bool:
    return any(fnmatch.fnmatchcase(label, pattern) for pattern in labels)


def selector_problems(source: str, selector: Selector, emitted: Emitted) -> list[str]:
    if selector.metric in emitted.recorded:
        return []
    exporter = emitted.owner(selector.metric)
    if exporter is None:
        installed = ", ".join(f"{e.name} {e.version}" for e in emitted.exporters)
        return [f"{source}: reads {selector.metric!r}, which no exporter installed there emits ({installed})"]
    labels = exporter.series[selector.metric] | emitted.target_labels
    problems = []
    for matcher in selector.matchers:
        if not has_label(labels, matcher.label):
            problems.append(
                f"{source}: matches {matcher.label!r} on {selector.metric!r}, a label {exporter.name} "
                f"{exporter.version} does not set there (it has: {', '.join(sorted(labels))})"
            )
            continue
        known = exporter.values.get(f"{selector.metric}:{matcher.label}", exporter.values.get(matcher.label))
        if known is None or GRAFANA_VALUE in matcher.value or matcher.value == "":
            continue
        if matcher.op in ("=", "!="):
            matched = matcher.value in known
        else:
            matched = any(re.fullmatch(matcher.value, value) for value in known)
        if not matched:
            problems.append(
                f"{source}: {selector.metric}{{{matcher.label}{matcher.op}{matcher.value!r}}} matches no value "
                f"{exporter.name} {exporter.version} gives {matcher.label!r} ({', '.join(sorted(known))})"
            )
    return problems


def query_problems(source: str, expr: str, emitted: Emitted) -> list[str]:
    """Every selector reads an emitted series with labels it has; every label grouped or matched on exists on
    at least one series the expression reads (or is made by label_replace)."""
    analysis = analyse(expr)
    problems = [problem for selector in analysis.selectors for problem in selector_problems(source, selector, emitted)]
    if problems or any(s.metric in emitted.recorded for s in analysis.selectors):
        return problems
    available = set(emitted.target_labels) | analysis.introduced
    for selector in analysis.selectors:
        exporter = emitted.owner(selector.metric)
        assert exporter is not None
        available |= exporter.series[selector.metric]
    for label in sorted(analysis.grouping):
        if not has_label(available, label):
            problems.append(f"{source}: groups or matches on {label!r}, which none of the series it reads has")
    return problems


def target_labels(scrape_config: Mapping[str, object]) -> frozenset[str]:
    """Labels a Prometheus scrape configuration puts on every series: job, instance, its relabelling's
    target labels (not the __ internal ones) and the external labels."""
    labels = {"job", "instance"}
    for job in scrape_config.get("scrape_configs", []):  # type: ignore[attr-defined]
        for rule in job.get("relabel_configs", []):
            label = rule.get("target_label")
            if label and not label.startswith("__"):
                labels.add(label)
    labels |= set(scrape_config.get("global", {}).get("external_labels", {}))  # type: ignore[attr-defined]
    return frozenset(labels)
