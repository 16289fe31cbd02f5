"""The compliance gate: checkov over every synthesized template, every Kubernetes object eks-ml applies or
exports and every rendered Helm release of every app variant, plus cdk-nag's AwsSolutions and NIST 800-53 R5
packs; 0 unsuppressed findings, every suppression on one resource with a specific reason, one report.

The cdk-nag packs run in the session synths (tests/support/synth.make_app(nag=True)); test_app,
test_examples and test_observability_prometheus assert they have no unacknowledged finding. This module
counts their acknowledgements in the report beside checkov's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from eks_ml import AppConfig, gitops
from eks_ml.helm import ALL_CHARTS
from stacks import build_default_app, write_gitops

from .support import charts, checkov
from .support.checkov_suppressions import SUPPRESSIONS, Suppression, stale, unsuppressed
from .support.gated_apps import GATED_APPS
from .support.manifests import applied_objects
from .support.releases import RENDER, releases
from .support.synth import Synthesis, make_app

EXAMPLE = Path(__file__).parent.parent / "examples" / "existing_vpc_inference" / "app.py"
VARIANTS = GATED_APPS
PRUNE_LABEL = "aws.cdk.eks/prune-"


@pytest.fixture(scope="module")
def synths(request: pytest.FixtureRequest) -> dict[str, Synthesis]:
    return {variant: request.getfixturevalue(fixture) for variant, fixture in VARIANTS.items()}


@pytest.fixture(scope="module")
def gitops_export(tmp_path_factory: pytest.TempPathFactory, default_config: AppConfig) -> list[dict[str, Any]]:
    """Every object of the default app's GitOps export (kustomization files and the training jobs file)."""
    directory = tmp_path_factory.mktemp("compliance-gitops")
    write_gitops(
        build_default_app(make_app(tmp_path_factory.mktemp("compliance-gitops-app")), default_config), directory
    )
    objects: list[dict[str, Any]] = []
    for cluster in sorted(p for p in directory.iterdir() if p.is_dir()):
        kustomization = yaml.safe_load((cluster / gitops.KUSTOMIZATION).read_text())
        files = [cluster / name for name in kustomization["resources"]] + sorted(cluster.glob("training-jobs.yaml"))
        objects += [obj for path in files for obj in yaml.safe_load_all(path.read_text()) if obj]
    return objects


def without_prune_label(obj: Mapping[str, Any]) -> dict[str, Any]:
    """aws_eks_v2's prune label differs per stack and says nothing about security; the export has none."""
    labels = {k: v for k, v in (obj["metadata"].get("labels") or {}).items() if not k.startswith(PRUNE_LABEL)}
    metadata = {k: v for k, v in obj["metadata"].items() if k != "labels"}
    return {**obj, "metadata": {**metadata, **({"labels": labels} if labels else {})}}


@pytest.fixture(scope="module")
def scan(
    tmp_path_factory: pytest.TempPathFactory, synths: dict[str, Synthesis], gitops_export: list[dict[str, Any]]
) -> Iterator[tuple[checkov.Run, dict[str, Any]]]:
    if not checkov.CHECKOV.exists():
        pytest.skip(checkov.HOW_TO_ENABLE)
    root = tmp_path_factory.mktemp("checkov")
    directory = checkov.ScanDirectory(root)
    scanned: dict[str, Any] = {"templates": 0, "releases": set(), "unrendered": set()}
    for variant, synth in synths.items():
        for stack, template in synth.templates.items():
            directory.add_template(stack, variant, template)
            directory.add_objects([without_prune_label(o) for o in applied_objects(template)], variant)
            scanned["templates"] += 1
        for release in releases(synth.templates):
            pin = release.pin
            assert pin is not None, release.id
            if charts.chart_archive(pin) is None:
                scanned["unrendered"].add(f"{pin.chart} {pin.version}")
                continue
            objects = RENDER(pin, release.values)
            assert not isinstance(objects, str), f"{variant} {release.id}: {objects}"
            # Helm installs objects without a namespace into the release's namespace.
            placed = [
                {**o, "metadata": {"namespace": release.namespace, **o["metadata"]}}
                if o.get("kind") not in CLUSTER_SCOPED
                else o
                for o in objects
            ]
            directory.add_objects(placed, variant, chart=pin.chart)
            scanned["releases"].add(f"{pin.chart} {pin.version}")
    directory.add_objects(gitops_export, "gitops")
    yield checkov.run(root), scanned


