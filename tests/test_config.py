from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from eks_ml import AppConfig, EndpointAccessMode, NatGateways, ValidationError, load_app_config
from eks_ml.training import FileSystemPin

from .support.synth import CDK_CONTEXT, ROOT


def load(**overrides: Any) -> AppConfig:
    return load_app_config({**CDK_CONTEXT, **{f"eks-ml:{k}": v for k, v in overrides.items()}})


def test_default_context_gives_the_documented_defaults() -> None:
    config = load()
    # Nothing is deployed from this repository, so cdk.json pins no file system (README, "State and redeploys").
    assert config == AppConfig()
    assert config.training_file_system().settings("us-west-2a") == FileSystemPin(
        availability_zone="us-west-2a", efa_enabled=False, storage_gib=4800
    )
    assert config.region == "us-west-2"
    assert config.availability_zones == ("us-west-2a", "us-west-2b", "us-west-2c")
    assert config.kubernetes_version == "1.35"
    assert (config.training_cluster_name, config.inference_cluster_name) == ("eks-ml-training", "eks-ml-inference")


def test_values_given_with_dash_c_arrive_as_strings_and_are_parsed() -> None:
    config = load(
        availabilityZones="us-west-2a,us-west-2b",
        publicAccessCidrs='["203.0.113.0/24"]',
        autoMode="true",
        natGateways="single",
        endpointAccess="publicAndPrivate",
        adminPrincipalArns="",
    )
    assert config.availability_zones == ("us-west-2a", "us-west-2b")
    assert config.auto_mode is True
    assert config.nat_gateways is NatGateways.SINGLE
    assert config.endpoint_access is EndpointAccessMode.PUBLIC_AND_PRIVATE
    assert config.public_access_cidrs == ("203.0.113.0/24",)
    assert config.admin_principal_arns == ()
    assert load(endpointAccess="private").endpoint_access is EndpointAccessMode.PRIVATE


def test_training_can_switch_to_trainium_on_a_capacity_block() -> None:
    config = load(
        trainingInstanceType="trn2.48xlarge",
        trainingNodeCount="4",
        trainingAvailabilityZone="us-west-2b",
        trainingCapacity="capacityBlock",
        trainingReservationId="cr-0123456789abcdef0",
    )
    group = config.training_node_group()
    assert (group.name, group.instance_type, group.desired_size, group.availability_zone) == (
        "trn2",
        "trn2.48xlarge",
        4,
        "us-west-2b",
    )
    assert group.capacity.reservation_id == "cr-0123456789abcdef0"
    assert not group.uses_placement_group


def test_default_training_group_is_two_p5_in_the_first_az() -> None:
    group = load().training_node_group()
    assert (group.name, group.instance_type, group.desired_size, group.availability_zone) == (
        "p5",
        "p5.48xlarge",
        2,
        "us-west-2a",
    )
    assert group.uses_placement_group


def test_the_training_restart_budget_is_a_context_key() -> None:
    assert load().training_max_restarts == 3  # cdk.json states the default
    assert load(trainingMaxRestarts="0").training_max_restarts == 0  # -c gives a string
    assert load(trainingMaxRestarts=100).training_max_restarts == 100
    with pytest.raises(ValidationError, match=r"eks-ml:trainingMaxRestarts=101: allowed a whole number from 0 to 100"):
        load(trainingMaxRestarts=101)


def test_every_config_field_has_exactly_one_context_key() -> None:
    from dataclasses import fields

    from eks_ml.config import _KEYS

    assert sorted(attr for attr, _ in _KEYS.values()) == sorted(f.name for f in fields(AppConfig))


def test_other_context_keys_are_ignored() -> None:
    assert load_app_config({"@aws-cdk/core:someFlag": True, "unrelated": 1}) == AppConfig()


