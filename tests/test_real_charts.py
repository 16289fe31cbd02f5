"""The real-chart gate (DESIGN.md, "Proving a cluster works as a whole", layer 2).

Every Helm release of every app variant is rendered with ``helm template`` of the real pinned chart and
the exact values in the synthesized template, and: the render succeeds; every value key eks-ml passes
changes the output (a key the chart ignores is a setting that silently does nothing); the rendered pods'
placement and requests match the PodValues declared beside the pin (which the cluster model trusts);
every object validates; and every Pod Identity service account exists and is used by a pod.

Offline without ../shared (a user's fresh clone) every render test skips with ``charts.HOW_TO_ENABLE``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from eks_ml.helm import DCGM_EXPORTER, KARPENTER, HelmChartPin

from .support import charts
from .support.gated_apps import GATED_APPS
from .support.manifests import applied_objects, validate_object
from .support.releases import (
    POD_IDENTITY,
    RENDER,
    Release,
    canonical,
    ignored_keys,
    placement_problems,
    pod_identity_problems,
    releases,
)
from .support.synth import Synthesis, of_type

EXAMPLE = Path(__file__).parent.parent / "examples" / "existing_vpc_inference" / "app.py"

# The releases each variant installs, by stack (inference GPU pools run Bottlerocket, which ships the NVIDIA
# device plugin: only inference-patterns' multi-node EFA pool runs AL2023 and gets the release). Spelled out so
# the parametrized ids are readable and known at collection time; test_every_release_is_gated fails when a
# variant installs one not listed here.
_INFERENCE = ["karpenter", "aws-load-balancer-controller", "prometheus-adapter", "prometheus"]
_TRAINING = ["aws-efa-device-plugin", "kubeflow-trainer", "kueue"]
_OBSERVED = ["dcgm-exporter", "kube-state-metrics", "node-exporter"]
EXPECTED: dict[str, list[str]] = {
    "default": [
        *(f"Inference/{r}" for r in [*_INFERENCE, "neuron"]),
        *(f"Training/{r}" for r in [*_TRAINING, "nvidia-device-plugin"]),
    ],
    "prometheus": [
        *(f"Inference/{r}" for r in [*_INFERENCE, "neuron"]),
        *(f"InferenceObservability/{r}" for r in _OBSERVED),
        *(f"Training/{r}" for r in [*_TRAINING, "nvidia-device-plugin"]),
        *(f"TrainingObservability/{r}" for r in _OBSERVED),
    ],
    "trainium": [
        *(f"Inference/{r}" for r in [*_INFERENCE, "neuron"]),
        *(f"Training/{r}" for r in [*_TRAINING, "neuron"]),
    ],
    # Auto Mode runs Karpenter and the load balancer controller itself.
    "auto-mode": [
        *(f"Inference/{r}" for r in ["prometheus-adapter", "prometheus"]),
        *(f"Training/{r}" for r in [*_TRAINING, "nvidia-device-plugin"]),
    ],
    "example": [f"Serving/{r}" for r in _INFERENCE],
    "karpenter-training": [
        f"KarpenterTraining/{r}" for r in [*_TRAINING, "karpenter", "neuron", "nvidia-device-plugin"]
    ],
    # examples/inference_patterns: Kueue only for its batch job (eks_ml.inference.batch), KEDA only for its
    # queue workers (eks_ml.inference.queue_worker), LWS and the EFA device plugin only for its multi-node
    # service (eks_ml.inference.multi_node); the serving releases for its Triton services.
    "inference-patterns": [
        f"Patterns/{r}"
        for r in [*_INFERENCE, "keda", "kueue", "lws", "aws-efa-device-plugin", "neuron", "nvidia-device-plugin"]
    ],
}
CASES = [
    pytest.param(variant, release, id=f"{variant}:{release}") for variant, ids in EXPECTED.items() for release in ids
]


@pytest.fixture(scope="module")
def variants(request: pytest.FixtureRequest) -> dict[str, Synthesis]:
    """Synths are requested lazily: `-k trainium` synthesizes only what it needs."""

    class Lazy(dict[str, Synthesis]):
        names = GATED_APPS

        def __missing__(self, key: str) -> Synthesis:
            self[key] = request.getfixturevalue(self.names[key])
            return self[key]

    return Lazy()


def _release(variants: Mapping[str, Synthesis], variant: str, release_id: str) -> Release:
    (found,) = [r for r in releases(variants[variant].templates) if r.id == release_id]
    return found


def _rendered(release: Release) -> tuple[HelmChartPin, list[dict[str, Any]]]:
    pin = release.pin
    assert pin is not None, f"{release.id} installs {release.chart} {release.version}, which is not in ALL_CHARTS"
    if charts.chart_archive(pin) is None:
        pytest.skip(charts.HOW_TO_ENABLE)
    objects = RENDER(pin, release.values)
    assert not isinstance(objects, str), f"{release.id}: {objects}"
    return pin, objects


@pytest.mark.parametrize("variant", list(EXPECTED))
def test_every_release_is_gated(variants: Mapping[str, Synthesis], variant: str) -> None:
    found = releases(variants[variant].templates)
    assert sorted(r.id for r in found) == sorted(EXPECTED[variant])
    assert [r.id for r in found if r.pin is None] == []


@pytest.mark.parametrize(("variant", "release_id"), CASES)
def test_every_value_key_changes_the_render(variants: Mapping[str, Synthesis], variant: str, release_id: str) -> None:
    release = _release(variants, variant, release_id)
    pin, _ = _rendered(release)
    # Apps that install a chart with the same values get the same verdict: it is worked out once per run.
    same_input = [pin.chart, pin.version, charts.archive_digest(pin), canonical(release.values)]
    assert charts.shared_result("ignored-keys", same_input, lambda: ignored_keys(pin, release.values)) == []


@pytest.mark.parametrize(("variant", "release_id"), CASES)
def test_placement_matches_the_declaration(variants: Mapping[str, Synthesis], variant: str, release_id: str) -> None:
    release = _release(variants, variant, release_id)
    pin, objects = _rendered(release)
    assert placement_problems(pin, release.values, objects) == []


# Custom kinds the validator cannot check yet although their chart ships the CRD. Empty: the CRD gate
# reads every pinned chart's CRDs (crds/ folders included), so any unknown kind fails.
AWAITING_CRD_GATE: set[tuple[str, str]] = set()  # the CEL gate validates every chart-shipped kind now


def _chart_crds(pin: HelmChartPin, values: Mapping[str, Any]) -> set[tuple[str, str]]:
    crds = [o for o in charts.render(pin, values, include_crds=True) if o.get("kind") == "CustomResourceDefinition"]
    return {
        (f"{crd['spec']['group']}/{version['name']}", crd["spec"]["names"]["kind"])
        for crd in crds
        for version in crd["spec"]["versions"]
    }


@pytest.mark.parametrize(("variant", "release_id"), CASES)
def test_every_rendered_object_validates(variants: Mapping[str, Synthesis], variant: str, release_id: str) -> None:
    release = _release(variants, variant, release_id)
    pin, objects = _rendered(release)
    # Every object's problems (keyed by kind, a later object of a kind once replaced an earlier one's).
    problems = [((o.get("apiVersion"), o.get("kind")), validate_object(o)) for o in objects]
    awaiting = {key for key, found in problems if found and key in AWAITING_CRD_GATE}
    assert not awaiting or awaiting <= _chart_crds(pin, release.values), (
        "a kind listed as awaiting the CRD gate must come with its chart's CRD"
    )
    assert [p for key, found in problems if key not in awaiting for p in found] == []


@pytest.mark.parametrize("variant", list(EXPECTED))
def test_pod_identity_service_accounts_are_rendered_and_used(variants: Mapping[str, Synthesis], variant: str) -> None:
    checked, unavailable = 0, []
    for stack, template in variants[variant].templates.items():
        objects, namespaces = applied_objects(template), {}
        for release in releases({stack: template}):
            pin = release.pin
            assert pin is not None, release.id
            if charts.chart_archive(pin) is None:  # karpenter-crd offline: a chart that runs no pods
                unavailable.append(release.id)
                continue
            _, rendered = _rendered(release)
            objects.extend(rendered)
            namespaces.update({id(obj): release.namespace for obj in rendered})
        problems = pod_identity_problems(template, objects, namespaces)
        if problems and unavailable:
            pytest.skip(f"{problems}, but {unavailable} could not be rendered: {charts.HOW_TO_ENABLE}")
        assert problems == [], stack
        checked += len(of_type(template, POD_IDENTITY))
    # Karpenter and the load balancer controller use Pod Identity wherever they are installed.
    assert checked > 0 or variant == "auto-mode"


# ---- the gate catches what it claims --------------------------------------------------------------------


def _need(pin: HelmChartPin) -> None:
    if charts.chart_archive(pin) is None:
        pytest.skip(charts.HOW_TO_ENABLE)


def test_an_ignored_value_key_is_reported() -> None:
    # dcgm-exporter 4.x dropped mapPodsMetrics (it now always maps pods); eks-ml once still set it.
    _need(DCGM_EXPORTER)
    assert ignored_keys(DCGM_EXPORTER, {"mapPodsMetrics": True, "serviceMonitor": {"enabled": False}}) == [
        "mapPodsMetrics"
    ]


def test_a_declaration_that_differs_from_the_chart_is_reported() -> None:
    _need(KARPENTER)
    values = {
        "settings": {"clusterName": "c"},
        "controller": {"resources": {"requests": {"cpu": "1"}}},
        "nodeSelector": {"role": "system"},
    }
    (pod,) = KARPENTER.pods
    wrong = replace(KARPENTER, pods=(replace(pod, resources={"controller": "resources"}),))
    objects = RENDER(KARPENTER, values)
    assert not isinstance(objects, str)
    assert placement_problems(KARPENTER, values, objects) == []
    (problem,) = placement_problems(wrong, values, objects)
    assert "container controller resources declared {}" in problem
    undeclared = replace(KARPENTER, pods=())
    assert placement_problems(undeclared, values, objects) == [
        "Deployment karpenter is rendered but not declared in karpenter's pods"
    ]


def test_a_pod_identity_service_account_the_chart_does_not_render_is_reported() -> None:
    _need(KARPENTER)
    objects = RENDER(KARPENTER, {"settings": {"clusterName": "c"}, "serviceAccount": {"name": "karpenter"}})
    assert not isinstance(objects, str)

    def template(account: str) -> dict[str, Any]:
        properties = {"Namespace": "kube-system", "ServiceAccount": account, "ClusterName": "c", "RoleArn": "r"}
        return {"Resources": {"Assoc": {"Type": "AWS::EKS::PodIdentityAssociation", "Properties": properties}}}

    namespaces = {id(obj): KARPENTER.namespace for obj in objects}
    assert pod_identity_problems(template("karpenter"), objects, namespaces) == []
    assert pod_identity_problems(template("karpenter-controller"), objects, namespaces) == [
        "Assoc: service account kube-system/karpenter-controller is not created by any release or manifest",
        "Assoc: no pod runs as service account kube-system/karpenter-controller",
    ]
