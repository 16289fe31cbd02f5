"""Where the default app's synth time goes, phase by phase, against the baseline: `python bench/phases.py`.

bench/run.py says how far the default app is from the budget; this says which part costs it, so a decision
(drop a stack from the default app, change the baseline, optimize a construct) can be argued with figures.
Each app is synthesized --runs times in a fresh process (as `python app.py` does); for each phase the
medians of wall time, Python CPU time and Node.js CPU time (the jsii kernel and its child processes, read
from /proc) are printed. Wall time on a loaded machine is noisy; the two CPU columns are not.
"""

from __future__ import annotations

import eks_ml.bundled_node  # noqa: F401  (first: the same Node.js as app.py)
import eks_ml.startup  # as app.py, for both apps: no garbage collection while the imports run

# isort: split
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from run import this_checkout_first  # bench/run.py, beside this file

ROOT = Path(__file__).resolve().parents[1]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# CDK's built-in CloudFormation validator, as bench/run.py's on/off (its cost lands in app.synth()).
VALIDATOR = os.environ.get("EKS_ML_BENCH_VALIDATOR", "off") == "on"


def node_cpu_seconds() -> float:
    """User+system CPU of every descendant process (jsii starts node, which starts the kernel's node)."""
    total, pending = 0.0, [os.getpid()]
    while pending:
        pid = pending.pop()
        try:
            children = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        except OSError:
            continue
        for child in children:
            try:
                fields = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime (proc(5), fields 14-15)
        pending += children
    return total


class Clock:
    """Records (phase, wall, Python CPU, Node CPU) since the previous mark."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, float, float, float]] = []
        self._last = self._now()

    @staticmethod
    def _now() -> tuple[float, float, float]:
        return time.perf_counter(), time.process_time(), node_cpu_seconds()

    def mark(self, phase: str) -> None:
        now = self._now()
        self.rows.append((phase, *(b - a for a, b in zip(self._last, now, strict=True))))
        self._last = now


def default_app(clock: Clock, outdir: Path) -> None:
    from aws_cdk import App

    clock.mark("import aws_cdk (Node.js start, aws-cdk-lib load)")
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    app = App(
        outdir=str(outdir), context=context, analytics_reporting=False, builtin_cloud_formation_validation=VALIDATOR
    )
    clock.mark("App()")
    sys.path.insert(0, str(ROOT))
    from eks_ml import load_app_config
    from stacks import DefaultStacks, placement, write_gitops
    from stacks.clusters import InferenceStack, TrainingStack
    from stacks.network import NetworkStack
    from stacks.observability import ObservabilityStack

    eks_ml.startup.imports_done()
    config = load_app_config(context)
    placed = placement(app, config)
    clock.mark("import eks_ml and stacks")
    network = NetworkStack(app, "Network", config=config, **placed("network"))
    clock.mark("Network stack")
    training = TrainingStack(app, "Training", config=config, network=network.network, **placed("training"))
    clock.mark("Training stack")
    inference = InferenceStack(app, "Inference", config=config, network=network.network, **placed("inference"))
    clock.mark("Inference stack")
    training_observability = ObservabilityStack(
        app, "TrainingObservability", config=config, cluster=training.training, **placed("training-observability")
    )
    clock.mark("TrainingObservability stack")
    inference_observability = ObservabilityStack(
        app, "InferenceObservability", config=config, cluster=inference.inference, **placed("inference-observability")
    )
    clock.mark("InferenceObservability stack")
    app.synth()
    clock.mark("app.synth()")
    stacks = DefaultStacks(network, training, inference, training_observability, inference_observability)
    write_gitops(stacks, outdir / "dist")
    clock.mark("write_gitops (app.py does it on every synth)")


def baseline_app(clock: Clock, outdir: Path) -> None:
    from aws_cdk import App

    clock.mark("import aws_cdk (Node.js start, aws-cdk-lib load)")
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    app = App(
        outdir=str(outdir), context=context, analytics_reporting=False, builtin_cloud_formation_validation=VALIDATOR
    )
    clock.mark("App()")
    sys.path.insert(0, str(Path(__file__).parent))
    from baseline_app import build

    eks_ml.startup.imports_done()
    clock.mark("import aws_eks_v2, aws_ec2, kubectl layer")
    build(app)
    clock.mark("Baseline stack")
    app.synth()
    clock.mark("app.synth()")


APPS: dict[str, Callable[[Clock, Path], None]] = {"default": default_app, "baseline": baseline_app}


def once(kind: str, outdir: Path) -> None:
    clock = Clock()
    APPS[kind](clock, outdir)
    (outdir / "phases.json").write_text(json.dumps(clock.rows))  # not stdout: synthesis prints there


def report(kind: str, runs: list[list[Any]]) -> None:
    print(f"\n{kind} app, medians of {len(runs)} runs (seconds)")
    print(f"  {'phase':52s} {'wall':>6s} {'Python':>7s} {'Node.js':>7s}")
    totals = [0.0, 0.0, 0.0]
    for index, (phase, *_) in enumerate(runs[0]):
        medians = [statistics.median(run[index][column] for run in runs) for column in (1, 2, 3)]
        totals = [t + m for t, m in zip(totals, medians, strict=True)]
        print(f"  {phase:52s} {medians[0]:6.2f} {medians[1]:7.2f} {medians[2]:7.2f}")
    print(f"  {'sum of medians':52s} {totals[0]:6.2f} {totals[1]:7.2f} {totals[2]:7.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--validator", choices=("off", "on"), default="off", help="CDK's CloudFormation validator")
    parser.add_argument("--once", nargs=2, metavar=("KIND", "OUTDIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.once:
        once(args.once[0], Path(args.once[1]))
        return
    results: dict[str, list[list[Any]]] = {kind: [] for kind in APPS}
    with tempfile.TemporaryDirectory(prefix="eks-ml-phases-") as scratch:
        for index in range(args.runs):
            for kind in APPS:  # interleaved, so that machine load hits both alike
                outdir = Path(scratch) / f"{kind}-{index}"
                command = [sys.executable, __file__, "--once", kind, str(outdir)]
                environment = {**this_checkout_first(), "EKS_ML_BENCH_VALIDATOR": args.validator}
                done = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, check=False)
                if done.returncode != 0:
                    raise SystemExit(f"{kind} synth failed:\n{done.stderr}")
                results[kind].append(json.loads((outdir / "phases.json").read_text()))
    for kind, runs in results.items():
        report(f"{kind} (validator {args.validator})", runs)


if __name__ == "__main__":
    main()
