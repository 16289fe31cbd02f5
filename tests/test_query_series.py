"""Every PromQL expression eks-ml produces parses, and reads series that an exporter installed on that cluster
emits in its pinned version, with labels (and label values) that exporter really sets.

Expressions: alerting and recording rules and Grafana dashboards for every hardware mix of both cluster kinds,
and the prometheus-adapter rule behind the model servers' HPAs (tests/support/queries.py). Series: the tables
of tests/support/exporter_series.py, each with its upstream source; the pins they were read at are checked
here so that a version bump fails until the table is reviewed.
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import tarfile
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import pytest
import yaml

from eks_ml import helm
from eks_ml.cluster.system_nodes import SystemPlacement
from eks_ml.inference.metrics import QUEUE_METRIC, adapter_values
from eks_ml.inference.model_service import VLLM_NEURON_IMAGE, VLLM_NVIDIA_IMAGE
from eks_ml.k8s.dcgm_counters import COUNTERS, counters_csv
from eks_ml.k8s.neuron_monitor import IMAGE as NEURON_MONITOR_IMAGE
from eks_ml.observability import prometheus_alerts
from eks_ml.observability.prometheus import EFA_COUNTER_METRIC, EFA_TEXTFILE_SCRIPT, scrape_configuration
from eks_ml.observability.target import ObservedCluster

from .support import charts
from .support.exporter_series import (
    DCGM_DOCUMENTED_FIELDS,
    DCGM_POD_LABELS,
    DCGM_VERSION,
    EFA_COUNTERS,
    EFA_PORT_COUNTERS,
    KUBE_STATE_METRICS_VERSION,
    NEURON_MONITOR_VERSION,
    VLLM,
    VLLM_NEURON,
    VLLM_NEURON_VERSION,
    VLLM_VERSION,
    Exporter,
    allowlist,
    dcgm_exporter,
    exporters_on,
    kube_state_metrics,
)
from .support.promql import PromQLError, analyse
from .support.queries import (
    IN_CLUSTER,
    Query,
    adapter_queries,
    all_queries,
    cluster_variants,
    observed,
    recorded_series,
    rule_queries,
)
from .support.series_check import Emitted, query_problems, target_labels
from .support.synth import Synthesis, joined, of_type

# prometheus-adapter's appVersion for helm.PROMETHEUS_ADAPTER 5.3.0: the template fields it fills (promql.py).
ADAPTER_VERSION = "v0.12.0"


def emitted_on(cluster: ObservedCluster, exporters: Iterable[Exporter] | None = None) -> Emitted:
    """What Amazon Managed Service for Prometheus holds for ``cluster``: its exporters' series with the managed
    scraper's target and external labels, and eks-ml's recorded series."""
    return Emitted(
        tuple(exporters_on(cluster) if exporters is None else exporters),
        target_labels(scrape_configuration(cluster.name)),
        recorded_series(cluster),
    )


def variant(cluster: ObservedCluster) -> tuple[str, bool, bool, bool]:
    return cluster.workload, cluster.nvidia, cluster.neuron, cluster.efa


def problems_of(
    queries: Iterable[Query], emitted_for: dict[tuple[str, bool, bool, bool], Emitted] | None = None
) -> list[str]:
    problems = []
    for query in queries:
        if query.cluster is None:
            continue  # the adapter rule: test_the_adapter_rule_reads_what_the_model_servers_emit
        emitted = (emitted_for or {}).get(variant(query.cluster)) or emitted_on(query.cluster)
        try:
            problems += query_problems(query.source, query.expr, emitted)
        except PromQLError as error:
            problems.append(f"{query.source}: {error}")
    return problems


def parse_problems(queries: Iterable[Query]) -> list[str]:
    problems = []
    for query in queries:
        try:
            analyse(query.expr)
        except PromQLError as error:
            problems.append(f"{query.source}: {error}")
    return problems


@pytest.fixture(scope="module")
def queries() -> list[Query]:
    return all_queries()


def test_every_expression_parses(queries: list[Query]) -> None:
    assert parse_problems(queries) == []
    kinds = Counter(query.kind for query in queries)
    # Alerts, dashboards and the adapter rule exist (recording rules may or may not, by release).
    assert kinds["alert"] and kinds["dashboard"] and kinds["adapter"] == 2


def test_a_broken_expression_fails_the_parse_check(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = dataclasses.replace(
        prometheus_alerts.PROMETHEUS_ALERTS[0], expr=lambda t, _: "sum by (node) (rate(kube_node_info[5m])"
    )
    monkeypatch.setattr(prometheus_alerts, "PROMETHEUS_ALERTS", (broken, *prometheus_alerts.PROMETHEUS_ALERTS[1:]))
    (problem,) = {
        p.split("[")[0] for p in parse_problems(rule_queries(observed("training", nvidia=True, neuron=False, efa=True)))
    }
    assert problem.startswith(f"alert {broken.name} ")
    with pytest.raises(PromQLError, match="not PromQL"):
        analyse("sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)")  # an adapter template left unfilled


def test_every_query_reads_series_its_cluster_emits(queries: list[Query]) -> None:
    assert problems_of(queries) == []


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        # A typo in a metric name.
        ("DCGM_FI_DEV_GPU_UTL > 0", "reads 'DCGM_FI_DEV_GPU_UTL', which no exporter installed there emits"),
        # A series of an exporter that this cluster does not run (no Neuron devices here).
        ("neuroncore_utilization_ratio < 0.05", "reads 'neuroncore_utilization_ratio'"),
        # A label dcgm-exporter does not set, and a typo in the pod attribution label.
        ('DCGM_FI_DEV_GPU_UTIL{namespac="training"}', "matches 'namespac' on 'DCGM_FI_DEV_GPU_UTIL'"),
        # kube-state-metrics' condition and status values.
        ('kube_node_status_condition{condition="Redy",status="true"} == 0', "matches no value kube-state-metrics"),
        ('kube_node_status_condition{condition="Ready",status="True"} == 0', "{status='True'} matches no value"),
        # EFA hardware counter names as the kernel driver spells them.
        ('rate(eksml_efa_hw_counter{counter="rx_drop"}[5m]) > 0', "{counter='rx_drop'} matches no value"),
        ('rate(eksml_efa_hw_counter{counter=~"rx_err.*"}[5m]) > 0', "{counter=~'rx_err.*'} matches no value"),
        # Grouping on a label no series read has.
        ("avg by (Hostnme, gpu) (DCGM_FI_DEV_GPU_UTIL)", "groups or matches on 'Hostnme'"),
        # kube_pod_labels carries only allow-listed pod labels (none allow-listed by default).
        ('kube_pod_labels{label_team="ml"}', "matches 'label_team' on 'kube_pod_labels'"),
    ],
)
def test_a_wrong_query_is_reported(expr: str, expected: str) -> None:
    cluster = observed("training", nvidia=True, neuron=False, efa=True)
    problems = query_problems("probe", expr, emitted_on(cluster))
    assert len(problems) == 1 and expected in problems[0], problems


def test_the_same_checks_pass_right_queries() -> None:
    cluster = observed("training", nvidia=True, neuron=False, efa=True)
    for expr in (
        'avg by (namespace, pod) (DCGM_FI_DEV_GPU_UTIL{namespace="training"})',
        'kube_node_status_condition{condition=~"Ready|DiskPressure",status!="unknown"}',
        'kube_pod_status_ready{condition="true"} * on (namespace, pod) kube_pod_info',
        'kube_horizontalpodautoscaler_status_condition{condition="ScalingLimited",status="true"}',
        'rate(eksml_efa_hw_counter{counter=~"rx_.*"}[5m])',
        'label_replace(DCGM_FI_DEV_GPU_UTIL, "node", "$1", "Hostname", "(.*)") * on (node) group_left kube_node_info',
    ):
        assert query_problems("probe", expr, emitted_on(cluster)) == []


def test_model_server_http_status_is_grouped() -> None:
    """vLLM's HTTP metrics group status codes (prometheus-fastapi-instrumentator's default): an error-rate query
    on status="500" would select nothing, one on 5xx works."""
    emitted = emitted_on(observed("inference", nvidia=True, neuron=True, efa=False))
    right = (
        'sum(rate(http_requests_total{namespace="inference",status=~"5.."}[5m])) / sum(rate(http_requests_total[5m]))'
    )
    assert query_problems("probe", right, emitted) == []
    (problem,) = query_problems("probe", 'rate(http_requests_total{status="500"}[5m])', emitted)
    assert "{status='500'} matches no value vLLM" in problem


def test_a_renamed_upstream_metric_fails_the_real_queries(queries: list[Query]) -> None:
    """Drop one series from an exporter table, as an upstream rename would: the queries that read it fail."""
    for exporter, metric in (
        (VLLM, "vllm:num_requests_waiting"),
        (dcgm_exporter(), "DCGM_FI_DEV_XID_ERRORS"),
        (EFA_COUNTERS, EFA_COUNTER_METRIC),
    ):
        renamed = dataclasses.replace(exporter, series={k: v for k, v in exporter.series.items() if k != metric})
        emitted_for = {}
        for cluster in cluster_variants():
            swapped = [renamed if e.name == exporter.name else e for e in exporters_on(cluster)]
            emitted_for[variant(cluster)] = emitted_on(cluster, swapped)
        problems = problems_of(queries, emitted_for)
        assert problems and all(f"reads {metric!r}" in problem for problem in problems), (metric, problems)


def test_gpu_series_carry_the_pod_they_serve() -> None:
    """Per-job GPU views and idle alerts group dcgm-exporter series by namespace and pod: drop the pod
    attribution from the table and the idle-GPU alert fails."""
    cluster = observed("training", nvidia=True, neuron=False, efa=False)
    dcgm = dcgm_exporter()
    assert set(DCGM_POD_LABELS) <= next(iter(dcgm.series.values()))
    unattributed = dataclasses.replace(dcgm, series={k: v - set(DCGM_POD_LABELS) for k, v in dcgm.series.items()})
    # The scrape's own namespace/pod (the exporter pod's) would still match: take them away too.
    emitted = dataclasses.replace(
        emitted_on(cluster, [unattributed]), target_labels=frozenset({"job", "instance", "node", "cluster"})
    )
    (idle,) = [q for q in rule_queries(cluster) if "GpusIdleInTrainingJob" in q.source]
    assert any("'namespace'" in problem for problem in query_problems(idle.source, idle.expr, emitted))


def test_vllm_series_read_exist_in_both_server_images(queries: list[Query]) -> None:
    read = {s.metric for q in queries for s in analyse(q.expr).selectors if s.metric.startswith("vllm:")}
    assert read, "no vLLM series read: the inference queries went missing"
    for image in (VLLM, VLLM_NEURON):
        assert read <= set(image.series), f"{image.name} {image.version} lacks {sorted(read - set(image.series))}"


def test_the_adapter_rule_reads_what_the_model_servers_emit() -> None:
    """The adapter queries the inference cluster's own Prometheus (the prometheus chart's kubernetes-pods job):
    its series come from the model servers, its labels from that job's relabelling."""
    archive = local_archive(helm.PROMETHEUS)
    if archive is None:
        pytest.skip(charts.HOW_TO_ENABLE)
    # The job that scrapes annotated pods (the model servers): values.yaml scrapeConfigs.kubernetes-pods.
    pods_job = yaml.safe_load(chart_file(archive, "values.yaml"))["scrapeConfigs"]["kubernetes-pods"]
    labels = target_labels({"scrape_configs": [pods_job]})
    assert {"namespace", "pod"} <= labels
    emitted = Emitted((VLLM, VLLM_NEURON), labels)
    queries = adapter_queries()
    assert {q.scraper for q in queries} == {IN_CLUSTER}
    for query in queries:
        assert query_problems(query.source, query.expr, emitted) == []
    renamed = Emitted((dataclasses.replace(VLLM, series={}), dataclasses.replace(VLLM_NEURON, series={})), labels)
    assert all(query_problems(q.source, q.expr, renamed) for q in queries)


