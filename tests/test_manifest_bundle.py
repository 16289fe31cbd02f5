"""One kubectl-provider manifest per install stage (eks_ml.manifest_bundle): what it applies, in what order,
with the label aws_eks_v2's prune step selects on."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from aws_cdk.assertions import Template

from eks_ml import helm
from eks_ml.cluster.versions import RELEASES
from eks_ml.manifest_bundle import KUBECTL_DEFAULT_PRUNE, PRELUDE, ManifestBundle, _ManifestText, identity
from eks_ml.placement import ClusterModel

from .support.synth import Synthesis, joined, library_stack, of_type

MANIFEST = "Custom::AWSCDK-EKS-KubernetesResource"


def _namespace(name: str, **labels: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def _config_map(name: str, namespace: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace}}


def _cluster() -> tuple[Stack, eks.Cluster]:
    _, stack = library_stack()
    release = RELEASES["1.35"]
    cluster = eks.Cluster(
        stack,
        "Cluster",
        version=release.eks_version,
        vpc=ec2.Vpc(stack, "Vpc", max_azs=2, nat_gateways=1),
        kubectl_provider_options=eks.KubectlProviderOptions(kubectl_layer=release.kubectl_layer(stack, "Kubectl")),
    )
    return stack, cluster


@pytest.fixture(scope="module")
def bundled() -> tuple[Stack, ManifestBundle, ManifestBundle]:
    stack, cluster = _cluster()
    used = ManifestBundle(stack, "Used", cluster=cluster)
    used.add([_namespace("team")])
    used.add([_config_map("settings", "team"), _namespace("team")])  # the namespace again: applied once
    empty = ManifestBundle(stack, "Empty", cluster=cluster)
    return stack, used, empty


def test_objects_are_applied_once_in_the_order_added_with_the_prune_label(
    bundled: tuple[Stack, ManifestBundle, ManifestBundle],
) -> None:
    stack, used, _ = bundled
    template = Template.from_stack(stack).to_json()
    (resource,) = of_type(template, MANIFEST).values()
    objects = json.loads(joined(resource["Properties"]["Manifest"]))
    assert [(o["kind"], o["metadata"]["name"]) for o in objects] == [("Namespace", "team"), ("ConfigMap", "settings")]
    # aws_eks_v2 runs `kubectl apply --prune -l <PruneLabel>` on update: an object without it would be skipped.
    label = resource["Properties"]["PruneLabel"]
    assert label == used.prune_label
    assert all(label in o["metadata"]["labels"] for o in objects)
    assert resource["Properties"]["Overwrite"] is True


def test_a_bundle_nothing_was_added_to_creates_no_resource(
    bundled: tuple[Stack, ManifestBundle, ManifestBundle],
) -> None:
    _, _, empty = bundled
    assert empty.manifest is None
    assert empty.node.children == []


def test_two_different_objects_with_one_identity_are_refused(
    bundled: tuple[Stack, ManifestBundle, ManifestBundle],
) -> None:
    _, used, _ = bundled
    with pytest.raises(ValueError, match="two different"):
        used.add([_namespace("team", **{"pod-security.kubernetes.io/enforce": "privileged"})])


def test_identity_is_group_kind_namespace_and_name() -> None:
    assert identity(_config_map("a", "x")) == ("", "ConfigMap", "x", "a")
    assert identity({"apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": "gpu"}}) == (
        "karpenter.sh",
        "NodePool",
        "",
        "gpu",
    )


def test_a_chart_with_crd_files_not_in_the_clusters_crd_job_is_refused() -> None:
    # One Job per prelude applies the CRDs of every chart declared up front; a chart left out would be
    # installed over CRDs nothing upgrades.
    stack, cluster = _cluster()
    prelude = ManifestBundle(stack, PRELUDE, cluster=cluster)
    model = ClusterModel("test")
    helm.upgrade_crds(prelude, [helm.KARPENTER], placement={}, model=model)
    helm.install(stack, "Karpenter", cluster, helm.KARPENTER, model=model, placement={})
    with pytest.raises(TypeError, match="helm.upgrade_crds"):
        helm.install(stack, "LoadBalancer", cluster, helm.AWS_LOAD_BALANCER_CONTROLLER, model=model, placement={})
    with pytest.raises(TypeError, match="already has its CRD upgrade Job"):
        helm.upgrade_crds(prelude, [helm.AWS_LOAD_BALANCER_CONTROLLER], placement={}, model=model)


def _bundled_kinds(templates: dict[str, dict[str, Any]]) -> set[tuple[str, str]]:
    """(API group, kind) of every object in a pruned kubectl-provider manifest of ``templates``."""
    found = set()
    for template in templates.values():
        for resource in of_type(template, MANIFEST).values():
            if "PruneLabel" not in resource["Properties"]:
                continue
            for obj in json.loads(joined(resource["Properties"]["Manifest"])):
                found.add(identity(obj)[:2])
    return found


def _readme_section(title: str) -> str:
    text = (Path(__file__).parent.parent / "README.md").read_text()
    start = text.index(title)
    return text[start : text.index("\n- **", start + 1)]


def test_the_readme_names_every_bundled_kind_a_later_deploy_does_not_delete(
    default_synth: Synthesis, prometheus_synth: Synthesis
) -> None:
    # A kind kubectl's default prune list lacks stays in the cluster once it leaves a bundle: users must be told.
    section = _readme_section("**What a later deploy does not delete.**")
    kinds = _bundled_kinds(default_synth.templates) | _bundled_kinds(prometheus_synth.templates)
    unpruned = {kind for group, kind in kinds if (group, kind) not in KUBECTL_DEFAULT_PRUNE}
    assert {"NodePool", "ClusterQueue", "HorizontalPodAutoscaler", "ClusterRole"} <= unpruned  # the check sees them
    missing = sorted(kind for kind in unpruned if not re.search(rf"\b{kind}\b", section))
    assert missing == [], f"README does not say these kinds stay after removal: {missing}"


def test_unpruned_kinds_are_the_kinds_outside_kubectls_default_prune_list() -> None:
    stack, cluster = _cluster()
    bundle = ManifestBundle(stack, "Bundle", cluster=cluster)
    bundle.add(
        [
            _namespace("serving"),
            _config_map("settings", "serving"),
            {"apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": "gpu"}},
            {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "m", "namespace": "serving"}},
        ]
    )
    assert bundle.unpruned_kinds() == ["NodePool.karpenter.sh", "PodDisruptionBudget.policy"]



def test_the_manifest_text_crosses_to_node_once_until_an_object_is_added(monkeypatch: pytest.MonkeyPatch) -> None:
    # A synth resolves the manifest twice; its JSON is built once unless objects were added in between.
    stack, cluster = _cluster()
    bundle = ManifestBundle(stack, "Bundle", cluster=cluster)
    built: list[int] = []
    to_json_string = Stack.to_json_string

    def counting(self: Stack, obj: Any, space: float | None = None) -> str:
        built.append(len(obj))
        return to_json_string(self, obj, space)

    monkeypatch.setattr(Stack, "to_json_string", counting)
    text = _ManifestText(bundle)

    def applied() -> list[str]:
        return [o["metadata"]["name"] for o in json.loads(joined(stack.resolve(text)))]

    bundle.add([_namespace("first")])
    assert applied() == applied() == ["first"]
    assert built == [1]
    bundle.add([_namespace("second")])  # after a resolve: the next one must apply it too
    assert applied() == ["first", "second"]
    assert built == [1, 2]
