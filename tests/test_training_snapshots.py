"""Whole training stacks for the two accelerator families, snapshotted beside the facts they must hold."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import yaml
from aws_cdk import Stack, assertions

from eks_ml import BaseClusterProps, MlVpc, MlVpcProps
from eks_ml.training import TrainingCluster, TrainingClusterProps, TrainingNodeGroupProps

from .support.synth import library_stack, normalize, of_type

CASES = {"p5": "p5.48xlarge", "trn1": "trn1.32xlarge"}


@pytest.fixture(scope="module", params=sorted(CASES))
def stack(request: pytest.FixtureRequest) -> tuple[str, TrainingCluster, dict[str, Any]]:
    _, stack = library_stack()
    network = MlVpc(stack, "Network", MlVpcProps(availability_zones=("us-west-2a", "us-west-2b", "us-west-2c")))
    cluster = TrainingCluster(
        stack,
        "Training",
        TrainingClusterProps(
            base=BaseClusterProps(vpc=network.vpc, cluster_name=f"{request.param}-training"),
            node_groups=[
                TrainingNodeGroupProps(name=request.param, instance_type=CASES[request.param], desired_size=2)
            ],
        ),
    )
    return request.param, cluster, assertions.Template.from_stack(stack).to_json()


def test_stack_shape(stack: Any) -> None:
    name, cluster, template = stack
    counts = Counter(r["Type"] for r in template["Resources"].values())
    assert counts["AWS::EKS::Nodegroup"] == 2  # system + training
    assert counts["AWS::EC2::PlacementGroup"] == 1
    assert counts["AWS::FSx::FileSystem"] == 1
    assert counts["Custom::AWSCDK-EKS-HelmChart"] == 4  # one device plugin family, EFA, Kueue, Trainer
    spec = cluster.node_groups[name].spec
    (data,) = [
        r["Properties"]["LaunchTemplateData"]
        for r in of_type(template, "AWS::EC2::LaunchTemplate").values()
        if "NetworkInterfaces" in r["Properties"]["LaunchTemplateData"]
    ]
    assert sum(i["InterfaceType"] == "efa-only" for i in data["NetworkInterfaces"]) == spec.efa_interfaces
    releases = {r["Properties"]["Release"] for r in of_type(template, "Custom::AWSCDK-EKS-HelmChart").values()}
    assert ("nvidia-device-plugin" in releases) == spec.is_nvidia and ("neuron" in releases) == spec.is_neuron
    fs_subnet = next(iter(of_type(template, "AWS::FSx::FileSystem").values()))["Properties"]["SubnetIds"]
    assert fs_subnet == [Stack.of(cluster).resolve(cluster.node_groups[name].subnet.subnet_id)]


def test_stack_snapshot(stack: Any, json_snapshot) -> None:  # type: ignore[no-untyped-def]
    _, _, template = stack
    assert normalize(template) == json_snapshot


def test_jobs_snapshot(stack: Any, snapshot) -> None:  # type: ignore[no-untyped-def]
    name, cluster, _ = stack
    jobs = list(yaml.safe_load_all(cluster.jobs_yaml()))
    assert [job["metadata"]["name"] for job in jobs] == [f"{name}-example", f"{name}-fabric-test"]
    assert cluster.jobs_yaml() == snapshot