def test_the_adapter_serves_the_metric_the_hpas_ask_for() -> None:
    """prometheus-adapter names the metric by ``name.matches``/``as`` (as defaults to $0 without capture groups,
    $1 with one: docs/config.md @ v0.12.0); the model servers' HPAs ask for QUEUE_METRIC."""
    (rule,) = adapter_values(SystemPlacement({}))["rules"]["custom"]
    (selector,) = analyse(rule["seriesQuery"]).selectors
    pattern = re.compile(rule["name"]["matches"])
    match = pattern.search(selector.metric)
    assert match is not None
    default = "$1" if pattern.groups == 1 else "$0"
    template = rule["name"].get("as") or default
    served = re.sub(r"\$\{?(\d)\}?", lambda m: match.group(int(m.group(1))), template)
    assert served == QUEUE_METRIC


def test_the_dcgm_counter_list_names_documented_fields_with_their_types() -> None:
    problems = [
        f"{field}: {kind}, upstream {DCGM_DOCUMENTED_FIELDS.get(field, 'not a documented field')}"
        for field, kind, _ in COUNTERS
        if DCGM_DOCUMENTED_FIELDS.get(field) != kind
    ]
    assert problems == []
    typo = [("DCGM_FI_DEV_GPU_UTILIZATION", "gauge", "x"), ("DCGM_FI_DEV_XID_ERRORS", "counter", "x")]
    assert [f for f, k, _ in typo if DCGM_DOCUMENTED_FIELDS.get(f) != k] == [f for f, _, _ in typo]


