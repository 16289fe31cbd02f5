"""GitOps export: a cluster's in-cluster objects and Helm releases as plain YAML for Flux (or ``kubectl apply -k``).

The stacks apply the same cdk8s charts and install the same Helm releases through CloudFormation; the export
writes them as files in apply order, listed in a kustomization.yaml. The first file holds every Helm release
as a Flux ``HelmRepository`` and ``HelmRelease`` (helm.toolkit.fluxcd.io/v2) with the exact values the stack
passes, CRDs created and replaced on install and upgrade, after the labelled namespaces eks-ml owns. Values
known only after deploy (a VPC id, a queue name) cannot be written honestly: the stack applies them as a
ConfigMap beside the release (eks_ml.release_values), which the HelmRelease reads with ``valuesFrom``, so a
Flux install gets the same values as the stack once the stack has run. Objects that carry such values (an
FSx file system id, say) are left out and named in the directory's README with the reason.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cdk8s
from constructs import IConstruct

from . import helm
from ._tokens import is_unresolved
from .release_values import DEPLOY_VALUES_KEY, deploy_values_name, split_deploy_time

KUSTOMIZATION = "kustomization.yaml"
RELEASES = "releases"  # the Helm releases' own directory, applied (and ready) before the others


@dataclass(frozen=True)
class ExportedCluster:
    """``files`` in apply order; ``skipped`` maps "<chart>: <Kind>/<name>" to why it was not written."""

    directory: Path
    files: tuple[Path, ...]
    skipped: dict[str, str]
    helm_releases: tuple[helm.Release, ...]


_TOKEN = re.compile(r"\$\{Token\[[^\]]+\]\}")  # how a CDK token looks inside a Python string
DEPLOY_TIME_REASON = "holds values known only after deploy; the CloudFormation stack applies it"


def _has_tokens(obj: object) -> bool:
    return is_unresolved(json.dumps(obj))


def helm_releases(scope: IConstruct) -> tuple[helm.Release, ...]:
    """The Helm releases installed under ``scope``, in install order, with their exact values."""
    return helm.releases_under(scope)


FLUX_SOURCE_API = "source.toolkit.fluxcd.io/v1"
FLUX_HELM_API = "helm.toolkit.fluxcd.io/v2"


def flux_objects(release: helm.Release) -> list[dict[str, Any]]:
    """The Flux HelmRepository and HelmRelease that install ``release`` as the stack does."""
    pin = release.pin
    oci = pin.repository.startswith("oci://")
    # An OCI pin names the chart in its URL (oci://registry/path/chart); Flux wants the registry path.
    url = pin.repository.rsplit("/", 1)[0] if oci else pin.repository
    metadata = {"name": pin.release, "namespace": pin.namespace}
    source = {"url": url, "interval": "1h", **({"type": "oci"} if oci else {})}
    known, deploy_time = split_deploy_time(release.values)
    spec: dict[str, Any] = {
        "releaseName": pin.release,
        "interval": "10m",
        "chart": {
            "spec": {
                "chart": pin.chart,
                "version": pin.version,
                "sourceRef": {"kind": "HelmRepository", "name": pin.release},
            }
        },
        # Helm itself never upgrades a chart's crds/ folder; Flux does with CreateReplace (the stack uses a Job).
        "install": {"crds": "CreateReplace"},
        "upgrade": {"crds": "CreateReplace"},
        "values": known,
    }
    if release.depends_on:
        spec["dependsOn"] = [{"name": other.release, "namespace": other.namespace} for other in release.depends_on]
    if deploy_time:
        spec["valuesFrom"] = [
            {"kind": "ConfigMap", "name": deploy_values_name(pin.release), "valuesKey": DEPLOY_VALUES_KEY}
        ]
    return [
        {"apiVersion": FLUX_SOURCE_API, "kind": "HelmRepository", "metadata": metadata, "spec": source},
        {"apiVersion": FLUX_HELM_API, "kind": "HelmRelease", "metadata": metadata, "spec": spec},
    ]


def release_objects(releases: Sequence[helm.Release]) -> list[dict[str, Any]]:
    """The labelled namespaces the releases go to (those eks-ml owns), then each release's Flux objects."""
    namespaces = dict.fromkeys(release.pin.namespace for release in releases)
    labelled = [obj for name in namespaces if (obj := helm.namespace_object(name)) is not None]
    return [*labelled, *(obj for release in releases for obj in flux_objects(release))]


