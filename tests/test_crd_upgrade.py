"""Upgrade-safe CRDs: a chart bump upgrades the CRDs of the chart's crds/ folders.

Helm never upgrades a ``crds/`` folder. Every pin whose crds/ CRDs a cluster relies on declares them as
``crd_files``, which one Job per cluster applies server-side from the upstream commit the chart was built
from before the charts are installed.
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
from .support.gated_apps import GATED_APPS
from .support.releases import canonical, releases
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
    # libyaml's parser (the same safe constructor): the CRD files are up to a few MB each.
    documents = yaml.load_all(content, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    names = tuple(sorted(d["metadata"]["name"] for d in documents if d))
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
    render with --include-crds and not in the plain render (CRDs in templates/ are in both). Worked out once
    per run for a chart and values (most apps install a chart with the same values; parsing the two renders,
    CRD schemas and all, was most of this gate's time)."""

    def names() -> list[str]:
        return sorted(_crd_names(charts.render(pin, values, include_crds=True)) - _crd_names(charts.render(pin, values)))

    same_input = [pin.chart, pin.version, charts.archive_digest(pin), canonical(values)]
    return set(charts.shared_result("crds-folder-names", same_input, names))


def upgrade_gaps(installed: list[tuple[helm.HelmChartPin, Mapping[str, Any]]]) -> dict[str, set[str]]:
    """Release -> crds/ CRDs that a chart bump would leave at their old version, for the releases one
    stack installs."""
    gaps = {}
    for pin, values in installed:
        covered = {name for file in pin.crd_files for name in file.names}
        missing = crds_folder_names(pin, values) - covered
        if missing:
            gaps[pin.release] = missing
    return gaps


VARIANTS = list(GATED_APPS.values())


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_crds_folder_crd_is_upgraded_by_a_chart_bump(request: pytest.FixtureRequest, variant: str) -> None:
    synth: Synthesis = request.getfixturevalue(variant)
    for stack, template in synth.templates.items():
        installed = []
        for release in releases({stack: template}):
            assert release.pin is not None, release.id
            installed.append((release.pin, release.values))
        if any(charts.chart_archive(pin) is None for pin, _ in installed):
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
    # Karpenter's files cover its crds/; without its NodePool file, that CRD would be left behind.
    karpenter = replace(
        helm.KARPENTER, crd_files=tuple(f for f in helm.KARPENTER.crd_files if "nodepools" not in f.url)
    )
    assert upgrade_gaps([(helm.KARPENTER, {"settings": {"clusterName": "c"}})]) == {}
    assert upgrade_gaps([(karpenter, {"settings": {"clusterName": "c"}})]) == {"karpenter": {"nodepools.karpenter.sh"}}


# ---- the synthesized clusters apply them first ------------------------------------------------------------


def _depends_on(resource: Mapping[str, Any]) -> set[str]:
    return set(resource.get("DependsOn") or [])


@pytest.mark.parametrize(
    ("stack", "pin"),
    [
        ("Training", helm.KUBEFLOW_TRAINER),
        ("Inference", helm.KARPENTER),
        ("Inference", helm.AWS_LOAD_BALANCER_CONTROLLER),
    ],
)
def test_the_chart_is_installed_after_its_crd_job_succeeded(
    default_synth: Synthesis, stack: str, pin: helm.HelmChartPin
) -> None:
    template = default_synth.templates[stack]
    (chart_id,) = [i for i, r in of_type(template, HELM_CHART).items() if r["Properties"]["Release"] == pin.release]
    # One Job per cluster applies the crds/ files of every chart there that has them; each such chart waits.
    (value_id,) = of_type(template, OBJECT_VALUE)
    value = template["Resources"][value_id]["Properties"]
    assert (value["ObjectType"], value["ObjectNamespace"], value["JsonPath"]) == (
        "job",
        pin.namespace,
        ".status.succeeded",
    )
    assert value_id in _depends_on(template["Resources"][chart_id])
    (manifest_id,) = [
        i
        for i, r in of_type(template, MANIFEST).items()
        if f'"name":"{value["ObjectName"]}"' in json.dumps(r["Properties"]["Manifest"]).replace('\\"', '"')
    ]
    assert manifest_id in _depends_on(template["Resources"][value_id])
    # The Job's pod needs a node: its manifest waits for the system node group.
    assert any(of_type(template, "AWS::EKS::Nodegroup").get(d) for d in _depends_on(template["Resources"][manifest_id]))
    objects = json.loads(joined(template["Resources"][manifest_id]["Properties"]["Manifest"]))
    kinds = [(o["kind"], o["metadata"]["name"]) for o in objects]
    # The Job's namespace exists before the Job: kube-system always, any other listed before it.
    if pin.namespace != "kube-system":
        assert kinds.index(("Namespace", pin.namespace)) < kinds.index(("Job", value["ObjectName"]))
    (job,) = [o for o in objects if o["kind"] == "Job"]
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[:2] == ["apply", "--server-side"]
    assert {f.url for f in pin.crd_files} <= {a for a in args if a.startswith("https://")}


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