def test_the_dcgm_table_is_the_configured_counter_list(prometheus_synth: Synthesis) -> None:
    """The series table is derived from the counter list, and the list is what the applied ConfigMap (the
    exporter's -f file) holds in the synthesized training stack."""
    template = prometheus_synth.templates["TrainingObservability"]
    manifests = [
        json.loads(joined(resource["Properties"]["Manifest"]))
        for resource in of_type(template, "Custom::AWSCDK-EKS-KubernetesResource").values()
    ]
    (config_map,) = [obj for objects in manifests for obj in objects if obj["kind"] == "ConfigMap"]
    configured = {line.split(",")[0] for line in config_map["data"]["counters.csv"].splitlines()}
    assert configured == set(dcgm_exporter().series)
    assert config_map["data"]["counters.csv"] == counters_csv()


@pytest.mark.parametrize(
    ("stack", "cluster"),
    [
        ("TrainingObservability", observed("training", nvidia=True, neuron=False, efa=True)),
        ("InferenceObservability", observed("inference", nvidia=True, neuron=True, efa=False)),
    ],
)
def test_the_tabled_exporters_are_the_ones_the_stack_installs(
    prometheus_synth: Synthesis, stack: str, cluster: ObservedCluster
) -> None:
    template = prometheus_synth.templates[stack]
    charts_installed = {r["Properties"]["Chart"] for r in of_type(template, "Custom::AWSCDK-EKS-HelmChart").values()}
    manifests = str(
        [r["Properties"].get("Manifest") for r in of_type(template, "Custom::AWSCDK-EKS-KubernetesResource").values()]
    )
    expected_charts = {helm.NODE_EXPORTER.chart, helm.KUBE_STATE_METRICS.chart} | (
        {helm.DCGM_EXPORTER.chart} if cluster.nvidia else set()
    )
    assert charts_installed == expected_charts
    assert ("neuron-monitor:" in manifests) == cluster.neuron
    names = {exporter.name for exporter in exporters_on(cluster)}
    assert ("dcgm-exporter" in names) == cluster.nvidia and ("neuron-monitor" in names) == cluster.neuron


