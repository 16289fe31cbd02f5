"""`make bench`: synth time and size of the default app against a hand-written baseline, with budgets.

In one run, interleaved so that machine load hits all alike: at least five synths of the default app, of one
eks-ml cluster (examples/existing_vpc_inference) and of bench/baseline_app.py (one aws_eks_v2 cluster, one GPU
node group, one Helm chart), each in a fresh process, with CDK's CloudFormation validator off and on.
Reported: medians and their ratios, peak memory, per-stack resources, template bytes against CloudFormation's
limits, asset bytes and Lambda-backed custom resources; with --tests also the time and count of `make test`.
Exits 1 when a budget is broken.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SYNTH_ONCE = Path(__file__).with_name("synth_once.py")
# CloudFormation quotas (AWS CloudFormation User Guide, "Understand CloudFormation quotas").
TEMPLATE_BYTES_LIMIT = 1_000_000  # template body uploaded through S3, as cdk deploy does
RESOURCES_LIMIT = 500
# Budgets (issue 10): ratios to the baseline, the test suite on 2 cores, Lambda-backed custom resources.
RATIO_BUDGET = {"off": 1.5, "on": 1.3}
TEST_SECONDS_BUDGET = 120
CUSTOM_RESOURCE_BUDGET = {"Inference": 8, "Training": 7}
# one-cluster (examples/existing_vpc_inference) has no budget: it shows eks-ml's cost per cluster against the
# baseline's, where the default app builds two clusters, their observability and a VPC.
KINDS = ("default", "one-cluster", "baseline")


def this_checkout_first() -> dict[str, str]:
    """The environment for a timed child: this checkout's eks_ml and stacks ahead of any installed eks_ml (the
    venv's editable install may point at another checkout, whose library would be timed instead)."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path}


@dataclass(frozen=True)
class Run:
    seconds: float
    max_rss_mib: float


def synth(kind: str, validator: str, outdir: Path) -> Run:
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, str(SYNTH_ONCE), kind, validator, str(outdir)],
        cwd=ROOT,
        env=this_checkout_first(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{kind} synth failed:\n{process.stderr.read().decode() if process.stderr else ''}")
    # ru_maxrss is in KiB on Linux: the largest of the process and the descendants it waited for (Node.js).
    return Run(seconds, usage.ru_maxrss / 1024)


def assembly_facts(outdir: Path) -> dict[str, dict[str, int]]:
    facts = {}
    for template_path in sorted(outdir.glob("*.template.json")):
        template = json.loads(template_path.read_text())
        resources = template.get("Resources", {}).values()
        facts[template_path.name.removesuffix(".template.json")] = {
            "resources": len(resources),
            "template_bytes": template_path.stat().st_size,
            "lambda_backed_custom_resources": sum(
                1
                for r in resources
                if r["Type"].startswith("Custom::") or r["Type"] == "AWS::CloudFormation::CustomResource"
            ),
        }
    return facts


def asset_bytes(outdir: Path) -> int:
    return sum(p.stat().st_size for p in outdir.glob("asset.*/**/*") if p.is_file()) + sum(
        p.stat().st_size for p in outdir.glob("asset.*") if p.is_file()
    )


def test_suite() -> tuple[float, str]:
    started = time.perf_counter()
    result = subprocess.run(["make", "test"], cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    summary = re.findall(r"\d+ passed.*? in [\d.]+s", result.stdout)
    return seconds, summary[-1] if summary else f"make test exited {result.returncode}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="synths per app and validator setting (>= 5)")
    parser.add_argument("--tests", action="store_true", help="also time `make test`")
    parser.add_argument("--json", type=Path, help="write the figures here as JSON")
    args = parser.parse_args()
    runs: dict[tuple[str, str], list[Run]] = {}
    with tempfile.TemporaryDirectory(prefix="eks-ml-bench-") as scratch:
        for index in range(max(args.runs, 5)):
            for validator in ("off", "on"):
                for kind in KINDS:
                    outdir = Path(scratch) / f"{kind}-{validator}-{index}"
                    runs.setdefault((kind, validator), []).append(synth(kind, validator, outdir))
        default_out, baseline_out = Path(scratch) / "default-off-0", Path(scratch) / "baseline-off-0"
        facts = {"default": assembly_facts(default_out), "baseline": assembly_facts(baseline_out)}
        assets = {"default": asset_bytes(default_out), "baseline": asset_bytes(baseline_out)}

    medians = {f"{k}/{v}": statistics.median(r.seconds for r in rs) for (k, v), rs in runs.items()}
    peaks = {f"{k}/{v}": max(r.max_rss_mib for r in rs) for (k, v), rs in runs.items()}
    ratios = {v: medians[f"default/{v}"] / medians[f"baseline/{v}"] for v in ("off", "on")}
    one_cluster = {v: medians[f"one-cluster/{v}"] / medians[f"baseline/{v}"] for v in ("off", "on")}
    broken = [
        f"default app {ratios[v]:.2f}x the baseline with the validator {v} (budget {RATIO_BUDGET[v]}x)"
        for v in ("off", "on")
        if ratios[v] > RATIO_BUDGET[v]
    ]
    for stack, limit in CUSTOM_RESOURCE_BUDGET.items():
        count = facts["default"][stack]["lambda_backed_custom_resources"]
        if count > limit:
            broken.append(f"{stack}: {count} Lambda-backed custom resources (budget {limit})")
    for stack, fact in facts["default"].items():
        if fact["template_bytes"] > TEMPLATE_BYTES_LIMIT or fact["resources"] > RESOURCES_LIMIT:
            broken.append(f"{stack}: over a CloudFormation limit ({fact})")

    print(f"synths per setting: {max(args.runs, 5)} (medians; wall clock, each in a fresh process)")
    for key in sorted(medians):
        print(f"  {key:16} {medians[key]:6.2f} s   peak RSS {peaks[key]:6.0f} MiB")
    for v in ("off", "on"):
        print(f"  ratio default/baseline, validator {v}: {ratios[v]:.2f}x (budget {RATIO_BUDGET[v]}x)")
        print(f"  ratio one-cluster/baseline, validator {v}: {one_cluster[v]:.2f}x (no budget)")
    print("per stack (default app): resources / template bytes / Lambda-backed custom resources")
    for stack, fact in facts["default"].items():
        print(
            f"  {stack:24} {fact['resources']:4} / {fact['template_bytes']:9,} "
            f"({fact['template_bytes'] / TEMPLATE_BYTES_LIMIT:.0%} of 1 MB) / {fact['lambda_backed_custom_resources']}"
        )
    print(f"asset bytes: default {assets['default']:,}, baseline {assets['baseline']:,}")
    figures: dict[str, object] = {
        "medians_s": medians,
        "peak_rss_mib": peaks,
        "ratios": ratios,
        "one_cluster_ratios": one_cluster,
        "stacks": facts,
    }
    if args.tests:
        seconds, summary = test_suite()
        print(f"make test: {seconds:.0f} s ({summary}; budget {TEST_SECONDS_BUDGET} s)")
        figures["make_test"] = {"seconds": seconds, "summary": summary}
        if seconds > TEST_SECONDS_BUDGET:
            broken.append(f"make test took {seconds:.0f} s (budget {TEST_SECONDS_BUDGET} s)")
    if args.json:
        args.json.write_text(json.dumps({**figures, "broken": broken}, indent=2))
    for line in broken:
        print(f"BUDGET BROKEN: {line}")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
