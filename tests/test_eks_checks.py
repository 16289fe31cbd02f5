"""The EKS checks must be able to fail: each is shown a template built to break it."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from .support import eks_checks
from .support.synth import Synthesis


@pytest.fixture
def training(default_synth: Synthesis) -> dict[str, Any]:
    return copy.deepcopy(default_synth.templates["Training"])


def _first(template: dict[str, Any], resource_type: str) -> dict[str, Any]:
    return next(r for r in template["Resources"].values() if r["Type"] == resource_type)["Properties"]


def test_private_endpoint_off(training: dict[str, Any]) -> None:
    _first(training, "AWS::EKS::Cluster")["ResourcesVpcConfig"]["EndpointPrivateAccess"] = False
    assert any("private endpoint access is off" in f for f in eks_checks.cluster_findings(training))


def test_public_endpoint_without_allow_list(training: dict[str, Any]) -> None:
    del _first(training, "AWS::EKS::Cluster")["ResourcesVpcConfig"]["PublicAccessCidrs"]
    assert any("without an explicit CIDR" in f for f in eks_checks.cluster_findings(training))


def test_missing_log_type(training: dict[str, Any]) -> None:
    _first(training, "AWS::EKS::Cluster")["Logging"]["ClusterLogging"]["EnabledTypes"].pop()
    assert any("want all five" in f for f in eks_checks.cluster_findings(training))


def test_unencrypted_secrets(training: dict[str, Any]) -> None:
    del _first(training, "AWS::EKS::Cluster")["EncryptionConfig"]
    assert any("not envelope-encrypted" in f for f in eks_checks.cluster_findings(training))


def test_key_without_rotation(training: dict[str, Any]) -> None:
    _first(training, "AWS::KMS::Key")["EnableKeyRotation"] = False
    assert any("not a rotating KMS key" in f for f in eks_checks.cluster_findings(training))


def test_imds_v1_and_high_hop_limit_and_plain_volume(training: dict[str, Any]) -> None:
    data = _first(training, "AWS::EC2::LaunchTemplate")["LaunchTemplateData"]
    data["MetadataOptions"] = {"HttpTokens": "optional", "HttpPutResponseHopLimit": 3}
    data["BlockDeviceMappings"][0]["Ebs"]["Encrypted"] = False
    findings = eks_checks.launch_template_findings(training)
    assert len(findings) == 3


def test_nodegroup_without_launch_template_or_repair(training: dict[str, Any]) -> None:
    props = _first(training, "AWS::EKS::Nodegroup")
    del props["LaunchTemplate"]
    props["NodeRepairConfig"] = {"Enabled": False}
    assert len(eks_checks.nodegroup_findings(training)) == 2
