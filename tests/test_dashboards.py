"""Grafana dashboards (built with grafana-foundation-sdk): panels follow the cluster and the backend, every
data source is a dashboard variable of the right type, CloudWatch queries and alarms read only published
metrics and dimension sets, and the per-job PromQL attributes series to the right jobs (promtool)."""

from __future__ import annotations

import copy
import itertools
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import yaml

from eks_ml.cluster.system_nodes import SystemPlacement
from eks_ml.observability import Backend, dashboard
from eks_ml.observability import job_queries as queries
from eks_ml.observability.addon import MIN_CLOUDWATCH_ADDON
from eks_ml.observability.limits import IDLE_MINUTES
from eks_ml.observability.metric_tables import CONTAINER_INSIGHTS_SECTIONS, unpublished
from eks_ml.observability.target import ObservedCluster
from eks_ml.placement import ClusterModel

from .support.promtool import require_tool
from .support.synth import Synthesis


def observed(workload: str, *, nvidia: bool = True, neuron: bool = False, efa: bool = False) -> ObservedCluster:
    namespace = "training" if workload == "training" else "inference"
    return ObservedCluster(
        cast(Any, None),
        f"ml-{workload}",
        workload,
        namespace,
        nvidia,
        neuron,
        efa,
        None,
        ClusterModel(f"ml-{workload}"),
        SystemPlacement({}),
    )


def titles(model: dict[str, Any]) -> list[str]:
    return [panel["title"] for panel in model["panels"]]


# Every hardware mix of both workloads on both backends.
ALL_DASHBOARDS = [
    pytest.param(workload, nvidia, neuron, efa, backend, id=f"{workload}-{nvidia=}-{neuron=}-{efa=}-{backend.value}")
    for workload, nvidia, neuron, efa, backend in itertools.product(
        ["training", "inference"], [True, False], [True, False], [True, False], list(Backend)
    )
]

GPU_PER_TRAINJOB = ["GPU utilisation per TrainJob", "GPU memory used per TrainJob"]
NEURON_PER_TRAINJOB = ["NeuronCore utilisation per TrainJob", "Neuron device memory used per TrainJob"]
IDLE = ["Accelerators requested but idle per namespace", "Hourly cost of idle accelerators per namespace (USD)"]


@pytest.mark.parametrize(
    ("cluster", "backend", "expected"),
    [
        (
            observed("training", efa=True),
            Backend.CLOUDWATCH,
            ["GPU utilisation", "GPU memory used", "EFA throughput", "FSx for Lustre throughput"],
        ),
        (
            observed("training", efa=True),
            Backend.PROMETHEUS,
            [
                "GPU utilisation",
                "GPU memory used",
                "EFA throughput",
                "FSx for Lustre throughput",
                *GPU_PER_TRAINJOB,
                "EFA throughput per TrainJob",
                *IDLE,
            ],
        ),
        # Without accelerators or EFA (panels it cannot fill are left out) the file system remains.
        (observed("training", nvidia=False), Backend.PROMETHEUS, ["FSx for Lustre throughput"]),
        (
            observed("training", nvidia=False, neuron=True, efa=True),
            Backend.CLOUDWATCH,
            ["NeuronCore utilisation", "EFA throughput", "FSx for Lustre throughput"],
        ),
        (
            observed("inference", neuron=True),
            Backend.PROMETHEUS,
            [
                "Requests running",
                "End-to-end latency p50 / p95",
                "Queue depth",
                "Generated tokens per second",
                "Replicas",
                "GPU utilisation",
                "NeuronCore utilisation",
                "GPU utilisation per model service",
                "GPU memory used per model service",
                "NeuronCore utilisation per model service",
                "Neuron device memory used per model service",
                *IDLE,
            ],
        ),
        # CloudWatch has per-Service pod metrics (GPU memory, Neuron) but no per-Service GPU utilisation.
        (
            observed("inference", neuron=True),
            Backend.CLOUDWATCH,
            [
                "Replicas",
                "GPU utilisation",
                "NeuronCore utilisation",
                "GPU memory used per model service",
                "NeuronCore utilisation per model service",
                "Neuron device memory used per model service",
            ],
        ),
        (
            observed("training", nvidia=False, neuron=True, efa=True),
            Backend.PROMETHEUS,
            [
                "NeuronCore utilisation",
                "EFA throughput",
                "FSx for Lustre throughput",
                *NEURON_PER_TRAINJOB,
                "EFA throughput per TrainJob",
                *IDLE,
            ],
        ),
    ],
)
def test_panels_follow_hardware_and_backend(cluster: ObservedCluster, backend: Backend, expected: list[str]) -> None:
    assert titles(dashboard(cluster, backend)) == expected


