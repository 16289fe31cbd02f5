"""eks_ml._tgz finds a member exactly as tarfile does, across chunk boundaries, and refuses what it cannot."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from eks_ml._tgz import read_member


def _archive(tmp_path: Path, members: dict[str, bytes]) -> Path:
    path = tmp_path / "a.tgz"
    with tarfile.open(path, "w:gz", format=tarfile.USTAR_FORMAT) as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return path


def test_reads_every_member_like_tarfile(tmp_path: Path) -> None:
    members = {
        "package/big.bin": os.urandom(3 << 20),  # incompressible: the next header lies chunks later
        "package/a/policy.json": b'{"Statement": []}',
        # The name as content of another member: only a block-aligned ustar header counts.
        "package/decoy.txt": b"package/z.json\0" * 100,
        "package/z.json": b"z" * 70_000,
        "package/empty": b"",
    }
    path = _archive(tmp_path, members)
    for name, content in members.items():
        assert read_member(path, name) == content, name


def test_a_missing_or_too_long_name_is_refused(tmp_path: Path) -> None:
    path = _archive(tmp_path, {"package/a": b"a"})
    with pytest.raises(KeyError, match="package/b is not in a.tgz"):
        read_member(path, "package/b")
    with pytest.raises(ValueError, match="ustar name field"):
        read_member(path, "p/" + "x" * 120)
