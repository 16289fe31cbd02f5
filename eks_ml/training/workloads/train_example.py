"""Example distributed training job: a small data-parallel model on synthetic data, checkpointed to FSx.

Runs under torchrun (Kubeflow Trainer sets the rendezvous variables). It exercises what a real job
needs from the platform: every accelerator of every node, the collective fabric for gradient
all-reduce, and the shared file system for checkpoints (EKS_ML_CHECKPOINT_DIR).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def checkpoint_path(directory: str, job: str, step: int) -> Path:
    return Path(directory) / job / f"step-{step:06d}.pt"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["nccl", "xla"], default="nccl")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--checkpoint-every", type=int, default=50)
    args = parser.parse_args(argv)

    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    if args.backend == "xla":
        import torch_xla.core.xla_model as xm

        dist.init_process_group("xla", init_method="xla://")
        device = xm.xla_device()
        step_done = xm.mark_step
    else:
        dist.init_process_group("nccl")
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
        device = torch.device("cuda")

        def step_done() -> None:
            return None

    rank, job = dist.get_rank(), os.environ.get("EKS_ML_JOB_NAME", "example")
    model = torch.nn.Sequential(torch.nn.Linear(4096, 4096), torch.nn.GELU(), torch.nn.Linear(4096, 4096)).to(device)
    ddp = DistributedDataParallel(model, gradient_as_bucket_view=True)
    optimizer = torch.optim.AdamW(ddp.parameters(), lr=1e-4)
    for step in range(1, args.steps + 1):
        batch = torch.randn(64, 4096, device=device)
        loss = ddp(batch).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        step_done()
        if rank == 0 and step % args.checkpoint_every == 0:
            path = checkpoint_path(os.environ["EKS_ML_CHECKPOINT_DIR"], job, step)
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.save({"step": step, "model": model.state_dict()}, path)
            print(f"step {step}: loss {loss.item():.4f}, checkpoint {path}")
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
