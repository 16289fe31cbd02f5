"""The Kubernetes naming rules accept what the API server accepts and refuse what it (or a CRD) refuses."""

from __future__ import annotations

import pytest

from eks_ml._naming import check_unique_ids, pascal
from eks_ml.aws_names import IAM_ROLE_NAME_MAX, check_derived_name
from eks_ml.errors import Problems
from eks_ml.kube_names import check_dns_label, check_dns_subdomain, check_labels, check_namespace

VALID_LABELS = ["a", "p5", "p6-b200", "a" * 63, "0abc"]
INVALID_LABELS = ["", "-a", "a-", "A", "a_b", "a.b", "a" * 64, "a b"]


@pytest.mark.parametrize("name", VALID_LABELS)
def test_dns_labels_the_api_server_accepts_pass(name: str) -> None:
    problems = Problems()
    assert check_dns_label(name, "name", problems) and not problems.found


@pytest.mark.parametrize("name", INVALID_LABELS)
def test_dns_labels_the_api_server_refuses_fail(name: str) -> None:
    problems = Problems()
    assert not check_dns_label(name, "name", problems)
    assert problems.found[0].field == "name" and "rename it" in problems.found[0].fix


@pytest.mark.parametrize(("name", "ok"), [("fsx", True), ("fsx.data-1", True), ("fsx_", False), ("a." * 130, False)])
def test_dns_subdomains(name: str, ok: bool) -> None:
    assert check_dns_subdomain(name, "claim", Problems()) is ok


@pytest.mark.parametrize(("name", "ok"), [("training", True), ("kube-system", False), ("kubeflow", True)])
def test_namespaces_outside_kube_prefix(name: str, ok: bool) -> None:
    assert check_namespace(name, "namespace", Problems()) is ok


@pytest.mark.parametrize(
    ("labels", "ok"),
    [
        ({"team": "ml"}, True),
        ({"example.com/team": ""}, True),  # an empty value is a valid label value
        ({"example.com/team": "a_b.c-D"}, True),
        ({"kubernetes.example.com/team": "a"}, True),  # a prefix ending in ".com", not in kubernetes.io
        ({"topology.kubernetes.io/zone": "a"}, False),  # a subdomain of a reserved domain
        ({"karpenter.sh/nodepool": "a"}, False),
        ({"example.com/team": "a" * 64}, False),
        ({"/team": "a"}, False),
        ({"example.com/": "a"}, False),
    ],
)
def test_labels(labels: dict[str, str], ok: bool) -> None:
    problems = Problems()
    check_labels(labels, "labels", problems)
    assert (not problems.found) is ok, problems.found


def test_derived_names_fit_their_limit_exactly() -> None:
    problems = Problems()
    name = "c" * 49
    assert check_derived_name(f"{name}-karpenter-node", IAM_ROLE_NAME_MAX, "IAM role", "cluster_name", name, problems)
    name += "c"
    assert not check_derived_name(
        f"{name}-karpenter-node", IAM_ROLE_NAME_MAX, "IAM role", "cluster_name", name, problems
    )
    assert "at most 49 characters" in problems.found[0].fix


def test_construct_ids_that_collide_are_refused_and_distinct_ones_pass() -> None:
    assert pascal("qwen-3") == pascal("qwen3")  # why the check exists
    problems = Problems()
    check_unique_ids(["p5-a", "p5-b", "trn1"], pascal, "names", problems)
    assert not problems.found
    check_unique_ids(["qwen-3", "qwen3"], pascal, "names", problems, taken=["Trn1"])
    check_unique_ids(["trn1"], pascal, "names", problems, taken=["Trn1"])
    assert [p.value for p in problems.found] == ["qwen3", "trn1"]
