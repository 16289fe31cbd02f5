"""A stack that applies a Namespace owns everything in it: deleting the stack (or switching the
observability backend) deletes the namespace with whatever other stacks put there. So a namespace
applied by one stack must hold no Helm release or object of another stack, in every variant."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import pytest

from .support.manifests import applied_objects
from .support.synth import Synthesis, of_type

HELM = "Custom::AWSCDK-EKS-HelmChart"


def owners(synthesis: Synthesis) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """("namespace@cluster" -> stacks applying that Namespace, "namespace@cluster" -> stacks using it)."""
    applied: dict[str, set[str]] = defaultdict(set)
    used: dict[str, set[str]] = defaultdict(set)
    for stack, template in synthesis.templates.items():
        for obj in applied_objects(template):
            if obj["kind"] == "Namespace":
                applied[f"{obj['metadata']['name']}@{cluster_of(stack)}"].add(stack)
            elif obj.get("metadata", {}).get("namespace"):
                used[f"{obj['metadata']['namespace']}@{cluster_of(stack)}"].add(stack)
        for release in of_type(template, HELM).values():
            used[f"{release['Properties']['Namespace']}@{cluster_of(stack)}"].add(stack)
    return applied, used


def cluster_of(stack: str) -> str:
    """The default app's stacks per cluster: "Training" and "TrainingObservability" share one."""
    return stack.removesuffix("Observability")


def foreign_tenants(synthesis: Synthesis) -> list[str]:
    applied, used = owners(synthesis)
    problems = []
    for key, stacks in applied.items():
        namespace, _ = key.split("@")
        if len(stacks) > 1:
            problems.append(f"Namespace {namespace} is applied by {sorted(stacks)}")
        foreign = used.get(key, set()) - stacks
        if foreign:
            problems.append(f"Namespace {namespace} of {sorted(stacks)} also holds objects of {sorted(foreign)}")
    return problems


@pytest.mark.parametrize("synth", ["default_synth", "prometheus_synth"])
def test_no_stack_applies_a_namespace_another_stack_uses(synth: str, request: pytest.FixtureRequest) -> None:
    assert foreign_tenants(request.getfixturevalue(synth)) == []


def test_the_check_catches_an_observability_stack_owning_the_inference_monitoring_namespace(
    prometheus_synth: Synthesis,
) -> None:
    # The defect this guards against: the exporters' chart applied Namespace "monitoring", where the
    # Inference stack's Prometheus and adapter live.
    templates: dict[str, Any] = json.loads(json.dumps(prometheus_synth.templates))
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "monitoring"}}
    resource = next(
        r
        for r in templates["InferenceObservability"]["Resources"].values()
        if r["Type"] == "Custom::AWSCDK-EKS-KubernetesResource"
    )
    manifest = resource["Properties"]["Manifest"]
    objects = json.loads(
        manifest
        if isinstance(manifest, str)
        else "".join(p if isinstance(p, str) else '"TOKEN"' for p in manifest["Fn::Join"][1])
    )
    resource["Properties"]["Manifest"] = json.dumps([namespace, *objects])
    broken = Synthesis(prometheus_synth.outdir, templates, None, None)
    assert any("Namespace monitoring" in p and "Inference" in p for p in foreign_tenants(broken))