# --- Data sources: every panel, query and query variable names a data source variable of its type.


def datasource_problems(model: dict[str, Any]) -> list[str]:
    """Where ``model`` names a data source that is not a dashboard variable of the same plugin type."""
    sources = {
        variable["name"]: variable["query"]
        for variable in model["templating"]["list"]
        if variable["type"] == "datasource"
    }
    problems = []

    def check(where: str, reference: dict[str, Any] | None) -> None:
        match = re.fullmatch(r"\$\{(\w+)\}", (reference or {}).get("uid", ""))
        if match is None:
            problems.append(f"{where}: data source {reference} is not a ${{variable}}")
        elif match[1] not in sources:
            problems.append(f"{where}: no data source variable {match[1]!r} (there are {sorted(sources)})")
        elif sources[match[1]] != (reference or {}).get("type"):
            problems.append(f"{where}: {reference} names a {sources[match[1]]} variable")

    for variable in model["templating"]["list"]:
        if variable["type"] == "query":
            check(f"variable {variable['name']}", variable.get("datasource"))
    for panel in model["panels"]:
        check(f"panel {panel['title']!r}", panel.get("datasource"))
        for target in panel["targets"]:
            check(f"panel {panel['title']!r} query {target['refId']}", target.get("datasource"))
            if target.get("datasource") != panel.get("datasource"):
                problems.append(f"panel {panel['title']!r} query {target['refId']}: not the panel's data source")
    return problems


@pytest.mark.parametrize(("workload", "nvidia", "neuron", "efa", "backend"), ALL_DASHBOARDS)
def test_every_data_source_is_a_variable_of_its_type(
    workload: str, nvidia: bool, neuron: bool, efa: bool, backend: Backend
) -> None:
    model = dashboard(observed(workload, nvidia=nvidia, neuron=neuron, efa=efa), backend)
    assert datasource_problems(model) == []
    assert all(panel["targets"] for panel in model["panels"])


def test_the_data_source_check_fails_on_broken_dashboards() -> None:
    model = dashboard(observed("training", neuron=True, efa=True), Backend.PROMETHEUS)
    first_prometheus = next(p for p in model["panels"] if p["datasource"]["type"] == "prometheus")
    first_cloudwatch = next(p for p in model["panels"] if p["datasource"]["type"] == "cloudwatch")

    unknown = copy.deepcopy(model)
    unknown["panels"][0]["targets"][0]["datasource"] = {"type": "prometheus", "uid": "${amp}"}
    assert any("no data source variable 'amp'" in p for p in datasource_problems(unknown))

    wrong_type = copy.deepcopy(model)
    index = model["panels"].index(first_prometheus)
    for target in wrong_type["panels"][index]["targets"]:
        target["datasource"] = {"type": "prometheus", "uid": "${cloudwatch}"}
    assert any("names a cloudwatch variable" in p for p in datasource_problems(wrong_type))

    no_variable = copy.deepcopy(model)
    no_variable["templating"]["list"] = [v for v in model["templating"]["list"] if v["name"] != "cloudwatch"]
    assert any(first_cloudwatch["title"] in p for p in datasource_problems(no_variable))

    literal = copy.deepcopy(model)
    literal["templating"]["list"][2]["datasource"] = {"type": "prometheus", "uid": "P1809F7CD0C75ACF3"}
    assert any("variable trainjob" in p for p in datasource_problems(literal))