BAD_INPUTS = [
    pytest.param(
        {"availabilityZone": ["us-west-2a"]},
        r"eks-ml:availabilityZone=.*did you mean eks-ml:availabilityZones",
        id="unknown-key",
    ),
    pytest.param(
        {"availabilityZones": ["us-west-2a"]}, r"availabilityZones=\['us-west-2a'\]: allowed 2 to 6", id="one-az"
    ),
    pytest.param({"availabilityZones": ["us-west-2a", "us-west-2a"]}, r"each AZ once", id="repeated-az"),
    pytest.param({"availabilityZones": ["us-east-1a", "us-east-1b"]}, r"AZs of region us-west-2", id="az-other-region"),
    pytest.param({"availabilityZones": ["usw2-az1", "usw2-az2"]}, r"use AZ names, not AZ IDs", id="az-id"),
    pytest.param({"vpcCidr": "10.0.0.0/33"}, r"vpcCidr='10.0.0.0/33': allowed an IPv4 CIDR block", id="malformed-cidr"),
    pytest.param({"vpcCidr": "10.0.0.1/16"}, r"has host bits set", id="cidr-host-bits"),
    pytest.param({"vpcCidr": "10.0.0.0/12"}, r"a prefix from /16 to /28", id="cidr-too-large"),
    pytest.param({"vpcCidr": "54.0.0.0/16"}, r"a private \(RFC 1918\) range", id="public-cidr"),
    pytest.param({"vpcCidr": "10.0.0.0/17"}, r"room for 3 private /18", id="cidr-too-small-for-subnets"),
    pytest.param(
        {"vpcCidr": "10.0.0.0/20"}, r"private_subnet_mask=18: allowed a mask from /21", id="subnet-mask-too-large"
    ),
    pytest.param(
        {"kubernetesVersion": "1.30"}, r"kubernetesVersion='1.30': allowed one of 1.33, 1.34, 1.35", id="old-k8s"
    ),
    pytest.param({"kubernetesVersion": "1.36"}, r"versions with a kubectl layer on PyPI", id="k8s-without-layer"),
    pytest.param(
        {"endpointAccess": "public", "publicAccessCidrs": []},
        r"at least one CIDR while the public endpoint",
        id="empty-allow-list-private-off",
    ),
    pytest.param({"publicAccessCidrs": []}, r"or make the endpoint private", id="empty-allow-list"),
    pytest.param(
        {"endpointAccess": "private", "publicAccessCidrs": ["1.2.3.4/32"]},
        r"no public CIDRs when the endpoint",
        id="cidrs-with-private-endpoint",
    ),
    pytest.param({"publicAccessCidrs": ["1.2.3.4/40"]}, r"publicAccessCidrs='1.2.3.4/40'", id="malformed-allow-list"),
    pytest.param({"endpointAccess": "open"}, r"one of publicAndPrivate, private, public", id="bad-endpoint-mode"),
    pytest.param({"natGateways": 2}, r"one of perAz, single", id="bad-nat-mode"),
    pytest.param({"autoMode": "yes"}, r"autoMode='yes': allowed true or false", id="bad-bool"),
    pytest.param({"adminPrincipalArns": ["Admin"]}, r"IAM role or user ARNs", id="bad-principal"),
    pytest.param({"adminPrincipalArns": "[not json"}, r"a JSON list of strings", id="bad-json-list"),
    pytest.param({"name": "EKS ML"}, r"lowercase letters", id="bad-name"),
    pytest.param({"region": "oregon"}, r"a region code like us-west-2", id="bad-region"),
    pytest.param({"account": "1234"}, r"a 12-digit AWS account id", id="bad-account"),
    pytest.param({"systemInstanceType": "m7i.large"}, r"a Graviton \(arm64\) type", id="x86-system-nodes"),
    pytest.param(
        {"trainingInstanceType": "g6.48xlarge"},
        r"eks-ml:trainingInstanceType='g6.48xlarge': allowed an EFA-capable training type",
        id="training-inference-type",
    ),
    pytest.param(
        {"trainingNodeCount": "two"},
        r"trainingNodeCount='two': allowed a whole number",
        id="training-count-not-a-number",
    ),
    pytest.param({"trainingNodeCount": -1}, r"eks-ml:trainingNodeCount=", id="training-count-negative"),
    pytest.param(
        {"trainingCapacity": "spot"},
        r"one of onDemand, capacityReservation, capacityBlock",
        id="training-capacity-mode",
    ),
    pytest.param(
        {"trainingCapacity": "capacityBlock"},
        r"eks-ml:trainingReservationId=None: allowed a capacity reservation id",
        id="capacity-block-without-id",
    ),
    pytest.param(
        {"trainingReservationId": "cr-0123456789abcdef0"},
        r"no reservation id for On-Demand capacity",
        id="reservation-id-on-demand",
    ),
    pytest.param(
        {"trainingAvailabilityZone": "us-west-2d"}, r"one of eks-ml:availabilityZones", id="training-az-outside-vpc"
    ),
    pytest.param(
        {"systemInstanceType": "large"}, r"an EC2 instance type such as m7g.large", id="malformed-instance-type"
    ),
]


