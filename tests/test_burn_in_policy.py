"""The burn-in admission policy, evaluated with CEL on admission requests like the ones the report step sends:
its own node and its own keys pass, everything else from that service account is denied, and other users are
not matched. Each rule is also shown to matter: the policy without it lets the forbidden request through."""

from __future__ import annotations

import copy
import functools
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cdk8s
import kubernetes_validate
import pytest

from eks_ml.k8s import burn_in_policy
from eks_ml.k8s.burn_in import BURN_IN_KEY, PENDING, REASON_ANNOTATION, BurnInChart, BurnInValues
from eks_ml.k8s.node_checks import verdict

from .support.admission_policy import Decision, evaluate
from .support.manifests import KUBERNETES_VERSION, validate_object
from .test_burn_in import merge_patch

NAMESPACE = "eks-ml-burn-in"
USER = f"system:serviceaccount:{NAMESPACE}:burn-in"
OWN, OTHER = "ip-10-0-1-1.ec2.internal", "ip-10-0-2-2.ec2.internal"


@functools.cache
def _objects() -> tuple[dict[str, Any], ...]:
    chart = BurnInChart(cdk8s.App(), "BurnIn", BurnInValues(namespace=NAMESPACE, groups=[]))
    return tuple(chart.to_json())


def _policy() -> dict[str, Any]:
    (policy,) = [o for o in _objects() if o["kind"] == "ValidatingAdmissionPolicy"]
    return copy.deepcopy(policy)


def _node(name: str = OWN) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "resourceVersion": "41",
            "labels": {"kubernetes.io/hostname": name, "eks-ml.io/node-role": "training"},
            "annotations": {"node.alpha.kubernetes.io/ttl": "0"},
        },
        "spec": {
            "providerID": "aws:///us-east-1a/i-0abc",
            "taints": [
                {"key": BURN_IN_KEY, "value": PENDING, "effect": "NoSchedule"},
                {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"},
            ],
        },
    }


def _request(
    old: dict[str, Any], new: dict[str, Any], *, node_name: str | None = OWN, user: str = USER
) -> dict[str, Any]:
    extra = {"authentication.kubernetes.io/pod-name": ["burn-in-p5-abcde"]}
    if node_name is not None:
        extra[burn_in_policy.NODE_NAME_EXTRA] = [node_name]
    return {
        "kind": {"group": "", "version": "v1", "kind": "Node"},
        "resource": {"group": "", "version": "v1", "resource": "nodes"},
        "operation": "UPDATE",
        "name": new["metadata"]["name"],
        "userInfo": {"username": user, "groups": ["system:serviceaccounts"], "extra": extra},
        "object": new,
        "oldObject": old,
    }


@pytest.fixture
def verdict_env() -> Iterator[None]:
    keys = {"TAINT_KEY": BURN_IN_KEY, "LABEL_KEY": BURN_IN_KEY, "REASON_ANNOTATION": REASON_ANNOTATION}
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.update(keys)
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _verdict(node: dict[str, Any], reason: str | None) -> dict[str, Any]:
    """The node as the report step's real merge patch leaves it."""
    patched: dict[str, Any] = merge_patch(copy.deepcopy(node), verdict.verdict_patch(node, reason))
    return patched


def _decide(request: dict[str, Any], policy: dict[str, Any] | None = None) -> Decision:
    return evaluate(policy or _policy(), request)


@pytest.mark.usefixtures("verdict_env")
@pytest.mark.parametrize("reason", [None, "efa-count: 31 of 32 EFA devices"])
def test_the_report_steps_own_patch_is_allowed(reason: str | None) -> None:
    node = _node()
    patched = _verdict(node, reason)
    assert patched != node
    decision = _decide(_request(node, patched))
    assert decision.applies and decision.allowed, decision.denied_by


def _changed(change: str) -> dict[str, Any]:
    node = _node()
    if change == "other label":
        node["metadata"]["labels"]["eks-ml.io/node-role"] = "inference"
    elif change == "label removed":
        del node["metadata"]["labels"]["kubernetes.io/hostname"]
    elif change == "other annotation":
        node["metadata"]["annotations"]["x"] = "y"
    elif change == "other taint":
        node["spec"]["taints"] = [t for t in node["spec"]["taints"] if t["key"] != "nvidia.com/gpu"]
    elif change == "taint added":
        node["spec"]["taints"].append({"key": "x", "effect": "NoExecute"})
    elif change == "unschedulable":
        node["spec"]["unschedulable"] = True
    elif change == "providerID":
        node["spec"]["providerID"] = "aws:///us-east-1a/i-0def"
    elif change == "finalizer":
        node["metadata"]["finalizers"] = ["example.com/keep"]
    return node


CHANGES = {
    "other label": "eks-ml.io/burn-in label",
    "label removed": "eks-ml.io/burn-in label",
    "other annotation": "eks-ml.io/burn-in-reason annotation",
    "other taint": "eks-ml.io/burn-in taint",
    "taint added": "eks-ml.io/burn-in taint",
    "unschedulable": "no node spec field",
    "providerID": "no node spec field",
    "finalizer": "finalizers",
}


