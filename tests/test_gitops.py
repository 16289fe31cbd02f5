"""GitOps export: every applied object as YAML, in apply order, identical to what the stacks apply."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from eks_ml import AppConfig, gitops, helm
from eks_ml.k8s.crd_upgrade import COMPONENT_LABEL
from eks_ml.release_values import DEPLOY_VALUES_KEY, DEPLOY_VALUES_LABEL
from stacks import DefaultStacks, build_default_app, write_gitops

from .support.charts import chart_cache_available
from .support.manifests import applied_objects, requires_chart_cache, validate_objects
from .support.synth import Synthesis, joined, make_app, of_type


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


FLUX = ("helm.toolkit.fluxcd.io/", "source.toolkit.fluxcd.io/")


def key(obj: dict[str, Any]) -> tuple[str, str, str]:
    return obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"]


def test_each_cluster_gets_its_files_in_apply_order(dist: Path) -> None:
    training = yaml.safe_load((dist / "eks-ml-training" / gitops.KUSTOMIZATION).read_text())
    assert training["kind"] == "Kustomization"
    # The file-system volume and its claim name the file system id (known after deploy): no file of theirs.
    assert training["resources"] == ["01-burn-in.yaml", "02-training-queues.yaml", "03-training-runtimes.yaml"]
    inference = yaml.safe_load((dist / "eks-ml-inference" / gitops.KUSTOMIZATION).read_text())
    assert inference["resources"] == [
        "01-node-pools.yaml",
        "02-inference-namespace.yaml",
        "03-model-qwen3-8b.yaml",
        "04-model-qwen3-8b-inf2.yaml",
        "05-image-prepull.yaml",
    ]
    # The Helm releases in a directory (and Flux Kustomization) of their own, applied first.
    for cluster in ("eks-ml-training", "eks-ml-inference"):
        releases = yaml.safe_load((dist / cluster / gitops.RELEASES / gitops.KUSTOMIZATION).read_text())
        assert releases["resources"] == ["helm-releases.yaml"]
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
    everything = objects_of(dist / cluster) + objects_of(dist / cluster / gitops.RELEASES)
    exported = [obj for obj in everything if not obj["apiVersion"].startswith(FLUX)]
    # What the stack applies only to install Helm releases: the CRD upgrade Jobs (Flux replaces CRDs itself)
    # and the deploy-time values (which Flux reads from that very ConfigMap).
    bridge = (COMPONENT_LABEL, DEPLOY_VALUES_LABEL)
    applied = {
        key(obj): without_prune_label(obj)
        for obj in applied_objects(default_synth.templates[stack])
        if not any(label.items() <= (obj["metadata"].get("labels") or {}).items() for label in bridge)
    }
    for obj in exported:
        assert applied[key(obj)] == obj
    # Only the objects holding deploy-time values stay with the stack.
    missing = set(applied) - {key(obj) for obj in exported}
    assert missing == (
        {
            ("PersistentVolume", "", "fsx-TOKEN"),
            ("PersistentVolumeClaim", "training", "fsx"),
            # They name the subnet, the file systems' security group and the volumes key.
            ("StorageClass", "", "fsx-scratch"),
            ("StorageClass", "", "fsx-persistent"),
            ("StorageClass", "", "gp3"),
        }
        if stack == "Training"
        else set()
    )


def test_exported_files_have_no_cdk_tokens(dist: Path) -> None:
    files = [path for path in dist.rglob("*") if path.is_file()]
    assert any(path.name == "README.md" for path in files)
    for path in files:
        assert "${Token[" not in path.read_text(), path


@requires_chart_cache
def test_exported_objects_pass_the_validator(dist: Path) -> None:
    # Flux's CRDs are not among the pinned charts: its objects are checked field by field below instead.
    objects = [
        obj
        for obj in objects_of(dist / "eks-ml-training") + objects_of(dist / "eks-ml-inference")
        if not obj["apiVersion"].startswith(FLUX)
    ]
    assert len(objects) > 20
    assert validate_objects(objects) == []


def _merge(base: Any, override: Any) -> Any:
    """Helm's (and Flux's valuesFrom) merge: maps key by key, anything else replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        return {k: _merge(base.get(k), v) if k in base else v for k, v in {**base, **override}.items()}
    return override


