"""Finds the real Prometheus tools (promtool, amtool) and runs them on files the tests write.

`make prom-tools` unpacks them from Debian's packages into the project's .tools/ (tried first); else
they are taken from PATH. Tests that need a tool skip with the reason when it is absent.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

PROJECT_TOOLS = Path(__file__).resolve().parents[2] / ".tools" / "usr" / "bin"


def find_tool(name: str) -> Path | None:
    local = PROJECT_TOOLS / name
    if local.is_file():
        return local
    found = shutil.which(name)
    return Path(found) if found else None


def require_tool(name: str) -> Path:
    tool = find_tool(name)
    if tool is None:
        pytest.skip(f"{name} not found in {PROJECT_TOOLS} or on PATH: run `make prom-tools` (needs apt-get)")
    return tool


def run_tool(name: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    """Runs the tool; the caller asserts on returncode and reads stdout/stderr for the message."""
    return subprocess.run(
        [str(require_tool(name)), *map(str, args)], capture_output=True, text=True, timeout=120, check=False
    )
