"""The validator every later chart's objects go through must accept valid objects and reject bad ones."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from .support.manifests import CRD_DIR, crd_schemas, validate_object

DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "default"},
    "spec": {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "public.ecr.aws/nginx/nginx:1.27"}]},
        },
    },
}
NODEPOOL: dict[str, Any] = {
    "apiVersion": "karpenter.sh/v1",
    "kind": "NodePool",
    "metadata": {"name": "gpu"},
    "spec": {
        "template": {
            "spec": {
                "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "gpu"},
                "requirements": [{"key": "karpenter.k8s.aws/instance-family", "operator": "In", "values": ["g6"]}],
            }
        }
    },
}

pytestmark = pytest.mark.skipif(not CRD_DIR.exists(), reason=f"{CRD_DIR} is absent")


def test_pinned_crds_are_loaded() -> None:
    kinds = {kind for _, kind in crd_schemas()}
    assert {
        "NodePool",
        "EC2NodeClass",
        "ClusterQueue",
        "LocalQueue",
        "ResourceFlavor",
        "TrainJob",
        "ClusterTrainingRuntime",
        "PyTorchJob",
        "ScaledObject",
    } <= kinds


def test_valid_builtin_and_custom_objects_pass() -> None:
    assert validate_object(DEPLOYMENT) == []
    assert validate_object(NODEPOOL) == []


def test_unknown_field_in_a_builtin_kind_fails() -> None:
    bad = copy.deepcopy(DEPLOYMENT)
    bad["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    assert validate_object(bad) != []


def test_wrong_type_in_a_builtin_kind_fails() -> None:
    bad = copy.deepcopy(DEPLOYMENT)
    bad["spec"]["replicas"] = "two"
    assert validate_object(bad) != []


def test_unknown_field_in_a_custom_kind_fails() -> None:
    bad = copy.deepcopy(NODEPOOL)
    bad["spec"]["template"]["spec"]["nodeClass"] = "gpu"
    assert any("nodeClass" in problem for problem in validate_object(bad))


def test_missing_required_field_in_a_custom_kind_fails() -> None:
    bad = copy.deepcopy(NODEPOOL)
    del bad["spec"]["template"]["spec"]["nodeClassRef"]
    assert any("nodeClassRef" in problem for problem in validate_object(bad))


def test_unknown_kind_fails() -> None:
    unknown = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {}}
    assert validate_object(unknown) != []
