"""The examples/ apps synthesize as library users would run them, and pass the same gates as ours."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
from cfnlint.api import ManualArgs, lint_file

from .support.synth import Synthesis, error_findings, make_app, of_type, synthesize

EXAMPLE = Path(__file__).parent.parent / "examples" / "existing_vpc_inference" / "app.py"


def load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{path.parent.name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Synthesis:
    module = load(EXAMPLE)
    return synthesize(make_app(tmp_path_factory.mktemp("example"), nag=True), module.build)


def test_the_example_composes_its_own_stacks(example: Synthesis) -> None:
    assert set(example.templates) == {"Serving", "ServingMonitoring"}
    serving = example.templates["Serving"]
    # Its own VPC is imported, not created; one cluster serves one model from one GPU pool.
    assert of_type(serving, "AWS::EC2::VPC") == {}
    (cluster,) = of_type(serving, "AWS::EKS::Cluster").values()
    assert cluster["Properties"]["ResourcesVpcConfig"]["SubnetIds"] == [
        "subnet-0aaaaaaaaaaaaaaa1",
        "subnet-0bbbbbbbbbbbbbbb2",
    ]
    assert cluster["Properties"]["ResourcesVpcConfig"]["EndpointPublicAccess"] is False
    alarms = {
        a["Properties"]["AlarmName"]
        for a in of_type(example.templates["ServingMonitoring"], "AWS::CloudWatch::Alarm").values()
    }
    assert alarms == {"serving-unhealthy-nodes", "serving-gpu-hot", "serving-workload-pods-restarting"}
    (subscription,) = of_type(example.templates["ServingMonitoring"], "AWS::SNS::Subscription").values()
    assert subscription["Properties"]["Endpoint"] == "ml-oncall@example.com"


@pytest.mark.parametrize("stack", ["Serving", "ServingMonitoring"])
def test_the_example_passes_cfn_lint(example: Synthesis, stack: str) -> None:
    matches = lint_file(example.outdir / f"{stack}.template.json", config=ManualArgs(regions=["us-east-1"]))
    assert [m for m in matches if m.rule.id.startswith("E")] == []


def test_the_example_passes_cdk_nag(example: Synthesis) -> None:
    assert error_findings(example.validation_report) == []
    assert example.error is None
