"""The examples/ apps synthesize as library users would run them, and pass the same gates as ours."""

from __future__ import annotations

import pytest

from .support.synth import Synthesis, of_type


@pytest.fixture(scope="module")
def example(existing_vpc_inference_synth: Synthesis) -> Synthesis:
    """The session synth every gate shares (tests/support/gated_apps.py; cfn-lint and cdk-nag: test_gated_apps)."""
    return existing_vpc_inference_synth


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