def export_charts(
    directory: Path, charts: Sequence[tuple[str, cdk8s.Chart]], releases: Sequence[helm.Release] = ()
) -> ExportedCluster:
    """Write ``releases`` and ``charts`` under ``directory`` (replacing what an earlier export wrote there)."""
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("[0-9][0-9]-*.yaml"):
        stale.unlink()
    files: list[Path] = []
    skipped: dict[str, str] = {}
    if not releases and (directory / RELEASES).exists():
        shutil.rmtree(directory / RELEASES)
    if releases:
        # A directory of its own: Flux dry-runs a whole Kustomization before applying any of it, so the objects
        # that need the releases' CRDs go in a second Kustomization that depends on this one (README).
        (directory / RELEASES).mkdir(exist_ok=True)
        (directory / RELEASES / "helm-releases.yaml").write_text(cdk8s.Yaml.stringify(*release_objects(releases)))
        _write_kustomization(directory / RELEASES, ["helm-releases.yaml"])
    for stem, chart in charts:
        written = []
        for obj in chart.to_json():
            if _has_tokens(obj):
                name = _TOKEN.sub("<deploy-time value>", obj["metadata"]["name"])
                skipped[f"{stem}: {obj['kind']}/{name}"] = DEPLOY_TIME_REASON
            else:
                written.append(obj)
        if written:
            path = directory / f"{len(files) + 1:02d}-{stem}.yaml"
            path.write_text(cdk8s.Yaml.stringify(*written))
            files.append(path)
    _write_kustomization(directory, [path.name for path in files])
    (directory / "README.md").write_text(_readme(files, skipped, releases))
    return ExportedCluster(directory, tuple(files), skipped, tuple(releases))


def _write_kustomization(directory: Path, resources: Sequence[str]) -> None:
    kustomization = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": resources}
    (directory / KUSTOMIZATION).write_text(cdk8s.Yaml.stringify(kustomization))


def write_dashboard(directory: Path, name: str, model: dict[str, Any]) -> Path:
    """A Grafana dashboard model as ``directory/dashboards/<name>.json``, for import or provisioning."""
    path = directory / "dashboards" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(model, indent=2) + "\n")
    return path


def _readme(files: Sequence[Path], skipped: dict[str, str], releases: Sequence[helm.Release]) -> str:
    lines = [
        "# In-cluster objects (generated by eks-ml; do not edit)",
        "",
        "Two Flux Kustomizations install this cluster: one at releases/ (every Helm release as a Flux",
        "HelmRelease with the values the stack passes, CRDs created and replaced on install and upgrade, in the",
        "stack's order), and one at this directory with dependsOn the first and wait: true (its objects need",
        "the releases' CRDs; Flux dry-runs a whole Kustomization before applying it). Values known only after",
        "deploy come from the ConfigMap <release>-deploy-values that the stack applies beside the release.",
        "Let either the stack or Flux manage the releases, not both: a stack update reinstalls them.",
        "",
        "## Files",
        *[f"- {path.name}" for path in files],
        "",
        "## Helm releases (chart, version, namespace)",
        *[
            f"- {r.pin.release}: {r.pin.repository} {r.pin.chart} {r.pin.version}, namespace {r.pin.namespace}"
            f"{' (+ deploy-time values)' if split_deploy_time(r.values)[1] else ''}"
            for r in releases
        ],
    ]
    if skipped:
        lines += ["", "## Not exported", *[f"- {stem}: {reason}" for stem, reason in skipped.items()]]
    return "\n".join(lines) + "\n"