@pytest.mark.parametrize("backend", list(Backend))
@pytest.mark.parametrize("workload", ["training", "inference"])
def test_queries_stay_in_the_workload_namespace_and_panels_do_not_overlap(backend: Backend, workload: str) -> None:
    model = dashboard(observed(workload, neuron=True, efa=workload == "training"), backend)
    cells = set()
    for panel in model["panels"]:
        refs = [target["refId"] for target in panel["targets"]]
        assert len(refs) == len(set(refs))
        for target in panel["targets"]:
            expr = target.get("expr", "")
            own_namespace = f'namespace="{observed(workload).namespace}"' in expr
            cluster_wide = any(
                name in expr
                for name in (
                    "DCGM_FI_DEV",
                    "eksml_efa_hw_counter",
                    "neuroncore_",
                    "kube_pod_container_resource_requests",
                )
            )
            assert (
                "datasource" not in target
                or target["datasource"]["type"] != "prometheus"
                or own_namespace
                or cluster_wide
            )
        grid = panel["gridPos"]
        cell = (grid["x"], grid["y"])
        assert cell not in cells
        cells.add(cell)
    assert [panel["id"] for panel in model["panels"]] == list(range(1, len(model["panels"]) + 1))
    assert json.loads(json.dumps(model)) == model
    assert model["uid"].startswith("eks-ml-") and len(model["uid"]) <= 40


def test_the_fsx_panel_asks_for_the_file_system_id() -> None:
    model = dashboard(observed("training"), Backend.CLOUDWATCH)
    fsx = next(panel for panel in model["panels"] if panel["title"].startswith("FSx"))
    assert {t["dimensions"]["FileSystemId"] for t in fsx["targets"]} == {"$fsx"}
    assert {t["metricName"] for t in fsx["targets"]} == {"DataReadBytes", "DataWriteBytes"}
    assert any(v["name"] == "fsx" and v["type"] == "textbox" for v in model["templating"]["list"])


def test_the_job_variable_lists_the_namespaces_jobs_and_defaults_to_all() -> None:
    model = dashboard(observed("inference"), Backend.PROMETHEUS)
    (variable,) = [v for v in model["templating"]["list"] if v["type"] == "query"]
    assert variable["name"] == "service"
    assert variable["query"] == queries.job_names(queries.MODEL_SERVICE, "inference")
    assert variable["multi"] and variable["includeAll"] and variable["allValue"] == ".+"
    assert variable["current"]["value"] == "$__all"
    per_service = [p for p in model["panels"] if p["title"].endswith("per model service")]
    assert per_service and all('=~"$service"' in t["expr"] for p in per_service for t in p["targets"])


# --- CloudWatch: names and dimension sets of dashboards and alarms are in metric_tables.


def cloudwatch_targets(model: dict[str, Any]) -> Iterator[tuple[str, str, list[str]]]:
    for panel in model["panels"]:
        for target in panel["targets"]:
            if target["datasource"]["type"] == "cloudwatch":
                yield target["namespace"], target["metricName"], list(target["dimensions"])


def dashboard_metric_problems(model: dict[str, Any]) -> list[str]:
    return [p for n, m, d in cloudwatch_targets(model) if (p := unpublished(n, m, d)) is not None]


@pytest.mark.parametrize(("workload", "nvidia", "neuron", "efa", "backend"), ALL_DASHBOARDS)
def test_dashboards_read_only_published_cloudwatch_metrics(
    workload: str, nvidia: bool, neuron: bool, efa: bool, backend: Backend
) -> None:
    model = dashboard(observed(workload, nvidia=nvidia, neuron=neuron, efa=efa), backend)
    assert dashboard_metric_problems(model) == []