CLUSTER_SCOPED = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
    "APIService",
    "PriorityClass",
    "IngressClass",
    "IngressClassParams",
    "StorageClass",
    "PersistentVolume",
    "NodePool",
    "EC2NodeClass",
    "ResourceFlavor",
    "ClusterQueue",
    "ClusterTrainingRuntime",
    "RuntimeClass",
}


@checkov.requires_checkov
def test_checkov_has_no_unsuppressed_finding(scan: tuple[checkov.Run, dict[str, Any]]) -> None:
    run, _ = scan
    found = [f"{r.check_id} ({r.check_name}) on {r.key}" for r in unsuppressed(run.results)]
    assert found == [], "\n".join(found)


@checkov.requires_checkov
def test_every_suppression_matches_a_finding(scan: tuple[checkov.Run, dict[str, Any]]) -> None:
    run, scanned = scan
    rendered = {entry.split(" ")[0] for entry in scanned["releases"]}
    found = stale(run.results, rendered_charts=rendered)
    assert found == [], "\n".join(found)


@checkov.requires_checkov
def test_checkov_scanned_every_source(scan: tuple[checkov.Run, dict[str, Any]]) -> None:
    run, scanned = scan
    sources = Counter(r.source for r in run.results)
    assert sources["cloudformation"] > 200 and sources["k8s"] > 100, sources
    keys = {r.key for r in run.results}
    # Templates of the default app and the example, model servers (Inference) and neuron-monitor (prometheus variant).
    assert {
        "Inference/ClusterKarpenterInterruptionQueue4FC4486E",
        "Serving/ServingKarpenterInterruptionQueueD7D37A68",
        "Deployment/inference/qwen3-8b-inf2",
        "DaemonSet/neuron-monitor/neuron-monitor",
    } <= keys
    if charts.chart_cache_available():
        assert sources["charts"] > 500, sources
        # Only a chart that runs no pods may be missing from the offline cache (karpenter-crd: CRDs only).
        pods = {f"{pin.chart} {pin.version}": pin.pods for pin in ALL_CHARTS}
        assert [chart for chart in scanned["unrendered"] if pods[chart]] == []


