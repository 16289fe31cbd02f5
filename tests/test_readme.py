"""The README as tests: what it tells a newcomer to run or write must work as written.

- Every Python block of the library section runs, in order, and the app it builds synthesizes.
- Every `npx cdk` command uses a subcommand and options the pinned CDK CLI has, and its `-c eks-ml:*` values
  pass the app's own configuration check (so an example cannot silently drift into a ValidationError).
- Every `make` target it names exists; `eks-ml plan` figures it quotes are the plan's.
- Every "<chart> <version>" it states for a pinned chart is the pinned version.
The commands of the Quick start (`make synth`, `make test`) and `make wheel-check` are run by `.ci/run`.
"""

from __future__ import annotations

import functools
import os
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App

from eks_ml import helm, load_app_config
from eks_ml.plan import plans_from_assembly
from stacks import build_default_app

from .support.synth import CDK_CONTEXT, ROOT, Synthesis

README = (ROOT / "README.md").read_text()
CDK = ROOT / "node_modules" / ".bin" / "cdk"


def _blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", README, flags=re.M | re.S)


def _commands(prefix: str) -> list[str]:
    """Every command line starting with ``prefix`` in the shell blocks, continuation lines joined."""
    found = []
    for block in _blocks("bash") + _blocks("text"):
        for line in block.replace("\\\n", " ").splitlines():
            command = line.split("#", 1)[0].strip().removeprefix("$ ")
            if command.startswith(prefix):
                found.append(command)
    return found


# ---- the Python examples ----------------------------------------------------------------------------------


def test_the_library_examples_run_in_order_and_synthesize(tmp_path: Path) -> None:
    blocks = _blocks("python")
    assert len(blocks) >= 3
    namespace: dict[str, Any] = {}
    for block in blocks:
        # The first block ends with app.synth(); the later ones add to the same app, synthesized once at the end.
        # jsii's Node.js process started long ago, so CDK_OUTDIR cannot reach it: the outdir is given instead.
        code = block.replace("app.synth()", "").replace("App()", f"App(outdir={str(tmp_path)!r})")
        exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102
    namespace["app"].synth()
    assert sorted(p.name for p in tmp_path.glob("*.template.json")) == ["Ml.template.json"]


# ---- the commands ---------------------------------------------------------------------------------------


@functools.cache
def _cli_options(subcommand: str) -> set[str]:
    if not CDK.exists():
        pytest.skip("node_modules has no CDK CLI: run make install")
    env = {**os.environ, "PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    help_text = subprocess.run([str(CDK), subcommand, "--help"], capture_output=True, text=True, env=env).stdout
    return set(re.findall(r"(--[a-z][a-z-]*)", help_text))


CDK_COMMANDS = _commands("npx cdk ")


@pytest.mark.parametrize("command", CDK_COMMANDS)
def test_each_cdk_command_is_valid_for_the_pinned_cli_and_the_app(command: str) -> None:
    words = shlex.split(command.replace("...", ""))
    subcommand = words[2]
    assert subcommand in {"synth", "diff", "deploy", "destroy", "list"}, command
    options = {w.split("=", 1)[0] for w in words if w.startswith("--")}
    assert options <= _cli_options(subcommand), f"{command}: not options of cdk {subcommand}"
    context = {k: v for k, v in (words[i + 1].split("=", 1) for i, w in enumerate(words) if w == "-c")}
    # As the app reads them (cdk.json's context, then -c strings), and built as the app builds it: every
    # construct's own checks run (a second of work; synthesis adds nothing these commands could break).
    app = App(context={**CDK_CONTEXT, **context})
    build_default_app(app, load_app_config(app.node.get_all_context()))


def test_the_readme_has_the_commands_it_promises() -> None:
    assert len(CDK_COMMANDS) >= 5


def test_every_make_target_named_exists() -> None:
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][\w-]*):", makefile, flags=re.M))
    named = set(re.findall(r"`make ([a-z][\w-]*)", README)) | {c.split()[1] for c in _commands("make ")}
    assert named and named <= targets


def test_the_plan_figures_quoted_are_the_plans(default_synth: Synthesis) -> None:
    quoted = dict(re.findall(r'\{"name": "([\w-]+)",\s+"usd_per_hour": ([\d.]+)\}', README))
    assert quoted, "the README quotes the default plan"
    plan = plans_from_assembly(default_synth.outdir)
    assert {c.name: f"{c.usd_per_hour:.2f}" for c in plan.clusters} == quoted


# ---- versions ---------------------------------------------------------------------------------------------


# How the README names each pinned chart besides its chart id.
DISPLAY_NAMES = {
    "nvidia-device-plugin": ("NVIDIA device plugin",),
    "aws-efa-k8s-device-plugin": ("EFA device plugin", "EFA device plugin chart"),
    "neuron-helm-chart": ("Neuron Helm chart",),
    "kueue": ("Kueue",),
    "kubeflow-trainer": ("Kubeflow Trainer",),
    "lws": ("LeaderWorkerSet",),
    "karpenter": ("Karpenter",),
    "karpenter-crd": (),
    "aws-load-balancer-controller": ("AWS Load Balancer Controller", "load balancer controller"),
    "prometheus": ("Prometheus",),
    "prometheus-adapter": (),
    "keda": ("KEDA",),
    "dcgm-exporter": (),
    "kube-state-metrics": (),
    "prometheus-node-exporter": (),
}


def _stated_versions(names: tuple[str, ...]) -> set[str]:
    """Versions written right after one of ``names`` ("Prometheus 29.27.0", "kueue v0.19.2", "chart 3.2.2")."""
    found: set[str] = set()
    for name in names:
        found |= set(re.findall(rf"(?i)\b{re.escape(name)}\b\**(?: chart)? v?(\d+\.\d+\.\d+)\b", README))
    return found


@pytest.mark.parametrize("pin", helm.ALL_CHARTS, ids=lambda pin: pin.chart)
def test_every_stated_chart_version_is_the_pin(pin: helm.HelmChartPin) -> None:
    stated = _stated_versions((pin.chart, *DISPLAY_NAMES[pin.chart]))
    assert stated <= {pin.version.removeprefix("v")}
    assert stated, f"the README names no version of {pin.chart}"  # of every chart a cluster runs
