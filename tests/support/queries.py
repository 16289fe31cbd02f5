"""Every PromQL expression eks-ml produces, with where it came from and the cluster it runs against.

Sources: the alerting and recording rules (rule_groups) and the Grafana dashboards (every ``expr`` found in the
dashboard JSON, so the collection does not depend on how the dashboards module builds them) for every kind of
cluster the observability add-on can watch, and the prometheus-adapter rule behind the model servers' HPAs.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

from eks_ml.cluster.system_nodes import SystemPlacement
from eks_ml.inference.metrics import adapter_values
from eks_ml.inference.slo import ServiceLevelObjective
from eks_ml.observability import Backend, Thresholds, dashboard
from eks_ml.observability.prometheus_alerts import rule_groups
from eks_ml.observability.target import ObservedCluster
from eks_ml.placement import ClusterModel

from .promql import adapter_query, analyse, grafana_interpolated
from .rule_variants import SERVICE

DEFAULT_THRESHOLDS = Thresholds()
AMP = "Amazon Managed Service for Prometheus (managed scraper)"
IN_CLUSTER = "the inference cluster's Prometheus (prometheus chart)"


@dataclass(frozen=True)
class Query:
    """``kind``: alert, record, dashboard or adapter; ``cluster``: None for the adapter rule, which reads the
    inference cluster's own Prometheus whatever the add-on watches."""

    kind: str
    source: str
    expr: str
    cluster: ObservedCluster | None
    scraper: str


def observed(workload: str, *, nvidia: bool, neuron: bool, efa: bool) -> ObservedCluster:
    """The add-on's view of a cluster; rules and dashboards read only these flags, names and namespace."""
    name = f"ml-{workload}"
    # Priced types of each vendor (the idle-cost rules record their prices) and, for inference, one model
    # service with the default objectives (its SLO rules).
    types = {"training": ("p5.48xlarge", "trn1.32xlarge"), "inference": ("g6e.xlarge", "inf2.xlarge")}[workload]
    instance_types = tuple(t for t, vendor in zip(types, (nvidia, neuron), strict=True) if vendor)
    return ObservedCluster(
        cast(Any, None),
        name,
        workload,
        workload,
        nvidia,
        neuron,
        efa,
        None,
        ClusterModel(name),
        SystemPlacement({}),
        instance_types=instance_types,
        service_objectives=((SERVICE, ServiceLevelObjective()),) if workload == "inference" else (),
    )


def cluster_variants() -> list[ObservedCluster]:
    """Every hardware mix: training with or without NVIDIA GPUs, Neuron devices and EFA; inference with NVIDIA
    and/or Neuron pools (a model server runs on one or the other, and inference pods get no EFA devices)."""
    training = [
        observed("training", nvidia=n, neuron=t, efa=e) for n, t, e in itertools.product((True, False), repeat=3)
    ]
    inference = [
        observed("inference", nvidia=n, neuron=t, efa=False) for n, t in ((True, False), (False, True), (True, True))
    ]
    return training + inference


def describe(cluster: ObservedCluster) -> str:
    hardware = [
        flag for flag, on in (("NVIDIA", cluster.nvidia), ("Neuron", cluster.neuron), ("EFA", cluster.efa)) if on
    ]
    return f"{cluster.workload} ({'+'.join(hardware) or 'CPU only'})"


def rule_queries(cluster: ObservedCluster, thresholds: Thresholds = DEFAULT_THRESHOLDS) -> list[Query]:
    found = []
    for group in rule_groups(cluster, thresholds)["groups"]:
        for rule in group["rules"]:
            kind, name = ("alert", rule["alert"]) if "alert" in rule else ("record", rule["record"])
            found.append(Query(kind, f"{kind} {name} [{describe(cluster)}]", rule["expr"], cluster, AMP))
    return found


def recorded_series(cluster: ObservedCluster, thresholds: Thresholds = DEFAULT_THRESHOLDS) -> frozenset[str]:
    """The series eks-ml's own recording rules write: emitted on the cluster like an exporter's."""
    return frozenset(
        rule["record"]
        for group in rule_groups(cluster, thresholds)["groups"]
        for rule in group["rules"]
        if "record" in rule
    )


