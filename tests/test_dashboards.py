"""Grafana dashboards: panels follow the cluster and the backend, queries name declared data sources."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import pytest

from eks_ml.cluster.system_nodes import SystemPlacement
from eks_ml.observability import Backend, dashboard
from eks_ml.observability.target import ObservedCluster
from eks_ml.placement import ClusterModel


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
            ["GPU utilisation", "GPU memory used", "EFA throughput", "FSx for Lustre throughput"],
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
            ],
        ),
        (observed("inference"), Backend.CLOUDWATCH, ["Replicas", "GPU utilisation"]),
        (
            observed("training", nvidia=False, neuron=True, efa=True),
            Backend.PROMETHEUS,
            ["NeuronCore utilisation", "EFA throughput", "FSx for Lustre throughput"],
        ),
    ],
)
def test_panels_follow_hardware_and_backend(cluster: ObservedCluster, backend: Backend, expected: list[str]) -> None:
    assert titles(dashboard(cluster, backend)) == expected


@pytest.mark.parametrize("backend", list(Backend))
@pytest.mark.parametrize("workload", ["training", "inference"])
def test_every_query_uses_a_declared_data_source_and_panels_do_not_overlap(backend: Backend, workload: str) -> None:
    model = dashboard(observed(workload, efa=workload == "training"), backend)
    variables = {variable["name"] for variable in model["templating"]["list"]}
    cells = set()
    for panel in model["panels"]:
        refs = [target["refId"] for target in panel["targets"]]
        assert len(refs) == len(set(refs))
        for target in panel["targets"]:
            assert target["datasource"]["uid"].strip("${}") in variables
            if target["datasource"]["type"] == "prometheus":
                expr = target["expr"]
                own_namespace = f'namespace="{observed(workload).namespace}"' in expr
                assert own_namespace or "DCGM_FI_DEV" in expr or "eksml_efa_hw_counter" in expr
        grid = panel["gridPos"]
        cell = (grid["x"], grid["y"])
        assert cell not in cells
        cells.add(cell)
    assert json.loads(json.dumps(model)) == model
    assert model["uid"].startswith("eks-ml-") and len(model["uid"]) <= 40


def test_the_fsx_panel_asks_for_the_file_system_id(tmp_path: Path) -> None:
    model = dashboard(observed("training"), Backend.CLOUDWATCH)
    fsx = next(panel for panel in model["panels"] if panel["title"].startswith("FSx"))
    assert {t["dimensions"]["FileSystemId"] for t in fsx["targets"]} == {"$fsx"}
    assert {t["metricName"] for t in fsx["targets"]} == {"DataReadBytes", "DataWriteBytes"}
    assert any(v["name"] == "fsx" for v in model["templating"]["list"])