def test_the_dashboard_metric_check_fails_on_a_wrong_name_or_dimension() -> None:
    model = dashboard(observed("inference", neuron=True), Backend.CLOUDWATCH)
    assert len(list(cloudwatch_targets(model))) == 6
    renamed = copy.deepcopy(model)
    renamed["panels"][1]["targets"][0]["metricName"] = "node_gpu_utilisation"
    assert dashboard_metric_problems(renamed) == ["ContainerInsights publishes no metric 'node_gpu_utilisation'"]
    # pod_gpu_utilization has no (ClusterName, Namespace, Service) set, unlike pod_gpu_memory_utilization.
    per_service = next(p for p in renamed["panels"] if p["title"] == "GPU memory used per model service")
    per_service["targets"][0]["metricName"] = "pod_gpu_utilization"
    assert (
        "pod_gpu_utilization is not published with dimensions ['ClusterName', 'Namespace', 'Service']"
        in (dashboard_metric_problems(renamed)[1])
    )


def alarm_metrics(properties: dict[str, Any]) -> list[tuple[str, str, list[str]]]:
    """(namespace, metric, dimension names) of everything a synthesized alarm reads."""
    if "MetricName" in properties:
        return [(properties["Namespace"], properties["MetricName"], [d["Name"] for d in properties["Dimensions"]])]
    read = []
    for query in properties["Metrics"]:
        if "MetricStat" in query:
            metric = query["MetricStat"]["Metric"]
            read.append((metric["Namespace"], metric["MetricName"], [d["Name"] for d in metric["Dimensions"]]))
        elif query["Expression"].startswith("SELECT"):
            # Metrics Insights: the schema names the namespace and the exact dimension set.
            match = re.match(r"SELECT \w+\((\w+)\) FROM SCHEMA\(([\w/\"]+)((?:, \w+)*)\)", query["Expression"])
            assert match, query["Expression"]
            read.append((match[2].strip('"'), match[1], [d.strip() for d in match[3].split(",") if d.strip()]))
        else:
            # Metric math over the queries above; anything else (SEARCH) would escape the table.
            assert not re.search(r"SEARCH|SELECT", query["Expression"]), query["Expression"]
    return read


def alarm_problems(alarms: dict[str, dict[str, Any]]) -> list[str]:
    return [
        f"{name}: {problem}"
        for name, properties in alarms.items()
        for namespace, metric, dimensions in alarm_metrics(properties)
        if (problem := unpublished(namespace, metric, dimensions)) is not None
    ]


def synthesized_alarms(*synths: Synthesis) -> dict[str, dict[str, Any]]:
    return {
        resource["Properties"]["AlarmName"]: resource["Properties"]
        for synth in synths
        for stack in ("TrainingObservability", "InferenceObservability")
        for resource in synth.resources(stack, "AWS::CloudWatch::Alarm").values()
    }


def test_alarms_read_only_published_cloudwatch_metrics(default_synth: Synthesis, trainium_synth: Synthesis) -> None:
    # NVIDIA+EFA training, NVIDIA+Neuron inference and Neuron training: every CloudWatch alert is there.
    alarms = synthesized_alarms(default_synth, trainium_synth)
    from eks_ml.observability import CLOUDWATCH_ALERTS

    assert {name.split("-", 3)[-1] for name in alarms} == {alert.key for alert in CLOUDWATCH_ALERTS}
    assert sum(len(alarm_metrics(p)) for p in alarms.values()) > len(alarms)
    assert alarm_problems(alarms) == []


