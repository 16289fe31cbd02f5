"""The default app (app.py) run by ``eks-ml plan`` in the test's own process instead of a subprocess.

A stand-in for ``eks_ml.cli.synthesize`` (monkeypatch it in): app.py's ``main()`` runs here on an App given what
the CLI puts in the subprocess's environment (CDK_CONTEXT_JSON, CDK_OUTDIR: jsii's Node.js process read its
environment when it started, so the App gets them as arguments), and a non-zero exit becomes the PlanError
carrying the app's stderr, as the real one's does. It saves a Python start with aws_cdk's import (~1.5
CPU-seconds) where the test is about the values or the plan, not the process boundary; the tests that run
the real subprocess (a success and a failure, test_plan and test_bad_input) keep that boundary covered.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import io
import json
from pathlib import Path
from typing import Any

from aws_cdk import App

from eks_ml import cli

from .synth import ROOT

DEFAULT_APP_COMMAND = json.loads((ROOT / "cdk.json").read_text())["app"]


def synthesize_in_this_process(app: str, context: dict[str, Any], folder: Path, outdir: Path) -> None:
    """``eks_ml.cli.synthesize`` for the default app only (anything else is an error of the test)."""
    if (app, folder) != (DEFAULT_APP_COMMAND, ROOT):
        raise AssertionError(f"only the default app runs in-process, not {app!r} in {folder}")
    spec = importlib.util.spec_from_file_location("eks_ml_default_app_in_process", ROOT / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    err = io.StringIO()
    as_the_cli_gives_it = functools.partial(App, context=context, outdir=str(outdir))
    module.App = as_the_cli_gives_it  # this module object only: it was loaded for this one run
    with contextlib.redirect_stderr(err):
        code = module.main()
    if code != 0:
        raise cli.PlanError(err.getvalue().strip() or f"{app} exited with {code}")
    if not (outdir / "manifest.json").is_file():
        raise cli.PlanError(f"{app} wrote no cloud assembly: does the app call app.synth()?")
