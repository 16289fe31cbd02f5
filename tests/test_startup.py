"""eks_ml.startup: an app that imports it first runs its imports without cyclic garbage collection and
collects again after ``imports_done()``; app.py and the benchmark's synths (every kind alike) do so.

Never imported in the test process itself: it would pause collection in a pytest worker."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The files that synthesize in a process of their own, as `cdk synth` runs app.py.
APPS = ("app.py", "bench/synth_once.py", "bench/phases.py")

PROBE = """
import gc
import eks_ml.startup
paused = not gc.isenabled()
import json, email.message  # stand-ins for the app's imports
eks_ml.startup.imports_done()
print(paused, gc.isenabled(), gc.get_freeze_count() > 0)
"""


def test_collection_pauses_while_importing_and_resumes_without_what_the_imports_made() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, cwd=ROOT)
    assert done.stdout.split() == ["True", "True", "True"]


def pauses_before_aws_cdk(source: str) -> bool:
    """Whether ``source`` imports eks_ml.startup before its first aws_cdk import and calls imports_done()."""
    tree = ast.parse(source)
    order = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            order += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            order.append((node.lineno, node.module))
    names = [name for _, name in sorted(order)]
    first_cdk = next((i for i, name in enumerate(names) if name.split(".")[0] == "aws_cdk"), len(names))
    return "eks_ml.startup" in names[:first_cdk] and "eks_ml.startup.imports_done()" in source


@pytest.mark.parametrize("path", APPS)
def test_each_synth_process_pauses_collection_before_aws_cdk_loads(path: str) -> None:
    assert pauses_before_aws_cdk((ROOT / path).read_text()), f"{path}: import eks_ml.startup first"


@pytest.mark.parametrize(
    "source",
    [
        "from aws_cdk import App\nimport eks_ml.startup\neks_ml.startup.imports_done()\n",  # too late
        "import eks_ml.startup\nfrom aws_cdk import App\n",  # never resumes
        "from aws_cdk import App\n",
    ],
)
def test_the_check_refuses_an_app_that_pauses_too_late_or_never_resumes(source: str) -> None:
    assert not pauses_before_aws_cdk(source)