def test_the_alarm_check_fails_on_a_wrong_name_or_dimension(default_synth: Synthesis) -> None:
    alarms = synthesized_alarms(default_synth)
    hot = copy.deepcopy(alarms["eks-ml-training-gpu-hot"])
    hot["MetricName"] = "node_gpu_temp"
    idle = copy.deepcopy(alarms["eks-ml-training-gpus-idle-while-requested"])
    requested = next(q for q in idle["Metrics"] if q["Id"] == "requested")
    requested["MetricStat"]["Metric"]["MetricName"] = (
        "cluster_gpu_request"  # the agent emits it; the guide does not list it
    )
    restarts = copy.deepcopy(alarms["eks-ml-training-workload-pods-restarting"])
    restarts["Metrics"][0]["Expression"] = restarts["Metrics"][0]["Expression"].replace("PodName)", "Service)")
    problems = alarm_problems({"hot": hot, "idle": idle, "restarts": restarts})
    assert problems == [
        "hot: ContainerInsights publishes no metric 'node_gpu_temp'",
        "idle: ContainerInsights publishes no metric 'cluster_gpu_request'",
        "restarts: ContainerInsights pod_number_of_container_restarts is not published with dimensions "
        "['ClusterName', 'Namespace', 'Service'] (it is with: ClusterName, Namespace, PodName)",
    ]


def test_every_table_section_is_published_by_the_oldest_addon_eks_ml_accepts() -> None:
    for section in CONTAINER_INSIGHTS_SECTIONS:
        assert section.since_addon is None or section.since_addon <= MIN_CLOUDWATCH_ADDON, section.title
    assert unpublished("AWS/EKS", "node_gpu_utilization", ["ClusterName"]) is not None


# --- Per-job PromQL, evaluated by promtool on synthetic series.


def promtool() -> str:
    return str(require_tool("promtool"))  # the project's .tools (make prom-tools) or PATH; skips without


NS = "training"
JOB = queries.TRAINJOB.label
# Job "a": pod a-0 on node n1 with two busy GPUs; job "b": pod b-0 on n2 holding 8 GPUs it barely uses;
# "old": a finished pod still on n1 (its node is not attributed to it). n1's NeuronCores are half busy.
SERIES = {
    f'kube_pod_labels{{namespace="{NS}", pod="a-0", {JOB}="a"}}': "1x60",
    f'kube_pod_labels{{namespace="{NS}", pod="b-0", {JOB}="b"}}': "1x60",
    f'kube_pod_labels{{namespace="{NS}", pod="old-0", {JOB}="old"}}': "1x60",
    f'kube_pod_info{{namespace="{NS}", pod="a-0", node="n1"}}': "1x60",
    f'kube_pod_info{{namespace="{NS}", pod="b-0", node="n2"}}': "1x60",
    f'kube_pod_info{{namespace="{NS}", pod="old-0", node="n1"}}': "1x60",
    f'kube_pod_status_phase{{namespace="{NS}", pod="a-0", phase="Running"}}': "1x60",
    f'kube_pod_status_phase{{namespace="{NS}", pod="b-0", phase="Running"}}': "1x60",
    f'kube_pod_status_phase{{namespace="{NS}", pod="old-0", phase="Running"}}': "0x60",
    f'kube_pod_status_phase{{namespace="{NS}", pod="old-0", phase="Succeeded"}}': "1x60",
    f'DCGM_FI_DEV_GPU_UTIL{{namespace="{NS}", pod="a-0", gpu="0"}}': "80x60",
    f'DCGM_FI_DEV_GPU_UTIL{{namespace="{NS}", pod="a-0", gpu="1"}}': "60x60",
    f'DCGM_FI_DEV_GPU_UTIL{{namespace="{NS}", pod="b-0", gpu="0"}}': "2x60",
    'neuroncore_utilization_ratio{node="n1", neuroncore="0"}': "0.5x60",
    'neuroncore_utilization_ratio{node="n2", neuroncore="0"}': "0.01x60",
    'eksml_efa_hw_counter{node="n1", device="rdmap0s0", port="1", counter="rx_bytes"}': "0+6000x60",
    f'kube_pod_container_resource_requests{{namespace="{NS}", pod="b-0", container="c", node="n2", resource="nvidia_com_gpu"}}': "8x60",
    f'kube_pod_container_resource_requests{{namespace="{NS}", pod="a-0", container="c", node="n1", resource="nvidia_com_gpu"}}': "2x60",
    'kube_node_labels{node="n2", label_node_kubernetes_io_instance_type="p5.48xlarge"}': "1x60",
    'eksml:accelerator_hourly_price{instance_type="p5.48xlarge", resource="nvidia_com_gpu"}': "12.5x60",
}