def test_the_efa_textfile_carries_the_tabled_labels_and_counters(tmp_path: Path) -> None:
    """Run the node-exporter sidecar's script on a sysfs tree with every port counter the EFA driver exposes."""
    counters = tmp_path / "sys" / "class" / "infiniband" / "rdmap16s27" / "ports" / "1" / "hw_counters"
    counters.mkdir(parents=True)
    for name in EFA_PORT_COUNTERS:
        (counters / name).write_text("1\n")
    env = {"PATH": "/usr/bin:/bin", "SYS": str(tmp_path / "sys"), "OUT": str(tmp_path), "ONCE": "1"}
    subprocess.run(["/bin/sh", "-c", EFA_TEXTFILE_SCRIPT], env=env, check=True, timeout=10)
    samples = [line for line in (tmp_path / "efa.prom").read_text().splitlines() if not line.startswith("#")]
    parsed = [re.fullmatch(r"(\w+)\{(.*)\} (\S+)", line) for line in samples]
    assert all(parsed)
    labels = [dict(re.findall(r'(\w+)="([^"]*)"', m.group(2))) for m in parsed if m]
    assert {m.group(1) for m in parsed if m} == set(EFA_COUNTERS.series)
    assert {frozenset(label) for label in labels} == {EFA_COUNTERS.series[EFA_COUNTER_METRIC]}
    assert {label["counter"] for label in labels} == EFA_COUNTERS.values["counter"]