@pytest.mark.usefixtures("verdict_env")
@pytest.mark.parametrize("change", CHANGES)
def test_any_other_change_is_denied(change: str) -> None:
    node = _node()
    # Along with a legitimate verdict, so the denial is due to the extra change alone.
    patched = _verdict(node, None)
    extra = _changed(change)
    patched["metadata"]["labels"] = {**extra["metadata"]["labels"], BURN_IN_KEY: verdict.PASSED}
    patched["metadata"]["annotations"] = extra["metadata"]["annotations"]
    patched["spec"] = {**extra["spec"], "taints": [t for t in extra["spec"]["taints"] if t["key"] != BURN_IN_KEY]}
    if "finalizers" in extra["metadata"]:
        patched["metadata"]["finalizers"] = extra["metadata"]["finalizers"]
    decision = _decide(_request(node, patched))
    assert decision.denied_by is not None and CHANGES[change] in decision.denied_by, decision


@pytest.mark.usefixtures("verdict_env")
def test_another_node_is_denied() -> None:
    node = _node(OTHER)
    decision = _decide(_request(node, _verdict(node, None), node_name=OWN))
    assert decision.denied_by is not None and "only the node its pod runs on" in decision.denied_by


@pytest.mark.usefixtures("verdict_env")
@pytest.mark.parametrize("extra", ["no node-name claim", "no extra at all", "two node names"])
def test_a_token_without_exactly_one_node_name_is_denied(extra: str) -> None:
    node = _node()
    request = _request(node, _verdict(node, None), node_name=None)
    if extra == "no extra at all":
        del request["userInfo"]["extra"]
    elif extra == "two node names":
        request["userInfo"]["extra"][burn_in_policy.NODE_NAME_EXTRA] = [OWN, OWN]
    decision = _decide(request)
    assert decision.applies and decision.denied_by is not None


@pytest.mark.usefixtures("verdict_env")
@pytest.mark.parametrize(
    "user", ["system:serviceaccount:kube-system:node-controller", "system:serviceaccount:other:burn-in", "admin"]
)
def test_other_users_are_not_matched(user: str) -> None:
    node = _node(OTHER)
    request = _request(node, _changed("unschedulable"), node_name=None, user=user)
    assert not _decide(request).applies


def test_pods_status_and_other_subresources_are_not_matched() -> None:
    node = _node()
    request = _request(node, node)
    request["subResource"] = "status"
    assert not _decide(request).applies


# -- each rule matters: without it, the request it exists for gets through ---------------------------------


def _without(policy: dict[str, Any], words: str) -> dict[str, Any]:
    validations = policy["spec"]["validations"]
    policy["spec"]["validations"] = [v for v in validations if words not in v["message"]]
    assert len(policy["spec"]["validations"]) == len(validations) - 1, words
    return policy


@pytest.mark.usefixtures("verdict_env")
def test_without_the_node_name_rule_another_node_passes() -> None:
    node = _node(OTHER)
    request = _request(node, _verdict(node, None), node_name=OWN)
    assert _decide(request, _without(_policy(), "only the node its pod runs on")).allowed
    no_claim = _request(_node(), _verdict(_node(), None), node_name=None)
    assert _decide(no_claim, _without(_policy(), "only the node its pod runs on")).allowed


@pytest.mark.usefixtures("verdict_env")
@pytest.mark.parametrize("change", CHANGES)
def test_without_its_rule_each_change_passes(change: str) -> None:
    node = _node()
    patched = _changed(change)
    assert _decide(_request(node, patched), _without(_policy(), CHANGES[change])).allowed


def test_without_the_match_condition_other_users_are_matched() -> None:
    policy = _policy()
    policy["spec"]["matchConditions"] = []
    node = _node()
    assert _decide(_request(node, node, user="admin"), policy).applies


# -- the objects themselves --------------------------------------------------------------------------------


def test_policy_and_binding_are_valid_kubernetes_objects() -> None:
    objects = [o for o in _objects() if o["apiVersion"] == "admissionregistration.k8s.io/v1"]
    assert sorted(o["kind"] for o in objects) == ["ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"]
    for obj in objects:
        assert validate_object(obj) == []
    (binding,) = [o for o in objects if o["kind"] == "ValidatingAdmissionPolicyBinding"]
    assert binding["spec"] == {"policyName": _policy()["metadata"]["name"], "validationActions": ["Deny"]}
    broken = copy.deepcopy(binding)
    broken["spec"]["validationActions"] = "Deny"  # a string, not a list
    assert validate_object(broken) != []


def test_the_match_condition_names_the_burn_in_service_account() -> None:
    (condition,) = _policy()["spec"]["matchConditions"]
    assert json.dumps(USER)[1:-1] in condition["expression"]


def _node_spec_fields() -> set[str]:
    schemas = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    path = schemas / f"v{KUBERNETES_VERSION}-local-strict" / "nodespec-v1.json"
    if not path.exists():
        pytest.skip(f"kubernetes-validate has no NodeSpec schema for {KUBERNETES_VERSION}")
    return set(json.loads(path.read_text())["properties"])


def test_every_node_spec_field_but_taints_is_kept() -> None:
    assert set(burn_in_policy.NODE_SPEC_FIELDS_KEPT) | {"taints"} == _node_spec_fields()