@checkov.requires_checkov
def test_compliance_report(
    scan: tuple[checkov.Run, dict[str, Any]],
    synths: dict[str, Synthesis],
    capsys: pytest.CaptureFixture[str],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The one report: checkov checks run, passed and suppressed by reason per source, its run time, and
    cdk-nag's acknowledgements per pack and reason. Printed, and written to compliance-report.txt in the
    pytest base temporary directory."""
    run, scanned = scan
    lines = [f"checkov {run.version}: one offline run in {run.seconds:.1f} s"]
    by_reason: Counter[str] = Counter()
    for source in checkov.SOURCES:
        results = [r for r in run.results if r.source == source]
        failed = [r for r in results if not r.passed]
        lines.append(
            f"  {source}: {len(results)} checks run ({len({r.check_id for r in results})} distinct) on "
            f"{len({r.key for r in results})} resources; {len(results) - len(failed)} passed, {len(failed)} suppressed"
        )
        for result in failed:
            suppression = _suppression(result)
            by_reason[f"{source} {result.check_id}: {suppression.reason}"] += 1
    lines.append(
        f"  templates scanned: {scanned['templates']} (distinct files fewer); rendered charts: "
        f"{len(scanned['releases'])}; not rendered (no chart cache): {sorted(scanned['unrendered'])}"
    )
    pairs = {(r.check_id, r.key) for r in run.failed()}
    lines.append(
        f"  suppressions: {len(pairs)} (check, resource) pairs in {len(SUPPRESSIONS)} entries; a result counts once "
        "per app variant whose file differs"
    )
    lines.append("  suppressed results, by reason:")
    lines += [f"    {count:4d}  {reason}" for reason, count in sorted(by_reason.items())]
    lines.append("cdk-nag (acknowledged findings; 0 unacknowledged is asserted by the nag tests):")
    for variant, synth in synths.items():
        report = synth.validation_report
        if report is None:
            continue
        for plugin in report["pluginReports"]:
            if plugin["pluginName"] == "Construct Annotations":
                continue
            suppressed = plugin.get("suppressedViolations", [])
            count = sum(len(v["violatingConstructs"]) for v in suppressed)
            unacknowledged = sum(len(v["violatingConstructs"]) for v in plugin["violations"])
            lines.append(f"  {variant} {plugin['pluginName']}: {count} acknowledged, {unacknowledged} not")
            rules = Counter(v["ruleName"].split("[")[0] for v in suppressed for _ in v["violatingConstructs"])
            lines += [f"    {n:4d}  {rule}" for rule, n in sorted(rules.items())]
    text = "\n".join(lines) + "\n"
    (tmp_path_factory.getbasetemp() / "compliance-report.txt").write_text(text)
    with capsys.disabled():
        print("\n" + text, end="")
    assert run.results and by_reason.total() == len(run.failed())


def _suppression(result: checkov.Result) -> Suppression:
    (found,) = [s for s in SUPPRESSIONS if s.matches(result)]
    return found


# ---- the gate catches what it claims --------------------------------------------------------------------------


@checkov.requires_checkov
def test_the_gate_reports_findings_no_suppression_names(tmp_path: Path) -> None:
    """A privileged model server (suppressions there name other checks) and an unencrypted queue under a new
    logical id fail; the same queue under the suppressed id does not."""
    directory = checkov.ScanDirectory(tmp_path)
    container = {"name": "server", "image": "vllm/vllm-openai:v0", "securityContext": {"privileged": True}}
    labels = {"app": "qwen3-8b"}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "qwen3-8b", "namespace": "inference"},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
        },
    }
    directory.add_objects([deployment], "broken")
    directory.add_objects([_CRD], "unchecked", skip_kinds=frozenset())
    queue = {"Type": "AWS::SQS::Queue", "Properties": {"MessageRetentionPeriod": 300}}
    template = {"Resources": {"Unencrypted": queue, "ClusterKarpenterInterruptionQueue4FC4486E": queue}}
    directory.add_template("Inference", "broken", template)
    run = checkov.run(tmp_path)
    found = {(r.check_id, r.key) for r in unsuppressed(run.results)}
    assert ("CKV_K8S_16", "Deployment/inference/qwen3-8b") in found
    assert ("CKV_AWS_27", "Inference/Unencrypted") in found
    assert ("CKV_AWS_27", "Inference/ClusterKarpenterInterruptionQueue4FC4486E") not in found
    assert ("CKV_K8S_43", "Deployment/inference/qwen3-8b") not in found  # suppressed for this resource
    # checkov runs checks on a Deployment and none on a CRD: leaving CRDs out of the scan loses nothing.
    checked_kinds = {r.key.split("/")[0] for r in run.results if r.source == "k8s"}
    assert "Deployment" in checked_kinds
    assert checked_kinds.isdisjoint(checkov.UNCHECKED_KINDS), "checkov checks these kinds now: scan them again"


_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {
        "group": "example.com",
        "names": {"kind": "Widget", "plural": "widgets", "singular": "widget"},
        "scope": "Namespaced",
        "versions": [
            {"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {"type": "object"}}}
        ],
    },
}


def test_a_suppression_without_a_finding_is_stale() -> None:
    key = "Inference/ClusterKarpenterInterruptionQueue4FC4486E"
    failing = [checkov.Result("cloudformation", key, "CKV_AWS_27", "queue encrypted", False)]
    assert f"CKV_AWS_27 on {key}" not in stale(failing, rendered_charts=set())
    passing = [checkov.Result("cloudformation", key, "CKV_AWS_27", "queue encrypted", True)]
    assert f"CKV_AWS_27 on {key}" in stale(passing, rendered_charts=set())
    # Keys of charts that were not rendered cannot be judged.
    assert not [s for s in stale([], rendered_charts=set()) if ": " in s.split(" on ", 1)[1]]


def test_a_suppression_needs_a_reason_and_named_resources() -> None:
    with pytest.raises(AssertionError, match="specific reason"):
        Suppression("CKV_K8S_16", ("Deployment/inference/x",), "needed")
    with pytest.raises(AssertionError, match="name each resource"):
        Suppression("CKV_K8S_16", (), "a long enough reason for the table")


def test_the_offline_environment_has_no_platform_credentials() -> None:
    assert checkov.OFFLINE_ENV["BC_SKIP_MAPPING"] == "TRUE"
    assert not any(key.startswith("BC_API_KEY") for key in checkov.OFFLINE_ENV)