def test_dcgm_pod_labels_follow_the_chart_values() -> None:
    """Labels of the GPU's pod reach dcgm-exporter series only with kubernetes.enablePodLabels."""
    cluster = observed("training", nvidia=True, neuron=False, efa=False)
    expr = 'avg by (jobset_sigs_k8s_io_jobset_name) (DCGM_FI_DEV_GPU_UTIL{namespace="training"})'
    assert query_problems("probe", expr, emitted_on(cluster))  # eks-ml's values: not enabled
    with_labels = dcgm_exporter(values={"kubernetes": {"enablePodLabels": True}})
    assert query_problems("probe", expr, emitted_on(cluster, [with_labels])) == []


def test_every_tabled_label_value_belongs_to_a_tabled_label() -> None:
    for exporter in exporters_on(observed("inference", nvidia=True, neuron=True, efa=False)) + (EFA_COUNTERS,):
        labels = set().union(*exporter.series.values())
        for key in exporter.values:
            series, _, label = key.rpartition(":")
            assert label in (exporter.series[series] if series else labels), (exporter.name, key)


def test_kube_state_metrics_labels_follow_the_allowlist() -> None:
    assert allowlist(["pods=[app.kubernetes.io/name,team]", "nodes=[*]"]) == {
        "pods": frozenset({"app.kubernetes.io/name", "team"}),
        "nodes": frozenset({"*"}),
    }
    ksm = kube_state_metrics({"metricLabelsAllowlist": ["pods=[app.kubernetes.io/name]", "nodes=[*]"]})
    assert "label_app_kubernetes_io_name" in ksm.series["kube_pod_labels"]
    assert "label_*" in ksm.series["kube_node_labels"]
    assert not any(label.startswith("label_") for label in kube_state_metrics({}).series["kube_pod_labels"])


# --- pinned versions -------------------------------------------------------------------------------------------
def local_archive(pin: helm.HelmChartPin) -> Path | None:
    """The pinned chart's archive if it is on this machine (no download)."""
    for folder in (charts.SHARED_CHARTS, charts.PULLED_CHARTS):
        if (folder / charts.archive_name(pin)).exists():
            return folder / charts.archive_name(pin)
    return None


def chart_file(archive: Path, name: str) -> str:
    """A file of the chart itself (``Chart.yaml``, ``templates/daemonset.yaml``), not of a subchart."""
    with tarfile.open(archive) as tar:
        (member,) = [m for m in tar.getmembers() if m.name.split("/", 1)[-1] == name]
        extracted = tar.extractfile(member)
        assert extracted is not None
        return extracted.read().decode()