def every_job(expr: str) -> str:
    """The query as Grafana sends it with the job variable on "All" (its allValue)."""
    return expr.replace(f"${queries.TRAINJOB.variable}", ".+")


def evaluate(tmp_path: Path, series: dict[str, str], cases: list[tuple[str, list[tuple[str, float]]]]) -> str:
    """Runs ``promtool test rules`` on ``series`` (one sample a minute); returns its output if a case fails."""
    test = {
        "rule_files": [],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": name, "values": values} for name, values in series.items()],
                "promql_expr_test": [
                    {
                        "expr": expr,
                        "eval_time": f"{IDLE_MINUTES + 10}m",
                        "exp_samples": [{"labels": labels, "value": value} for labels, value in samples],
                    }
                    for expr, samples in cases
                ],
            }
        ],
    }
    path = tmp_path / "dashboard-queries.test.yml"
    path.write_text(yaml.safe_dump(test, sort_keys=False))
    result = subprocess.run([promtool(), "test", "rules", str(path)], capture_output=True, text=True, check=False)
    return "" if result.returncode == 0 else result.stdout + result.stderr


PER_JOB_CASES = [
    (queries.gpu_utilization(queries.TRAINJOB, NS), [(f'{{{JOB}="a"}}', 70), (f'{{{JOB}="b"}}', 2)]),
    (queries.neuroncore_utilization_percent(queries.TRAINJOB, NS), [(f'{{{JOB}="a"}}', 50), (f'{{{JOB}="b"}}', 1)]),
    (queries.efa_bytes_per_second(queries.TRAINJOB, NS, "rx_bytes"), [(f'{{{JOB}="a"}}', 100)]),
    (
        queries.idle_accelerators_per_namespace(cast(str, queries.idle_accelerators(nvidia=True, neuron=True))),
        [(f'{{namespace="{NS}", resource="nvidia_com_gpu"}}', 8)],
    ),
    (
        queries.idle_hourly_cost_per_namespace(cast(str, queries.idle_accelerators(nvidia=True, neuron=False))),
        [(f'{{namespace="{NS}"}}', 100)],
    ),
]


def test_per_job_queries_attribute_series_to_their_jobs(tmp_path: Path) -> None:
    cases = [(every_job(expr), samples) for expr, samples in PER_JOB_CASES]
    assert evaluate(tmp_path, SERIES, cases) == ""


def test_the_per_job_evaluation_fails_when_attribution_breaks(tmp_path: Path) -> None:
    # GPU series without the pod label (dcgm-exporter's pod mapping off) belong to no job.
    unattributed = {re.sub(r', pod="[ab]-0"', "", k) if k.startswith("DCGM") else k: v for k, v in SERIES.items()}
    assert "FAILED" in evaluate(tmp_path, unattributed, [(every_job(PER_JOB_CASES[0][0]), PER_JOB_CASES[0][1])])
    # A finished pod counted as running would give its old node's NeuronCores to job "old" too.
    running = dict(SERIES)
    running[f'kube_pod_status_phase{{namespace="{NS}", pod="old-0", phase="Running"}}'] = "1x60"
    assert "FAILED" in evaluate(tmp_path, running, [(every_job(PER_JOB_CASES[1][0]), PER_JOB_CASES[1][1])])
    # Without the price series there is no cost.
    unpriced = {k: v for k, v in SERIES.items() if not k.startswith("eksml:")}
    assert "FAILED" in evaluate(tmp_path, unpriced, [PER_JOB_CASES[4]])
