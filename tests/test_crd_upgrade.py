"""Upgrade-safe CRDs: a chart bump upgrades the CRDs of the chart's crds/ folders.

Helm never upgrades a ``crds/`` folder. Karpenter's CRDs come from the karpenter-crd chart (templates, so
upgraded); every other pin whose crds/ CRDs a cluster relies on declares them as ``crd_files``, which a
Job applies server-side from the upstream commit the chart was built from before the chart is installed.
These tests prove the files are the chart's own bytes, that every crds/ CRD of every release of every
variant is covered, and that the chart waits for the Job.
"""

from __future__ import annotations

import hashlib
import json
import re
import tarfile
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import pytest
import yaml

from eks_ml import helm
from eks_ml.cluster.versions import RELEASES
from eks_ml.k8s.crd_upgrade import KUBECTL_IMAGE, CrdFile, job_name

from .support import charts
from .support.crds import STAND_INS
from .support.releases import releases
from .support.synth import Synthesis, joined, of_type

PINS_WITH_CRD_FILES = [pin for pin in helm.ALL_CHARTS if pin.crd_files]
OBJECT_VALUE = "Custom::AWSCDK-EKS-KubernetesObjectValue"
HELM_CHART = "Custom::AWSCDK-EKS-HelmChart"
MANIFEST = "Custom::AWSCDK-EKS-KubernetesResource"


def _archive_file(pin: helm.HelmChartPin, path: str) -> bytes:
    archive = charts.chart_archive(pin)
    if archive is None:
        pytest.skip(charts.HOW_TO_ENABLE)
    with tarfile.open(archive) as tar:
        member = tar.extractfile(path)
        assert member is not None, f"{path} is not a file of {archive.name}"
        return member.read()


def file_problems(pin: helm.HelmChartPin, file: CrdFile) -> list[str]:
    """How a declared CRD file differs from the file in the pinned chart archive."""
    content = _archive_file(pin, file.path)
    names = tuple(sorted(d["metadata"]["name"] for d in yaml.safe_load_all(content) if d))
    problems = []
    if hashlib.sha256(content).hexdigest() != file.sha256:
        problems.append(f"{file.path}: sha256 differs from the chart's file")
    if names != tuple(sorted(file.names)):
        problems.append(f"{file.path}: defines {names}, declared {file.names}")
    return problems


@pytest.mark.parametrize(
    ("pin", "file"),
    [pytest.param(pin, file, id=file.path) for pin in PINS_WITH_CRD_FILES for file in pin.crd_files],
)
def test_each_crd_file_is_the_charts_own_file(pin: helm.HelmChartPin, file: CrdFile) -> None:
    # The URL's bytes were compared with the archive's when the pin was made (the same sha256); the
    # archive is compared here on every run, so a bump that forgets the files fails.
    assert file_problems(pin, file) == []


def test_a_tampered_crd_file_is_reported() -> None:
    pin = helm.AWS_LOAD_BALANCER_CONTROLLER
    good = pin.crd_files[0]
    wrong = replace(good, sha256="0" * 64, names=good.names[1:])
    assert file_problems(pin, wrong) == [
        f"{good.path}: sha256 differs from the chart's file",
        f"{good.path}: defines {tuple(sorted(good.names))}, declared {good.names[1:]}",
    ]


def test_crd_files_come_from_commit_pinned_urls() -> None:
    with pytest.raises(ValueError, match="commit-pinned"):
        CrdFile("x/crds/a.yaml", "https://raw.githubusercontent.com/aws/eks-charts/master/a.yaml", "0" * 64, ("a",))


# ---- every crds/ CRD of every release is upgraded by a bump ----------------------------------------------


def _crd_names(objects: list[dict[str, Any]]) -> set[str]:
    return {o["metadata"]["name"] for o in objects if o.get("kind") == "CustomResourceDefinition"}


def crds_folder_names(pin: helm.HelmChartPin, values: Mapping[str, Any]) -> set[str]:
    """CRDs Helm installs from the crds/ folders of the chart and its enabled subcharts: those in the
    render with --include-crds and not in the plain render (CRDs in templates/ are in both)."""
    return _crd_names(charts.render(pin, values, include_crds=True)) - _crd_names(charts.render(pin, values))


def upgrade_gaps(installed: list[tuple[helm.HelmChartPin, Mapping[str, Any]]]) -> dict[str, set[str]]:
    """Release -> crds/ CRDs that a chart bump would leave at their old version, for the releases one
    stack installs."""
    pins = {id(pin) for pin, _ in installed}
    crd_charts = {id(crd_chart) for crd_chart, _ in STAND_INS}  # CRDs in templates/ (and maybe not cached)
    gaps = {}
    for pin, values in installed:
        if id(pin) in crd_charts:
            continue
        covered = {name for file in pin.crd_files for name in file.names}
        # A separate CRD chart of the same version, installed beside it, upgrades the whole crds/ folder.
        if any(other is pin and id(crd_chart) in pins for crd_chart, other in STAND_INS):
            continue
        missing = crds_folder_names(pin, values) - covered
        if missing:
            gaps[pin.release] = missing
    return gaps


