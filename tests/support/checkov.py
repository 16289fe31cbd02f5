"""checkov over what eks-ml produces: one offline run over a directory of CloudFormation templates, eks-ml's
Kubernetes objects and the rendered Helm releases, parsed from its JSON output.

checkov lives in a virtualenv of its own (``make checkov``: .venv-checkov, pinned in the Makefile) so its
dependencies never move the project's. It runs offline: ``--skip-download`` (no policy or guideline
downloads, no platform), ``BC_SKIP_MAPPING`` (no check-id mapping download) and no API key.

Every file is named after what it holds, so a finding maps back to a source without guessing:
``cloudformation/<stack>.template.json``, ``k8s/<kind>.<namespace>.<name>.yaml`` for eks-ml's own objects and
``charts/<chart>/<kind>.<namespace>.<name>.yaml`` for objects rendered from a pinned upstream chart.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from .synth import ROOT

CHECKOV = Path(os.environ.get("EKS_ML_CHECKOV", ROOT / ".venv-checkov" / "bin" / "checkov"))
HOW_TO_ENABLE = f"checkov is not installed at {CHECKOV}: run `make checkov` (its own virtualenv, .venv-checkov)"
requires_checkov = pytest.mark.skipif(not CHECKOV.exists(), reason=HOW_TO_ENABLE)
FRAMEWORKS = ("cloudformation", "kubernetes")
OFFLINE_ENV = {"BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false", "LOG_LEVEL": "WARNING"}
SOURCES = ("cloudformation", "k8s", "charts")


@dataclass(frozen=True)
class Result:
    """One check on one resource. ``key`` names the resource the way suppressions do:
    "<stack>/<logical id>" (templates), "<kind>/<namespace>/<name>" (eks-ml's objects) or
    "<chart>: <kind>/<namespace>/<name>" (rendered upstream chart objects)."""

    source: str
    key: str
    check_id: str
    check_name: str
    passed: bool


@dataclass(frozen=True)
class Run:
    results: tuple[Result, ...]
    seconds: float
    version: str

    def failed(self) -> list[Result]:
        return [r for r in self.results if not r.passed]


# Kinds left out of the scan because checkov has no check for them: the charts' CustomResourceDefinitions are 5 of
# the scan's 8 MB and took half of checkov's run time for zero results (checkov 3.3.30, compared over the whole
# scan: the same 5,305 results with and without them). test_compliance's gate test proves checkov still runs no
# check on a CRD, so a checkov bump that adds one fails there and the kind comes back into the scan.
UNCHECKED_KINDS = frozenset({"CustomResourceDefinition"})


def object_key(obj: Mapping[str, Any]) -> str:
    metadata = obj.get("metadata") or {}
    return f"{obj['kind']}/{metadata.get('namespace') or '-'}/{metadata['name']}"


class ScanDirectory:
    """Files for one checkov run. App variants share most templates and objects: each distinct text is
    written once; a variant's text that differs from an earlier one under the same name is written as
    "<name>@<variant>" (suppressions are per resource, so the suffix is dropped from the key)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._texts: dict[str, set[str]] = {}

    def _write(self, folder: str, name: str, suffix: str, variant: str, text: str) -> None:
        texts = self._texts.setdefault(f"{folder}/{name}", set())
        if text in texts:
            return
        stem = name if not texts else f"{name}@{variant}{len(texts)}"
        texts.add(text)
        path = self.root / folder / f"{stem}{suffix}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def add_template(self, stack: str, variant: str, template: Mapping[str, Any]) -> None:
        self._write("cloudformation", stack, ".template.json", variant, json.dumps(template, indent=1))

    def add_objects(
        self,
        objects: Iterable[Mapping[str, Any]],
        variant: str,
        chart: str | None = None,
        *,
        skip_kinds: frozenset[str] = UNCHECKED_KINDS,
    ) -> None:
        """eks-ml's own objects, or (``chart``) the objects a pinned upstream chart rendered; not those of
        ``skip_kinds``."""
        folder = f"charts/{chart}" if chart else "k8s"
        for obj in objects:
            if obj.get("kind") in skip_kinds:
                continue
            if obj.get("kind") and (obj.get("metadata") or {}).get("name"):
                name = object_key(obj).replace("/", ".")
                self._write(folder, name, ".yaml", variant, yaml.safe_dump(dict(obj), sort_keys=True))


def _result(entry: Mapping[str, Any], passed: bool, root: Path) -> Result:
    path = Path(entry["file_abs_path"]).resolve().relative_to(root.resolve())
    source = path.parts[0]
    if source == "cloudformation":
        stack = path.name.removesuffix(".template.json").split("@")[0]
        key = f"{stack}/{entry['resource'].split('.', 1)[1]}"
    else:
        # The file name is the object's key (checkov's own resource id drops the namespace of cluster objects).
        key = path.name.removesuffix(".yaml").split("@")[0].replace(".", "/", 2)
        if source == "charts":
            key = f"{path.parts[1]}: {key}"
    return Result(source, key, entry["check_id"], entry["check_name"], passed)


def run(root: Path) -> Run:
    """checkov over every file under ``root``, offline, in one process."""
    command = [str(CHECKOV), "-d", str(root), "--framework", *FRAMEWORKS, "-o", "json", "--skip-download"]
    # Without each resource's code block in every result: the JSON of the whole scan was 113 MB of which the
    # gate reads none (the same results, checks and files; 14 MB), and encoding, piping and decoding it cost
    # ~6 CPU-seconds of checkov's and this process's time.
    command.append("--compact")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BC_API_KEY", "PRISMA_"))}
    started = time.monotonic()
    result = subprocess.run(
        command, env={**env, **OFFLINE_ENV}, capture_output=True, text=True, timeout=600, check=False
    )
    seconds = time.monotonic() - started
    if result.returncode not in (0, 1):  # 1: some check failed
        raise RuntimeError(f"checkov failed ({result.returncode}): {result.stderr[-2000:]}")
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    results = []
    version = ""
    for report in reports:
        if report["summary"].get("parsing_errors"):
            raise RuntimeError(f"checkov could not parse: {report['results'].get('parsing_errors')}")
        version = report["summary"].get("checkov_version", version)
        results += [_result(e, True, root) for e in report["results"]["passed_checks"]]
        results += [_result(e, False, root) for e in report["results"]["failed_checks"]]
    return Run(tuple(results), seconds, version)