@pytest.mark.parametrize(("overrides", "message"), BAD_INPUTS)
def test_bad_input_is_a_validation_error_with_a_fix(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message) as raised:
        load(**overrides)
    assert all(problem.fix for problem in raised.value)


def test_every_problem_of_a_config_is_reported_at_once() -> None:
    with pytest.raises(ValidationError) as raised:
        load(vpcCidr="nope", kubernetesVersion="1.20", adminPrincipalArns=["x"])
    assert {p.field for p in raised.value} == {
        "eks-ml:vpcCidr",
        "eks-ml:kubernetesVersion",
        "eks-ml:adminPrincipalArns",
    }


def test_app_reports_bad_config_without_a_stack_trace() -> None:
    env = {**os.environ, "CDK_CONTEXT_JSON": json.dumps({"eks-ml:availabilityZones": ["us-west-2a"]})}
    result = subprocess.run(
        [sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 1
    assert "eks-ml configuration error: eks-ml:availabilityZones=['us-west-2a']" in result.stderr
    assert "Traceback" not in result.stderr


def test_alarm_emails_are_parsed_and_checked() -> None:
    from eks_ml import ValidationError, load_app_config

    from .support.synth import CDK_CONTEXT

    config = load_app_config({**CDK_CONTEXT, "eks-ml:alarmEmails": "a@example.com,b@example.com"})
    assert config.alarm_emails == ("a@example.com", "b@example.com")
    with pytest.raises(ValidationError, match=r"eks-ml:alarmEmails\[0\]='oncall': allowed an e-mail address"):
        load_app_config({**CDK_CONTEXT, "eks-ml:alarmEmails": "oncall"})


def test_the_observability_backend_is_a_choice() -> None:
    from eks_ml import ValidationError, load_app_config
    from eks_ml.observability import Backend

    from .support.synth import CDK_CONTEXT

    assert load_app_config(CDK_CONTEXT).observability_backend is Backend.CLOUDWATCH
    config = load_app_config({**CDK_CONTEXT, "eks-ml:observabilityBackend": "prometheus"})
    assert config.observability_backend is Backend.PROMETHEUS
    with pytest.raises(
        ValidationError, match=r"eks-ml:observabilityBackend='grafana': allowed one of cloudwatch, prometheus"
    ):
        load_app_config({**CDK_CONTEXT, "eks-ml:observabilityBackend": "grafana"})


def test_every_problem_is_reported_in_one_pass_even_beside_a_value_that_does_not_parse() -> None:
    with pytest.raises(ValidationError) as error:
        load_app_config(
            {
                **CDK_CONTEXT,
                "eks-ml:trainingNodeCount": "--2",  # does not parse
                "eks-ml:trainingInstanceType": "p5.48xlarg",  # a typo that used to hide behind it
                "eks-ml:vpcCidr": "8.8.0.0/16",
            }
        )
    assert [p.field for p in error.value.problems] == [
        "eks-ml:trainingNodeCount",
        "eks-ml:vpcCidr",
        "eks-ml:trainingInstanceType",
    ]


def test_a_version_without_its_kubectl_layer_is_named_by_its_context_key() -> None:
    import importlib.util

    if importlib.util.find_spec("aws_cdk.lambda_layer_kubectl_v33") is not None:
        pytest.skip("the kubectl v33 layer is installed here")
    with pytest.raises(ValidationError) as error:
        load_app_config({**CDK_CONTEXT, "eks-ml:kubernetesVersion": "1.33"})
    (problem,) = error.value.problems
    assert (problem.field, problem.fix) == (
        "eks-ml:kubernetesVersion",
        "pip install aws-cdk.lambda-layer-kubectl-v33 (or use 1.35, whose layer eks-ml installs)",
    )