VARIANTS = ["default_synth", "prometheus_synth", "trainium_synth", "auto_mode_synth"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_crds_folder_crd_is_upgraded_by_a_chart_bump(request: pytest.FixtureRequest, variant: str) -> None:
    synth: Synthesis = request.getfixturevalue(variant)
    for stack, template in synth.templates.items():
        installed = []
        for release in releases({stack: template}):
            assert release.pin is not None, release.id
            installed.append((release.pin, release.values))
        if any(charts.chart_archive(pin) is None for pin, _ in installed if pin is not helm.KARPENTER_CRD):
            pytest.skip(charts.HOW_TO_ENABLE)
        assert upgrade_gaps(installed) == {}, stack


def test_a_chart_without_its_crd_files_is_reported() -> None:
    pin = helm.AWS_LOAD_BALANCER_CONTROLLER
    if charts.chart_archive(pin) is None:
        pytest.skip(charts.HOW_TO_ENABLE)
    values = {"clusterName": "c"}
    assert upgrade_gaps([(pin, values)]) == {}
    stripped = replace(pin, crd_files=pin.crd_files[:1])
    assert upgrade_gaps([(stripped, values)]) == {pin.release: set(pin.crd_files[1].names)}
    # Karpenter alone leaves its crds/ behind; with karpenter-crd beside it, nothing is left.
    karpenter = (helm.KARPENTER, {"settings": {"clusterName": "c"}})
    assert upgrade_gaps([karpenter])["karpenter"] >= {"nodepools.karpenter.sh", "ec2nodeclasses.karpenter.k8s.aws"}
    assert upgrade_gaps([karpenter, (helm.KARPENTER_CRD, {})]) == {}


# ---- the synthesized clusters apply them first ------------------------------------------------------------


def _depends_on(resource: Mapping[str, Any]) -> set[str]:
    return set(resource.get("DependsOn") or [])


@pytest.mark.parametrize(
    ("stack", "pin"), [("Training", helm.KUBEFLOW_TRAINER), ("Inference", helm.AWS_LOAD_BALANCER_CONTROLLER)]
)
def test_the_chart_is_installed_after_its_crd_job_succeeded(
    default_synth: Synthesis, stack: str, pin: helm.HelmChartPin
) -> None:
    template = default_synth.templates[stack]
    prefix = f"{pin.release}-crds-{pin.version.replace('.', '-')}-"
    (chart_id,) = [i for i, r in of_type(template, HELM_CHART).items() if r["Properties"]["Release"] == pin.release]
    (value_id,) = [
        i for i, r in of_type(template, OBJECT_VALUE).items() if r["Properties"]["ObjectName"].startswith(prefix)
    ]
    value = template["Resources"][value_id]["Properties"]
    name = value["ObjectName"]
    assert (value["ObjectType"], value["ObjectNamespace"], value["JsonPath"]) == (
        "job",
        pin.namespace,
        ".status.succeeded",
    )
    (manifest_id,) = [
        i
        for i, r in of_type(template, MANIFEST).items()
        if f'"name":"{name}"' in json.dumps(r["Properties"]["Manifest"]).replace('\\"', '"')
    ]
    assert value_id in _depends_on(template["Resources"][chart_id])
    assert manifest_id in _depends_on(template["Resources"][value_id])
    # The Job starts only once the chart's own prerequisites (nodes, add-ons, Pod Identity) exist.
    assert _depends_on(template["Resources"][chart_id]) - {value_id} <= _depends_on(template["Resources"][manifest_id])
    # The Job's namespace exists before the Job: kube-system always, any other from a manifest applied first.
    if pin.namespace != "kube-system":
        (namespace_id,) = [
            i
            for i, r in of_type(template, MANIFEST).items()
            if ("Namespace", pin.namespace)
            in [(o["kind"], o["metadata"]["name"]) for o in json.loads(joined(r["Properties"]["Manifest"]))]
        ]
        assert namespace_id in _depends_on(template["Resources"][manifest_id])
    (job,) = [o for o in json.loads(template["Resources"][manifest_id]["Properties"]["Manifest"]) if o["kind"] == "Job"]
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[:2] == ["apply", "--server-side"]
    assert [a for a in args if a.startswith("https://")] == [f.url for f in pin.crd_files]


def test_the_kubectl_image_is_within_one_minor_version_of_every_supported_cluster() -> None:
    match = re.search(r":v1\.(\d+)\.\d+$", KUBECTL_IMAGE)
    assert match, KUBECTL_IMAGE
    kubectl_minor = int(match.group(1))
    assert {v: abs(int(v.split(".")[1]) - kubectl_minor) <= 1 for v in RELEASES} == {v: True for v in RELEASES}


def test_job_names_change_with_the_version_and_stay_dns_labels() -> None:
    assert re.fullmatch(r"kubeflow-trainer-crds-2-3-0-[0-9a-f]{8}", job_name("kubeflow-trainer", "2.3.0", ["image"]))
    assert job_name("kubeflow-trainer", "2.4.0", ["image"]) != job_name("kubeflow-trainer", "2.3.0", ["image"])
    # A Job's pod template is immutable: a new image (or placement, or file list) must be a new Job.
    assert job_name("kubeflow-trainer", "2.3.0", ["other"]) != job_name("kubeflow-trainer", "2.3.0", ["image"])
    long = job_name("a" * 70, "v1.0.0", None)
    assert len(long) <= 63 and re.fullmatch(r"a+-crds-v1-0-0-[0-9a-f]{8}", long)
