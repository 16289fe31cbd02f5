"""The checkpoint contract of eks-ml training jobs: where checkpoints live, how they are written, which one resumes.

A job restarted after a failure (a JobSet restart after a node died, or a Kueue requeue) starts from step 1
unless it reads back what it wrote. This module is that contract, in pure Python (no torch import), so any
training script can follow it and tests can run it:

- ``EKS_ML_CHECKPOINT_DIR`` (set by the runtime when the cluster has a file system: /fsx/checkpoints) and
  the job's name give the job's directory: ``<dir>/<job>/``. The name is ``EKS_ML_JOB_NAME`` when the job
  sets it, else ``EKS_ML_JOBSET_NAME`` (the runtime sets it from the pod's JobSet label, which is the
  name of the training job), so two jobs never resume from each other's checkpoints.
- Step N is saved as ``step-<N, 6 digits>.pt`` plus the marker ``step-<N>.complete`` (JSON: step, file, bytes).
- Both are written to a temporary file in the same directory, flushed and fsynced, then renamed over the
  final name with os.replace (atomic on POSIX file systems, Lustre included), and the directory is fsynced.
  The marker is written only after the checkpoint's rename, so a marker always names a whole file.
- On start, the newest step whose marker exists, parses, and names a file of exactly the recorded size is
  the one to load. A checkpoint without a marker (the writer died between the two renames), a marker whose
  size disagrees (a file replaced or truncated later), and temporary files (the writer died mid-write) are
  never loaded.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

CHECKPOINT_DIR_ENV = "EKS_ML_CHECKPOINT_DIR"
JOB_NAME_ENV = "EKS_ML_JOB_NAME"
JOBSET_NAME_ENV = "EKS_ML_JOBSET_NAME"
DEFAULT_JOB_NAME = "example"
CHECKPOINT_SUFFIX = ".pt"
MARKER_SUFFIX = ".complete"
TEMP_PREFIX = ".tmp-"
_STEP_FILE = re.compile(r"^step-(\d{6,})" + re.escape(MARKER_SUFFIX) + "$")


@dataclass(frozen=True)
class Checkpoint:
    step: int
    path: Path


def job_directory(environ: Mapping[str, str] | None = None) -> Path | None:
    """The job's checkpoint directory from the environment, or None when the job has nowhere to write."""
    env: Mapping[str, str] = os.environ if environ is None else environ
    root = env.get(CHECKPOINT_DIR_ENV)
    if not root:
        return None
    return Path(root) / (env.get(JOB_NAME_ENV) or env.get(JOBSET_NAME_ENV) or DEFAULT_JOB_NAME)


def checkpoint_path(directory: Path, step: int) -> Path:
    return directory / f"step-{step:06d}{CHECKPOINT_SUFFIX}"


def marker_path(directory: Path, step: int) -> Path:
    return directory / f"step-{step:06d}{MARKER_SUFFIX}"


def write_atomically(path: Path, write: Callable[[IO[bytes]], Any]) -> None:
    """Write through ``write`` into a temporary file beside ``path``, fsync it, then rename it over ``path``.

    The temporary file is in the same directory because a rename is atomic only within one file system.
    If ``write`` raises (or the process dies), ``path`` keeps its old content or stays absent.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f"{TEMP_PREFIX}{path.name}.")
    try:
        # mkstemp makes the file 0600; a later job (another user on the shared file system) must read it.
        os.fchmod(handle, 0o644)
        with os.fdopen(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    # The rename itself is durable only once the directory entry is on disk.
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def save(directory: Path, step: int, write: Callable[[IO[bytes]], Any]) -> Path:
    """Save step ``step`` (``write`` serializes it, e.g. torch.save) and then mark it complete."""
    path = checkpoint_path(directory, step)
    write_atomically(path, write)
    marker = {"step": step, "file": path.name, "bytes": path.stat().st_size}
    write_atomically(marker_path(directory, step), lambda stream: stream.write(json.dumps(marker).encode()))
    return path


def _complete(directory: Path) -> Iterator[Checkpoint]:
    for marker in directory.iterdir():
        match = _STEP_FILE.match(marker.name)
        if not match:
            continue
        step = int(match.group(1))
        try:
            recorded = json.loads(marker.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(recorded, dict) or recorded.get("step") != step:
            continue
        path = checkpoint_path(directory, step)
        if recorded.get("file") != path.name:
            continue
        try:
            size = path.stat().st_size
        except OSError:
            continue
        if size == recorded.get("bytes"):
            yield Checkpoint(step=step, path=path)


def latest_complete(directory: Path | None) -> Checkpoint | None:
    """The newest complete checkpoint in ``directory``, or None (no directory, or nothing complete yet)."""
    if directory is None or not directory.is_dir():
        return None
    return max(_complete(directory), key=lambda checkpoint: checkpoint.step, default=None)


def first_step(latest: Checkpoint | None) -> int:
    """The step a (re)started job trains first: one after the checkpoint it loaded, else 1."""
    return 1 if latest is None else latest.step + 1


# --- Checkpoint now: a Capacity Block is about to end ------------------------------------------------------------
#
# Jobs on a Capacity Block get EKS_ML_CAPACITY_BLOCK (the reservation id). Before the block's instances are
# terminated, the cluster's block watch (capacity_block_watch.py) writes ``<EKS_ML_CHECKPOINT_DIR>/.capacity-blocks/
# <id>.ending`` (JSON: reservation, end, termination_starts, written_at), atomically and once. A job polls it
# (a stat per step) and saves a checkpoint at once, then trains on: a restart on new capacity resumes from it.

CAPACITY_BLOCK_ENV = "EKS_ML_CAPACITY_BLOCK"
SIGNALS_DIR = ".capacity-blocks"
SIGNAL_SUFFIX = ".ending"


def block_signal_path(root: Path, reservation_id: str) -> Path:
    return root / SIGNALS_DIR / f"{reservation_id}{SIGNAL_SUFFIX}"


def write_block_signal(root: Path, reservation_id: str, signal: Mapping[str, str]) -> bool:
    """Write the signal unless it is already there; True when this call wrote it."""
    path = block_signal_path(root, reservation_id)
    if path.exists():
        return False
    write_atomically(path, lambda stream: stream.write(json.dumps(dict(signal), sort_keys=True).encode()))
    return True


def block_ending(environ: Mapping[str, str] | None = None) -> dict[str, Any] | None:
    """The signal for this job's Capacity Block, or None (no block, no checkpoint directory, or not yet)."""
    env: Mapping[str, str] = os.environ if environ is None else environ
    root, reservation_id = env.get(CHECKPOINT_DIR_ENV), env.get(CAPACITY_BLOCK_ENV)
    if not root or not reservation_id:
        return None
    try:
        signal = json.loads(block_signal_path(Path(root), reservation_id).read_text())
    except (OSError, ValueError):  # absent, or (never, as it is renamed into place) torn
        return None
    return signal if isinstance(signal, dict) else None
