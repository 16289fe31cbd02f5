"""GitOps export: every applied object as YAML, in apply order, identical to what the stacks apply."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from eks_ml import AppConfig, gitops, helm
from eks_ml.k8s.crd_upgrade import COMPONENT_LABEL
from stacks import DefaultStacks, build_default_app, write_gitops

from .support.charts import chart_cache_available
from .support.manifests import applied_objects, requires_chart_cache, validate_objects
from .support.synth import Synthesis, make_app


@pytest.fixture(scope="module")
def default_stacks(tmp_path_factory: pytest.TempPathFactory, default_config: AppConfig) -> DefaultStacks:
    return build_default_app(make_app(tmp_path_factory.mktemp("gitops-app")), default_config)


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory, default_stacks: DefaultStacks) -> Path:
    directory = tmp_path_factory.mktemp("dist")
    write_gitops(default_stacks, directory)
    return directory


def objects_of(directory: Path) -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((directory / gitops.KUSTOMIZATION).read_text())
    return [obj for name in kustomization["resources"] for obj in yaml.safe_load_all((directory / name).read_text())]


def without_prune_label(obj: dict[str, Any]) -> dict[str, Any]:
    """The object as written by cdk8s: aws_eks_v2 adds a label to find objects to prune on update."""
    metadata = dict(obj["metadata"])
    labels = {k: v for k, v in metadata.get("labels", {}).items() if not k.startswith("aws.cdk.eks/prune-")}
    metadata.pop("labels", None)
    return {**obj, "metadata": {**metadata, **({"labels": labels} if labels else {})}}


def key(obj: dict[str, Any]) -> tuple[str, str, str]:
    return obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"]


def test_each_cluster_gets_its_files_in_apply_order(dist: Path) -> None:
    training = yaml.safe_load((dist / "eks-ml-training" / gitops.KUSTOMIZATION).read_text())
    assert training["kind"] == "Kustomization"
    # The file-system volume and its claim name the file system id (known after deploy): no file of theirs.
    assert training["resources"] == ["01-training-queues.yaml", "02-training-runtimes.yaml"]
    inference = yaml.safe_load((dist / "eks-ml-inference" / gitops.KUSTOMIZATION).read_text())
    assert inference["resources"] == [
        "01-node-pools.yaml",
        "02-inference-namespace.yaml",
        "03-model-qwen3-8b.yaml",
        "04-model-qwen3-8b-inf2.yaml",
    ]
    assert (dist / "eks-ml-training" / "training-jobs.yaml").exists()


def test_each_cluster_gets_its_grafana_dashboard(dist: Path, default_stacks: DefaultStacks) -> None:
    import json

    for stack in (default_stacks.training_observability, default_stacks.inference_observability):
        addon = stack.observability
        path = dist / addon.target.name / "dashboards" / f"{addon.target.name}.json"
        assert json.loads(path.read_text()) == addon.dashboard


@pytest.mark.parametrize(("cluster", "stack"), [("eks-ml-training", "Training"), ("eks-ml-inference", "Inference")])
def test_exported_objects_are_exactly_what_the_stack_applies(
    dist: Path, default_synth: Synthesis, cluster: str, stack: str
) -> None:
    exported = objects_of(dist / cluster)
    # The CRD upgrade Jobs belong to installing Helm releases, which a GitOps tool does with their CRDs.
    applied = {
        key(obj): without_prune_label(obj)
        for obj in applied_objects(default_synth.templates[stack])
        if not COMPONENT_LABEL.items() <= (obj["metadata"].get("labels") or {}).items()
    }
    for obj in exported:
        assert applied[key(obj)] == obj
    # Only the objects holding deploy-time values stay with the stack.
    missing = set(applied) - {key(obj) for obj in exported}
    # The labelled namespaces of the Helm releases stay with the stack too (the README lists the releases; Helm
    # creates their namespaces, without Pod Security labels).
    releases = {("Namespace", "", name) for name in helm.RELEASE_NAMESPACES}
    assert missing - releases == (
        {("PersistentVolume", "", "fsx-TOKEN"), ("PersistentVolumeClaim", "training", "fsx")}
        if stack == "Training"
        else set()
    )


def test_exported_yaml_has_no_cdk_tokens(dist: Path) -> None:
    for path in dist.rglob("*.yaml"):
        assert "${Token[" not in path.read_text(), path


@requires_chart_cache
def test_exported_objects_pass_the_validator(dist: Path) -> None:
    objects = objects_of(dist / "eks-ml-training") + objects_of(dist / "eks-ml-inference")
    assert len(objects) > 20
    assert validate_objects(objects) == []


def test_the_readme_names_helm_releases_and_what_was_left_out(dist: Path) -> None:
    readme = (dist / "eks-ml-training" / "README.md").read_text()
    assert f"kueue: {helm.KUEUE.repository} kueue {helm.KUEUE.version}, namespace kueue-system" in readme
    assert "lustre-volume: PersistentVolumeClaim/fsx: holds values known only after deploy" in readme
    inference = (dist / "eks-ml-inference" / "README.md").read_text()
    assert f"karpenter {helm.KARPENTER.version}" in inference and "Not exported" not in inference


def test_export_is_deterministic_and_replaces_stale_files(tmp_path: Path, default_stacks: DefaultStacks) -> None:
    first = tmp_path / "a"
    (first / "eks-ml-training").mkdir(parents=True)
    (first / "eks-ml-training" / "09-removed-chart.yaml").write_text("stale")
    write_gitops(default_stacks, first)
    second = tmp_path / "b"
    write_gitops(default_stacks, second)
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    assert all((first / f).read_bytes() == (second / f).read_bytes() for f in files)


def test_with_the_prometheus_backend_the_export_adds_neuron_monitor_and_exporters(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    from eks_ml import load_app_config

    from .support.synth import CDK_CONTEXT

    context = {**CDK_CONTEXT, "eks-ml:observabilityBackend": "prometheus"}
    stacks = build_default_app(
        make_app(tmp_path_factory.mktemp("gitops-prometheus"), context), load_app_config(context)
    )
    write_gitops(stacks, tmp_path)
    inference = yaml.safe_load((tmp_path / "eks-ml-inference" / gitops.KUSTOMIZATION).read_text())
    assert inference["resources"][-2:] == ["05-dcgm-exporter-counters.yaml", "06-neuron-monitor.yaml"]
    if chart_cache_available():  # the export holds NodePools: custom kinds need the pinned charts' CRDs
        assert validate_objects(objects_of(tmp_path / "eks-ml-inference")) == []
    readme = (tmp_path / "eks-ml-inference" / "README.md").read_text()
    for pin in (helm.NODE_EXPORTER, helm.KUBE_STATE_METRICS, helm.DCGM_EXPORTER):
        assert f"{pin.chart} {pin.version}" in readme