@pytest.mark.parametrize(("cluster", "stack"), [("eks-ml-training", "Training"), ("eks-ml-inference", "Inference")])
def test_flux_installs_the_same_releases_with_the_same_values_as_the_stack(
    dist: Path, default_synth: Synthesis, cluster: str, stack: str
) -> None:
    template = default_synth.templates[stack]
    stack_releases = {
        r["Properties"]["Release"]: (
            r["Properties"]["Chart"],
            r["Properties"]["Version"],
            r["Properties"]["Namespace"],
            json.loads(joined(r["Properties"].get("Values", "{}"))),
        )
        for r in of_type(template, "Custom::AWSCDK-EKS-HelmChart").values()
    }
    # What the stack applies as deploy-time values, as Flux reads it (tokens shown as TOKEN, like the values).
    deploy_values = {
        (o["metadata"]["namespace"], o["metadata"]["name"]): json.loads(o["data"][DEPLOY_VALUES_KEY])
        for o in applied_objects(template)
        if o["kind"] == "ConfigMap" and DEPLOY_VALUES_LABEL.items() <= o["metadata"].get("labels", {}).items()
    }
    exported = {}
    flux = objects_of(dist / cluster / gitops.RELEASES)
    for release in [o for o in flux if o["kind"] == "HelmRelease"]:
        spec, namespace = release["spec"], release["metadata"]["namespace"]
        values = spec["values"]
        for source in spec.get("valuesFrom", []):
            values = _merge(values, deploy_values[(namespace, source["name"])])
        chart = spec["chart"]["spec"]
        exported[spec["releaseName"]] = (chart["chart"], chart["version"], namespace, values)
    assert exported == stack_releases
    assert any("valuesFrom" in o["spec"] for o in flux if o["kind"] == "HelmRelease") == (
        stack == "Inference"  # Karpenter's queue and the load balancer controller's VPC id
    )


def test_oci_charts_get_an_oci_helm_repository(dist: Path) -> None:
    sources = {
        o["metadata"]["name"]: o["spec"]
        for o in objects_of(dist / "eks-ml-inference" / gitops.RELEASES)
        if o["kind"] == "HelmRepository"
    }
    assert sources["karpenter"] == {"url": "oci://public.ecr.aws/karpenter", "interval": "1h", "type": "oci"}
    assert sources["aws-load-balancer-controller"] == {
        "url": helm.AWS_LOAD_BALANCER_CONTROLLER.repository,
        "interval": "1h",
    }


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
    assert inference["resources"][-2:] == ["06-dcgm-exporter-counters.yaml", "07-neuron-monitor.yaml"]
    if chart_cache_available():  # the export holds NodePools: custom kinds need the pinned charts' CRDs
        own = [o for o in objects_of(tmp_path / "eks-ml-inference") if not o["apiVersion"].startswith(FLUX)]
        assert validate_objects(own) == []
    readme = (tmp_path / "eks-ml-inference" / "README.md").read_text()
    for pin in (helm.NODE_EXPORTER, helm.KUBE_STATE_METRICS, helm.DCGM_EXPORTER):
        assert f"{pin.chart} {pin.version}" in readme


def test_every_release_upgrades_its_own_crds(dist: Path) -> None:
    releases = {
        o["metadata"]["name"]: o["spec"]
        for o in objects_of(dist / "eks-ml-inference" / gitops.RELEASES)
        if o["kind"] == "HelmRelease"
    }
    assert "karpenter" in releases
    # Flux applies each chart's crds/ on install and upgrade (the stack's CRD upgrade Job does it there).
    assert {(spec["install"]["crds"], spec["upgrade"]["crds"]) for spec in releases.values()} == {
        ("CreateReplace", "CreateReplace")
    }


def test_deploy_time_values_are_split_from_known_ones() -> None:
    from aws_cdk import Aws, Token

    from eks_ml.release_values import split_deploy_time

    values = {
        "settings": {"clusterName": "c", "queue": Aws.STACK_NAME},
        "replicas": Token.as_number(Aws.ACCOUNT_ID),  # a number token (a special float)
        "subnets": ["s-1", Aws.REGION],  # a list holding a token goes whole
        "port": 8080,
    }
    known, deploy_time = split_deploy_time(values)
    assert known == {"settings": {"clusterName": "c"}, "port": 8080}
    assert set(deploy_time) == {"settings", "replicas", "subnets"} and set(deploy_time["settings"]) == {"queue"}
