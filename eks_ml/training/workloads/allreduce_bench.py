"""Fabric acceptance test: all-reduce bus bandwidth across every node of a training job.

Runs under torchrun (Kubeflow Trainer sets the PET_* rendezvous variables). On NVIDIA it uses NCCL,
which reaches EFA through aws-ofi-nccl in the AWS Deep Learning Container; on Trainium it uses the
XLA backend of torch-neuronx. Bus bandwidth is computed as nccl-tests defines it for all-reduce:
busbw = algbw * 2 * (n - 1) / n, with algbw = bytes / seconds.

Each message size is warmed up before it is timed: the first collectives pay for NCCL communicator
set-up or, on XLA, for compiling the graph, and neither belongs in a bandwidth figure. On XLA every
all-reduce is its own step (mark_step), so the warm-up compiles exactly the graph the timed steps
reuse from the cache; batching the timed iterations into one graph would compile a new, longer graph
inside the measurement.

The run fails (exit code 1) when the largest message's bus bandwidth is below --min-fraction of the
node's EFA line rate (EKS_ML_EFA_GBPS): the one number that tells a broken fabric (traffic falling
back to TCP over a single ENA) from a working one. The threshold is eks-ml's, not an AWS figure.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from functools import partial

MESSAGE_SIZES = [2**k for k in range(20, 31)]  # 1 MiB .. 1 GiB
MIN_WARMUP = 1  # at least one untimed, synchronised collective per size: it compiles (XLA) or connects (NCCL)


def algorithm_bandwidth(size_bytes: int, seconds: float) -> float:
    """GB/s moved per rank: size / time."""
    return size_bytes / seconds / 1e9


def bus_bandwidth(size_bytes: int, seconds: float, world_size: int) -> float:
    """nccl-tests' all-reduce bus bandwidth, comparable to the hardware's link speed."""
    return algorithm_bandwidth(size_bytes, seconds) * 2 * (world_size - 1) / world_size


def line_rate_gbytes(gbps: float) -> float:
    return gbps / 8


def verdict(busbw: float, line_rate: float, min_fraction: float) -> bool:
    return busbw >= min_fraction * line_rate


def seconds_per_iteration(
    step: Callable[[], None],
    sync: Callable[[], None],
    *,
    iterations: int,
    warmup: int,
    clock: Callable[[], float] | None = None,
) -> float:
    """Mean seconds of ``step`` over ``iterations`` timed runs, after ``warmup`` untimed ones.

    The warm-up steps run and are synchronised before the clock starts, so compilation, communicator
    set-up and the first transfers stay out of the measurement; the timed steps end with a sync so
    asynchronous work is counted.
    """
    if warmup < MIN_WARMUP or iterations < 1:
        raise ValueError(f"need warmup >= {MIN_WARMUP} and iterations >= 1, got {warmup} and {iterations}")
    now = clock or time.perf_counter
    for _ in range(warmup):
        step()
    sync()
    start = now()
    for _ in range(iterations):
        step()
    sync()
    return (now() - start) / iterations


def _run(backend: str, iterations: int, warmup: int) -> list[tuple[int, float]]:
    import torch
    import torch.distributed as dist

    if backend == "xla":
        import torch_xla.core.xla_model as xm

        dist.init_process_group("xla", init_method="xla://")
        device = xm.xla_device()

        # XLA is lazy: the all-reduce runs, and its graph is compiled the first time it is seen, at
        # mark_step. One all-reduce per step keeps the graph the same in warm-up and timed steps.
        # https://docs.pytorch.org/xla/release/r2.8/learn/trace-vs-execution-time.html
        def step(tensor: torch.Tensor) -> None:
            dist.all_reduce(tensor)
            xm.mark_step()

        def sync() -> None:
            xm.wait_device_ops()
    else:
        dist.init_process_group("nccl")
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
        device = torch.device("cuda")

        def step(tensor: torch.Tensor) -> None:
            dist.all_reduce(tensor)

        def sync() -> None:
            torch.cuda.synchronize()

    results = []
    for size in MESSAGE_SIZES:
        tensor = torch.ones(size // 4, dtype=torch.float32, device=device)
        seconds = seconds_per_iteration(partial(step, tensor), sync, iterations=iterations, warmup=warmup)
        results.append((size, seconds))
    dist.destroy_process_group()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["nccl", "xla"], default="nccl")
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5, help=f"untimed iterations per size, at least {MIN_WARMUP}")
    parser.add_argument("--min-fraction", type=float, default=0.5)
    args = parser.parse_args(argv)
    if args.warmup < MIN_WARMUP or args.iterations < 1:
        parser.error(f"--warmup must be at least {MIN_WARMUP} and --iterations at least 1")

    world = int(os.environ["WORLD_SIZE"])
    rank = int(os.environ["RANK"])
    results = _run(args.backend, args.iterations, args.warmup)
    if rank != 0:
        return 0
    print(f"{'size(B)':>12} {'time(us)':>10} {'algbw(GB/s)':>12} {'busbw(GB/s)':>12}")
    for size, seconds in results:
        print(
            f"{size:>12} {seconds * 1e6:>10.1f} {algorithm_bandwidth(size, seconds):>12.2f} "
            f"{bus_bandwidth(size, seconds, world):>12.2f}"
        )
    size, seconds = results[-1]
    busbw = bus_bandwidth(size, seconds, world)
    line_rate = line_rate_gbytes(float(os.environ["EKS_ML_EFA_GBPS"]))
    passed = verdict(busbw, line_rate, args.min_fraction)
    print(
        f"bus bandwidth at {size} B: {busbw:.1f} GB/s; EFA line rate {line_rate:.1f} GB/s; "
        f"{'PASS' if passed else 'FAIL'} (threshold {args.min_fraction:.0%})"
    )
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
