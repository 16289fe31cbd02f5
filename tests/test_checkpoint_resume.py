"""The checkpoint contract and the example's resume, run for real: the contract in pure Python, then the example
under torchrun on the CPU (gloo, world size 2) killed mid-run and restarted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import IO, Any

import pytest

from eks_ml.training.workloads import checkpoint_contract as contract
from eks_ml.training.workloads.train_example import (
    batch_seed,
    build,
    parse_args,
    should_checkpoint,
    synthetic_batch,
)

from .support.synth import ROOT

EXAMPLE = ROOT / "eks_ml" / "training" / "workloads" / "train_example.py"


def _payload(size: int) -> Any:
    return lambda stream: stream.write(b"x" * size)


def _files(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


def test_a_saved_step_is_complete_and_newest_wins(tmp_path: Path) -> None:
    for step in (50, 100, 150):
        contract.save(tmp_path, step, _payload(step))
    latest = contract.latest_complete(tmp_path)
    assert latest == contract.Checkpoint(step=150, path=tmp_path / "step-000150.pt")
    assert contract.first_step(latest) == 151
    assert json.loads((tmp_path / "step-000150.complete").read_text()) == {
        "step": 150,
        "file": "step-000150.pt",
        "bytes": 150,
    }
    assert oct((tmp_path / "step-000150.pt").stat().st_mode & 0o777) == "0o644"  # readable by the next job
    assert not [name for name in _files(tmp_path) if name.startswith(contract.TEMP_PREFIX)]


def test_nothing_to_resume_starts_at_step_one(tmp_path: Path) -> None:
    assert contract.latest_complete(None) is None
    assert contract.latest_complete(tmp_path / "absent") is None
    assert contract.latest_complete(tmp_path) is None
    assert contract.first_step(None) == 1


class Crash(Exception):
    pass


def test_a_writer_that_dies_mid_write_leaves_the_last_complete_checkpoint(tmp_path: Path) -> None:
    contract.save(tmp_path, 50, _payload(10))

    def torn(stream: IO[bytes]) -> None:
        stream.write(b"half a checkpoint")
        raise Crash

    with pytest.raises(Crash):
        contract.save(tmp_path, 100, torn)
    assert _files(tmp_path) == ["step-000050.complete", "step-000050.pt"]  # no step 100, no temporary file
    assert contract.latest_complete(tmp_path) == contract.Checkpoint(50, tmp_path / "step-000050.pt")


@pytest.mark.parametrize(
    "break_step_100",
    [
        pytest.param(lambda d: (d / "step-000100.complete").unlink(), id="died-between-the-renames"),
        pytest.param(lambda d: (d / "step-000100.pt").write_bytes(b"torn"), id="file-shorter-than-its-marker"),
        pytest.param(lambda d: (d / "step-000100.pt").unlink(), id="marker-without-its-file"),
        pytest.param(lambda d: (d / "step-000100.complete").write_text("{not json"), id="torn-marker"),
        pytest.param(
            lambda d: (d / "step-000100.complete").write_text(json.dumps({"step": 7, "file": "x", "bytes": 1})),
            id="marker-of-another-step",
        ),
    ],
)
def test_an_incomplete_newest_checkpoint_is_never_loaded(tmp_path: Path, break_step_100: Any) -> None:
    contract.save(tmp_path, 50, _payload(10))
    contract.save(tmp_path, 100, _payload(20))
    assert contract.latest_complete(tmp_path) == contract.Checkpoint(100, tmp_path / "step-000100.pt")
    break_step_100(tmp_path)
    # A loader that took the newest step file would pick step 100; the contract falls back to step 50.
    assert contract.latest_complete(tmp_path) == contract.Checkpoint(50, tmp_path / "step-000050.pt")


def test_the_job_directory_comes_from_the_runtime_environment() -> None:
    env = {"EKS_ML_CHECKPOINT_DIR": "/fsx/checkpoints", "EKS_ML_JOB_NAME": "h100-example"}
    assert contract.job_directory(env) == Path("/fsx/checkpoints/h100-example")
    assert contract.job_directory({"EKS_ML_CHECKPOINT_DIR": "/fsx/checkpoints"}) == Path("/fsx/checkpoints/example")
    # A job that sets no name of its own gets its TrainJob's (the runtime's EKS_ML_JOBSET_NAME), never a shared one.
    from_runtime = {"EKS_ML_CHECKPOINT_DIR": "/fsx/checkpoints", "EKS_ML_JOBSET_NAME": "sweep-3"}
    assert contract.job_directory(from_runtime) == Path("/fsx/checkpoints/sweep-3")
    assert contract.job_directory({**from_runtime, **env}) == Path("/fsx/checkpoints/h100-example")
    assert contract.job_directory({}) is None  # no file system: the job runs, and cannot resume


@pytest.mark.parametrize("argv", [["--checkpoint-every", "0"], ["--steps", "-1"], ["--width", "x"]])
def test_the_example_refuses_sizes_it_cannot_train_with(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(argv)
    assert parse_args(["--checkpoint-every", "5"]).checkpoint_every == 5


def test_each_rank_and_step_has_its_own_batch_and_the_last_step_is_saved() -> None:
    seeds = {batch_seed(step, rank, 2) for step in range(1, 50) for rank in range(2)}
    assert len(seeds) == 98
    assert [s for s in range(1, 11) if should_checkpoint(s, 3, 10)] == [3, 6, 9, 10]


# --- The example under torchrun on the CPU -------------------------------------------------------------------

try:
    import torch
except ImportError:  # the pure-Python contract tests above still run
    torch = None

requires_torch = pytest.mark.skipif(
    torch is None, reason="torch is not installed (make install adds it: the dev extra pins the CPU build)"
)

STEPS, EVERY, FAIL_AT, WIDTH, BATCH = 10, 3, 8, 32, 8


def _torchrun(directory: Path, *extra: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    arguments = ["--backend", "gloo", "--steps", str(STEPS), "--checkpoint-every", str(EVERY)]
    env = {
        **os.environ,
        "EKS_ML_CHECKPOINT_DIR": str(directory),
        "EKS_ML_JOB_NAME": "example",
        "OMP_NUM_THREADS": "1",
    }
    return subprocess.Popen(
        [*command, str(EXAMPLE), *arguments, "--width", str(WIDTH), "--batch", str(BATCH), *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _finish(run: subprocess.Popen[str]) -> tuple[int, str]:
    output, _ = run.communicate(timeout=120)
    return run.returncode, output


def _state(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    return loaded


def _same_tensors(left: Any, right: Any) -> bool:
    if isinstance(left, dict):
        return left.keys() == right.keys() and all(_same_tensors(left[k], right[k]) for k in left)
    if isinstance(left, list | tuple):
        return len(left) == len(right) and all(_same_tensors(a, b) for a, b in zip(left, right, strict=True))
    if isinstance(left, torch.Tensor):
        return bool(torch.allclose(left, right, rtol=1e-6, atol=1e-7))
    return bool(left == right)


@requires_torch
def _unbroken_reference() -> dict[str, Any]:
    """The example's 10 steps on both ranks' batches in this process, without DDP or a failure: DDP averages the
    ranks' gradients, which is the gradient of the mean of their losses."""
    model, optimizer = build(WIDTH, "cpu")
    for step in range(1, STEPS + 1):
        losses = [model(synthetic_batch(step, rank, 2, BATCH, WIDTH)).pow(2).mean() for rank in range(2)]
        optimizer.zero_grad()
        (sum(losses) / 2).backward()
        optimizer.step()
    return {"model": model.state_dict(), "optimizer": optimizer.state_dict()}


