"""The validator every later chart's objects go through must accept valid objects and reject bad ones."""

from __future__ import annotations

import copy
from typing import Any

from eks_ml import helm

from .support import crds
from .support.manifests import requires_chart_cache, validate_object

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

# The kinds eks-ml applies (or its users submit), by the pinned chart that installs their CRD. JobSet comes
# from kubeflow-trainer's jobset subchart (crds/ folder), Kueue's and KEDA's CRDs from their templates.
EXPECTED_KINDS = {
    helm.KARPENTER: {"NodePool", "EC2NodeClass"},
    helm.KUEUE: {"ClusterQueue", "LocalQueue", "ResourceFlavor"},
    helm.KUBEFLOW_TRAINER: {"TrainJob", "ClusterTrainingRuntime", "JobSet"},
    helm.AWS_LOAD_BALANCER_CONTROLLER: {"TargetGroupBinding", "IngressClassParams"},
    helm.KEDA: {"ScaledObject", "TriggerAuthentication"},
}


@requires_chart_cache
def test_the_crds_come_from_the_pinned_charts() -> None:
    by_chart = crds.crds_by_chart()
    assert set(by_chart) == {pin.chart for pin in helm.ALL_CHARTS}  # every pinned chart was rendered
    for pin, kinds in EXPECTED_KINDS.items():
        assert kinds <= {crd["spec"]["names"]["kind"] for crd in by_chart[pin.chart]}, pin.chart
    served = {kind for _, kind in crds.served_schemas()}
    assert set().union(*EXPECTED_KINDS.values()) <= served
    # The old hand-pinned copies (../shared/crds) had this; no pinned chart installs it (ScaledObject now comes
    # from the pinned KEDA chart, above).
    assert "PyTorchJob" not in served


def test_a_valid_builtin_object_passes() -> None:
    assert validate_object(DEPLOYMENT) == []


@requires_chart_cache
def test_a_valid_custom_object_passes() -> None:
    assert validate_object(NODEPOOL) == []


def test_unknown_field_in_a_builtin_kind_fails() -> None:
    bad = copy.deepcopy(DEPLOYMENT)
    bad["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    assert validate_object(bad) != []


def test_wrong_type_in_a_builtin_kind_fails() -> None:
    bad = copy.deepcopy(DEPLOYMENT)
    bad["spec"]["replicas"] = "two"
    assert validate_object(bad) != []


@requires_chart_cache
def test_unknown_field_in_a_custom_kind_fails() -> None:
    bad = copy.deepcopy(NODEPOOL)
    bad["spec"]["template"]["spec"]["nodeClass"] = "gpu"
    assert any("nodeClass" in problem for problem in validate_object(bad))


@requires_chart_cache
def test_missing_required_field_in_a_custom_kind_fails() -> None:
    bad = copy.deepcopy(NODEPOOL)
    del bad["spec"]["template"]["spec"]["nodeClassRef"]
    assert any("nodeClassRef" in problem for problem in validate_object(bad))


@requires_chart_cache
def test_unknown_kind_fails() -> None:
    unknown = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {}}
    assert validate_object(unknown) == [
        "Widget/w: ('example.com/v1', 'Widget') is not a known built-in kind nor a CRD of the pinned charts"
    ]


@requires_chart_cache
def test_a_custom_kind_of_a_version_no_chart_serves_fails() -> None:
    old = copy.deepcopy(NODEPOOL)
    old["apiVersion"] = "karpenter.sh/v1beta1"
    assert validate_object(old) != []