def version_problems(found: dict[str, tuple[str, str]]) -> list[str]:
    """``found``: table -> (version it was read at, version now pinned)."""
    return [
        f"{table} was read at {tabled} but {pinned} is pinned: check its series upstream at {pinned}, then update "
        "tests/support/exporter_series.py"
        for table, (tabled, pinned) in found.items()
        if tabled.lstrip("v") != pinned.lstrip("v")
    ]


def image_version(image: str) -> str:
    """The version an image tag leads with: vllm/vllm-openai:v0.11.0 -> v0.11.0, ...:0.13.0-neuronx-... -> 0.13.0."""
    tag = image.rsplit(":", 1)[1]
    match = re.match(r"v?\d+(\.\d+)*", tag)
    assert match, image
    return match.group(0)


def test_image_pins_are_the_tabled_versions() -> None:
    assert (
        version_problems(
            {
                "vLLM": (VLLM_VERSION, image_version(VLLM_NVIDIA_IMAGE)),
                "vLLM (Neuron image)": (VLLM_NEURON_VERSION, image_version(VLLM_NEURON_IMAGE)),
                "neuron-monitor": (NEURON_MONITOR_VERSION, image_version(NEURON_MONITOR_IMAGE)),
            }
        )
        == []
    )
    (problem,) = version_problems({"vLLM": (VLLM_VERSION, image_version("vllm/vllm-openai:v0.12.0"))})
    assert "vLLM was read at 0.11.0 but v0.12.0 is pinned" in problem


# The chart versions whose appVersion the tables were read at (dcgm-exporter, kube-state-metrics) or whose
# adapter behaviour promql.adapter_query follows: a bump fails here even where no chart archive is at hand.
TABLED_CHARTS = {helm.DCGM_EXPORTER: "4.8.2", helm.KUBE_STATE_METRICS: "8.4.0", helm.PROMETHEUS_ADAPTER: "5.3.0"}


def test_chart_pins_are_the_ones_the_tables_were_read_for() -> None:
    found = {pin.chart: (tabled, pin.version) for pin, tabled in TABLED_CHARTS.items()}
    assert version_problems(found) == []
    bumped = {helm.DCGM_EXPORTER.chart: (TABLED_CHARTS[helm.DCGM_EXPORTER], "4.9.0")}
    assert version_problems(bumped)[0].startswith("dcgm-exporter was read at 4.8.2 but 4.9.0 is pinned")


@pytest.mark.parametrize(
    ("pin", "tabled"),
    [
        (helm.DCGM_EXPORTER, DCGM_VERSION),
        (helm.KUBE_STATE_METRICS, KUBE_STATE_METRICS_VERSION),
        (helm.PROMETHEUS_ADAPTER, ADAPTER_VERSION),
    ],
    ids=lambda value: getattr(value, "chart", None) or str(value),
)
def test_chart_pins_are_the_tabled_app_versions(pin: helm.HelmChartPin, tabled: str) -> None:
    archive = local_archive(pin)
    if archive is None:
        pytest.skip(charts.HOW_TO_ENABLE)
    app_version = str(yaml.safe_load(chart_file(archive, "Chart.yaml"))["appVersion"])
    assert version_problems({pin.chart: (tabled, app_version)}) == []


def test_the_dcgm_chart_attributes_gpus_to_pods() -> None:
    """The pod/namespace labels come from DCGM_EXPORTER_KUBERNETES, which the pinned chart always sets."""
    archive = local_archive(helm.DCGM_EXPORTER)
    if archive is None:
        pytest.skip(charts.HOW_TO_ENABLE)
    daemonset = chart_file(archive, "templates/daemonset.yaml")
    assert re.search(r'name: "DCGM_EXPORTER_KUBERNETES"\s*\n\s*value: "true"', daemonset)