@requires_torch
def test_a_killed_run_resumes_from_its_latest_complete_checkpoint(tmp_path: Path) -> None:
    broken_dir = tmp_path / "broken"
    broken_code, broken_output = _finish(_torchrun(broken_dir, "--fail-at-step", str(FAIL_AT)))
    assert broken_code != 0, broken_output  # rank 1 was SIGKILLed after step 8; torchrun tore the gang down
    assert "exitcode  : -9" in broken_output
    job = broken_dir / "example"
    assert contract.latest_complete(job) == contract.Checkpoint(6, job / "step-000006.pt")

    # What a writer killed mid-save leaves behind: a newer step file that is only half there, with no marker,
    # and a temporary file. Loading either would crash the restart or train from garbage.
    whole = (job / "step-000006.pt").read_bytes()
    (job / "step-000009.pt").write_bytes(whole[: len(whole) // 2])
    (job / f"{contract.TEMP_PREFIX}step-000012.pt.abc").write_bytes(whole[:100])

    code, output = _finish(_torchrun(broken_dir))
    assert code == 0, output
    assert f"resume: loaded {job / 'step-000006.pt'} (step 6), continuing at step 7" in output
    assert "starting at step 1" not in output
    trained = [int(line.split()[1].rstrip(":")) for line in output.splitlines() if line.startswith("step ")]
    assert trained == [9, 10]  # the checkpoints of this run: it trained steps 7..10 only

    # Model AND optimizer state were restored: AdamW's moments and step count shape every later update, so
    # the resumed run ends where an unbroken run ends (computed here without DDP, torchrun or a failure).
    final, reference = _state(job / "step-000010.pt"), _unbroken_reference()
    assert final["step"] == STEPS
    assert _same_tensors(final["model"], reference["model"])
    assert _same_tensors(final["optimizer"], reference["optimizer"])
    # A restart after the last step (a requeue of a finished job) would start past it and train nothing.
    assert contract.first_step(contract.latest_complete(job)) == STEPS + 1