def as_json(model: Any) -> Any:
    """A dashboard model as plain JSON (a dict, or an SDK object serialised with the SDK's own encoder)."""
    if isinstance(model, dict):
        return json.loads(json.dumps(model))
    from grafana_foundation_sdk.cog.encoder import JSONEncoder  # type: ignore[import-not-found]

    return json.loads(json.dumps(model, cls=JSONEncoder))


def expressions_in(model: Any, context: str = "") -> Iterator[tuple[str, str]]:
    """(panel title, expr) for every string ``expr`` in the JSON, skipping queries whose own data source is not
    Prometheus."""
    if isinstance(model, dict):
        title = model.get("title") if isinstance(model.get("title"), str) else context
        datasource = model.get("datasource")
        foreign = isinstance(datasource, dict) and datasource.get("type") not in (None, "prometheus")
        if isinstance(model.get("expr"), str) and not foreign:
            yield title, model["expr"]
        for value in model.values():
            yield from expressions_in(value, title)
    elif isinstance(model, list):
        for item in model:
            yield from expressions_in(item, context)


def dashboard_queries(cluster: ObservedCluster) -> list[Query]:
    found = []
    for backend in Backend:
        model = as_json(dashboard(cluster, backend))
        for panel, expr in expressions_in(model):
            source = f"dashboard {model.get('title')!r} ({backend.value}) panel {panel!r} [{describe(cluster)}]"
            found.append(Query("dashboard", source, grafana_interpolated(expr), cluster, AMP))
    return found


def adapter_queries(namespace: str = "inference") -> list[Query]:
    """The adapter's discovery query as written and its metrics query as the adapter sends it for two pods."""
    found = []
    for index, rule in enumerate(adapter_values(SystemPlacement({}))["rules"]["custom"]):
        source = f"prometheus-adapter rule {index}"
        found.append(Query("adapter", f"{source} seriesQuery", rule["seriesQuery"], None, IN_CLUSTER))
        (series,) = {selector.metric for selector in analyse(rule["seriesQuery"]).selectors}
        overrides = {label: target["resource"] for label, target in rule["resources"]["overrides"].items()}
        expr = adapter_query(rule["metricsQuery"], series, overrides, namespace)
        found.append(Query("adapter", f"{source} metricsQuery", expr, None, IN_CLUSTER))
    return found


def all_queries() -> list[Query]:
    found: list[Query] = []
    for cluster in cluster_variants():
        found += rule_queries(cluster) + dashboard_queries(cluster)
    return found + adapter_queries()


def figures() -> str:
    """The counts the README quotes: expressions parsed and metric names matched, per source and exporter."""
    from .exporter_series import VLLM, VLLM_NEURON, exporters_on

    queries = all_queries()
    lines = [
        f"{len(queries)} expression instances ({len({q.expr for q in queries})} distinct) over "
        f"{len(cluster_variants())} cluster variants"
    ]
    names: dict[str, set[str]] = {}
    owners: dict[str, set[str]] = {}
    selectors = 0
    for query in queries:
        exporters = exporters_on(query.cluster) if query.cluster else (VLLM, VLLM_NEURON)
        for selector in analyse(query.expr).selectors:
            selectors += 1
            names.setdefault(query.kind, set()).add(selector.metric)
            for exporter in exporters:
                if selector.metric in exporter.series:
                    owners.setdefault(exporter.name, set()).add(selector.metric)
    for kind, read in sorted(names.items()):
        count = sum(1 for q in queries if q.kind == kind)
        lines.append(
            f"  {kind}: {count} instances, {len({q.expr for q in queries if q.kind == kind})} distinct, "
            f"{len(read)} metric names"
        )
    lines.append(f"{selectors} selectors over {len(set().union(*names.values()))} metric names, by exporter:")
    lines += [f"  {name}: {len(read)}" for name, read in sorted(owners.items())]
    return "\n".join(lines)


if __name__ == "__main__":
    print(figures())
