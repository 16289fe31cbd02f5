"""Example distributed training job: a small data-parallel model on synthetic data, checkpointed to FSx.

Runs under torchrun (Kubeflow Trainer sets the rendezvous variables). It exercises what a real job
needs from the platform: every accelerator of every node, the collective fabric for gradient
all-reduce, and the shared file system for checkpoints (EKS_ML_CHECKPOINT_DIR), and it survives failures:
a restarted job (the runtime's JobSet restart after a node died, or a Kueue requeue) loads the newest
complete checkpoint (checkpoint_contract.py, shipped beside this script) and continues with the next step.
On a Capacity Block (EKS_ML_CAPACITY_BLOCK set), it saves a checkpoint as soon as the block's signal appears,
then trains on until its nodes go.
"""

from __future__ import annotations

import argparse
import functools
import os
import signal
import sys
from pathlib import Path
from typing import Any

try:  # imported from the eks_ml package (tests, type checks)
    from . import checkpoint_contract as contract
except ImportError:  # run as a script from the ConfigMap mount: the contract module sits beside it
    import checkpoint_contract as contract  # type: ignore[no-redef]

SEED = 1234


def checkpoint_path(directory: str, job: str, step: int) -> Path:
    return contract.checkpoint_path(Path(directory) / job, step)


def batch_seed(step: int, rank: int, world_size: int) -> int:
    """The seed of one rank's synthetic batch at one step: a resumed run sees the batches an unbroken one would."""
    return SEED + step * world_size + rank


def build(width: int, device: Any, lr: float = 1e-4) -> tuple[Any, Any]:
    """The model (the same initial weights on every rank) and its optimizer."""
    import torch

    torch.manual_seed(SEED)
    model = torch.nn.Sequential(torch.nn.Linear(width, width), torch.nn.GELU(), torch.nn.Linear(width, width))
    model = model.to(device)
    return model, torch.optim.AdamW(model.parameters(), lr=lr)


def synthetic_batch(step: int, rank: int, world_size: int, batch: int, width: int) -> Any:
    import torch

    generator = torch.Generator().manual_seed(batch_seed(step, rank, world_size))
    return torch.randn(batch, width, generator=generator)


def should_checkpoint(step: int, every: int, last: int) -> bool:
    return step % every == 0 or step == last


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a whole number of at least 1")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:  # also refuses NaN
        raise argparse.ArgumentTypeError(f"{value} is not a number above 0")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--backend", choices=["nccl", "xla", "gloo"], default="nccl", help="gloo: CPU only")
    parser.add_argument("--steps", type=positive, default=200)
    parser.add_argument("--checkpoint-every", type=positive, default=50)
    parser.add_argument("--width", type=positive, default=4096, help="hidden size of the model")
    parser.add_argument("--batch", type=positive, default=64)
    parser.add_argument("--lr", type=positive_float, default=1e-4, help="AdamW learning rate (a sweep varies it)")
    parser.add_argument(
        "--fail-at-step",
        type=int,
        default=0,
        help="fault drill: the last rank kills itself (SIGKILL, like a node that vanished) after this step",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    if args.backend == "xla":
        import torch_xla.core.xla_model as xm

        dist.init_process_group("xla", init_method="xla://")
        device = xm.xla_device()
        step_done = xm.mark_step
    else:
        dist.init_process_group(args.backend)
        if args.backend == "nccl":
            torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
            device = torch.device("cuda")
        else:
            device = torch.device("cpu")

        def step_done() -> None:
            return None

    rank, world_size = dist.get_rank(), dist.get_world_size()
    directory = contract.job_directory()
    model, optimizer = build(args.width, device, args.lr)

    # Rank 0 decides which checkpoint every rank loads (all must resume from the same step); 0 means none.
    found = contract.latest_complete(directory) if rank == 0 else None
    chosen = torch.tensor([found.step if found else 0], dtype=torch.int64, device=device)
    dist.broadcast(chosen, src=0)
    latest = None
    if int(chosen.item()) > 0 and directory is not None:
        step = int(chosen.item())
        latest = contract.Checkpoint(step=step, path=contract.checkpoint_path(directory, step))
        state = torch.load(latest.path, map_location="cpu", weights_only=True)  # load_state_dict moves it
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if rank == 0:
            print(f"resume: loaded {latest.path} (step {state['step']}), continuing at step {latest.step + 1}")
    elif rank == 0:
        print("resume: no complete checkpoint, starting at step 1")
    if directory is None and rank == 0:
        print(f"{contract.CHECKPOINT_DIR_ENV} is not set: this run writes no checkpoints and cannot resume")

    ddp = DistributedDataParallel(model, gradient_as_bucket_view=True)
    handled_signal = None  # the Capacity Block signal already answered with a checkpoint
    for step in range(contract.first_step(latest), args.steps + 1):
        batch = synthetic_batch(step, rank, world_size, args.batch, args.width).to(device)
        loss = ddp(batch).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        step_done()
        if args.fail_at_step == step and rank == world_size - 1:
            os.kill(os.getpid(), signal.SIGKILL)
        # Rank 0 alone saves, so it alone polls the signal; the other ranks never wait on it.
        ending = contract.block_ending() if rank == 0 and directory is not None else None
        checkpoint_now = ending is not None and ending != handled_signal
        if ending is not None and checkpoint_now:
            handled_signal = ending
            print(f"capacity block {ending.get('reservation')} ends {ending.get('end')}: checkpoint now (step {step})")
        if (
            rank == 0
            and directory is not None
            and (checkpoint_now or should_checkpoint(step, args.checkpoint_every, args.steps))
        ):
            snapshot = {"step": step, "model": model.state_dict(), "optimizer": optimizer.state_dict()}
            path = contract.save(directory, step, functools.partial(torch.save, snapshot))
            print(f"step {step}: loss {loss.item():.4f}, checkpoint {path}")
    # No rank tears the group down while another still uses it (rank 0 may be writing the last checkpoint);
    # a peer closing its connections early can abort the other rank's gloo threads (SIGABRT).
    dist.barrier()
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
