"""The eks-ml console command: eks-ml plan.

``eks-ml plan`` synthesizes the CDK app of the folder holding ``cdk.json`` exactly as ``cdk synth`` runs it
(its ``app`` command, with the ``context`` of cdk.json and cdk.context.json, then ``-c key=value``
overrides), into a temporary folder, and prints what every eks-ml cluster of that app builds and roughly
what it costs. It works for the default app and for any app that uses eks-ml's constructs. Running the
app has the app's own side effects (the default app writes its GitOps export to ``dist/``, as synth does).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from .plan import DEFAULT_CHECKPOINT_GIB, AppPlan, CapacityBlockLine, ServingLine, plans_from_assembly

# Piped output is not cut to 80 columns: rows keep their natural width.
PIPED_WIDTH = 1000


class PlanError(Exception):
    """What stops a plan before it starts, said to the user without a traceback."""


def app_settings(cdk_json: Path, overrides: Sequence[str]) -> tuple[str, dict[str, Any]]:
    """The app command and the context ``cdk synth`` would give it."""
    if not cdk_json.is_file():
        raise PlanError(
            f"{cdk_json} does not exist: run eks-ml plan in your CDK app's folder (where cdk.json is), "
            "or pass --cdk-json PATH"
        )
    try:
        settings = json.loads(cdk_json.read_text())
    except json.JSONDecodeError as exc:
        raise PlanError(f"--cdk-json {cdk_json} is not JSON: fix the JSON at line {exc.lineno}: {exc.msg}") from None
    if not isinstance(settings, dict) or not isinstance(settings.get("context", {}), dict):
        raise PlanError(
            f'--cdk-json {cdk_json} must be an object whose "context" is an object: write {{"context": {{...}}}}'
        )
    if not isinstance(settings.get("app"), str):
        raise PlanError(f'{cdk_json} has no "app" command: add the one cdk synth runs, e.g. "python3 app.py"')
    # The CDK CLI's precedence, lowest first: ~/.cdk.json, cdk.context.json (saved lookups), cdk.json, -c.
    context: dict[str, Any] = {}
    for path in (Path.home() / ".cdk.json", cdk_json.parent / "cdk.context.json"):
        if path.is_file():
            context.update(_context_of(path, "context" if path.name == ".cdk.json" else None))
    context.update(settings.get("context") or {})
    for item in overrides:
        key, separator, value = item.partition("=")
        if not separator:
            raise PlanError(f"-c takes key=value, got {item!r}")
        context[key] = value  # a string, as cdk's -c gives it
    return settings["app"], context


def _context_of(path: Path, key: str | None) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise PlanError(f"{path} is not JSON: fix the JSON at line {exc.lineno}: {exc.msg}") from None
    found = document.get(key, {}) if key and isinstance(document, dict) else document
    if not isinstance(found, dict):
        raise PlanError(f"{path} must hold a JSON object of context values")
    return found


def synthesize(app: str, context: dict[str, Any], folder: Path, outdir: Path) -> None:
    """Run ``app`` in ``folder`` as the CDK CLI does: the cloud assembly goes to ``outdir``."""
    # `python3 app.py` resolves to the environment eks-ml runs in (which has eks_ml installed), as it would
    # for cdk synth with that virtualenv active.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env = {**os.environ, "PATH": path, "CDK_OUTDIR": str(outdir), "CDK_CONTEXT_JSON": json.dumps(context)}
    result = subprocess.run(app, shell=True, cwd=folder, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise PlanError(result.stderr.strip() or f"{app} exited with {result.returncode}")
    if not (outdir / "manifest.json").is_file():
        raise PlanError(f"{app} wrote no cloud assembly: does the app call app.synth()?")


def _money(value: float | None) -> str:
    return "n/a" if value is None else f"${value:,.2f}"


def render(plan: AppPlan, console: Console, checkpoint_gib: float) -> None:
    for cluster in plan.clusters:
        table = Table(title=f"{cluster.name} ({cluster.workload}, {cluster.path})", title_justify="left")
        numeric = {"nodes", "ranks/node", "EFA", "Gbps", "$/h"}
        columns = ("role", "instance type", "nodes", "accelerators", "ranks/node", "accel. memory GiB", "EFA", "Gbps")
        for column in (*columns, "$/h"):
            table.add_column(column, justify="right" if column in numeric else "left")
        for line in cluster.nodes:
            table.add_row(
                line.role,
                line.instance_type,
                str(line.nodes),
                line.accelerators,
                str(line.workers_per_node) if line.workers_per_node else "-",
                f"{line.accelerator_memory_gib:g}" if line.accelerator_memory_gib else "-",
                str(line.efa_interfaces),
                f"{line.network_gbps:g}" if line.network_gbps else "-",
                _money(line.usd_per_hour) if line.usd_per_node_hour is not None else "no price",
            )
        console.print(table)
        if cluster.storage:
            s = cluster.storage
            console.print(
                f"  FSx for Lustre: {s.storage_gib} GiB at {s.throughput_mbps:,.0f} MB/s"
                f"{' over EFA' if s.efa_enabled else ''}; a {checkpoint_gib:g} GiB checkpoint takes "
                f"~{s.checkpoint_write_seconds(checkpoint_gib):,.0f} s to write at full throughput"
            )
        if cluster.max_restarts is not None:
            console.print(
                f"  a failed training job is restarted up to {cluster.max_restarts} times, from its newest checkpoint"
            )
        for storage_class in cluster.storage_classes:
            console.print(f"  StorageClass {storage_class}", soft_wrap=True)
        for block in cluster.capacity_blocks:
            console.print(f"  {capacity_block_line(block)}", soft_wrap=True)
        for serving in cluster.serving:
            console.print(f"  {serving_line(serving)}", soft_wrap=True)
        for pool in cluster.pools:
            console.print(f"  Karpenter pool {pool}")
        for note in cluster.notes:
            console.print(f"  note: {note}")
        for landing in cluster.placements:
            console.print(f"  lands: {landing}", soft_wrap=True)
        estimate = f"  estimated {_money(cluster.usd_per_hour)}/h including the EKS control plane"
        console.print(f"{estimate}{_left_out(cluster.unpriced)}\n", soft_wrap=True)
    console.print(
        f"Total ~{_money(plan.usd_per_hour)}/h On-Demand{_left_out(plan.unpriced)} ({plan.price_region} list "
        f"prices of {plan.prices_as_of}; FSx, EBS, load balancers, NAT and data transfer not included).",
        soft_wrap=True,
    )


def serving_line(line: ServingLine) -> str:
    """A benchmarked service: its throughput per replica within the SLO, the HPA target and the token cost."""
    cost = (
        f"{_money(line.usd_per_million_output_tokens)} per million output tokens"
        if line.usd_per_million_output_tokens is not None
        else f"no price for {line.instance_type}"
    )
    return (
        f"model {line.service}: {line.output_tokens_per_second:,.0f} output tokens/s per replica on "
        f"{line.instance_type} at p{line.slo_percentile:g} {line.latency_seconds:.1f} s "
        f"(SLO {line.slo_latency_seconds:g} s), queue target {line.queue_target}; {cost} (On-Demand)"
        + (f"; {line.note}" if line.note else "")
    )


def capacity_block_line(block: CapacityBlockLine) -> str:
    """The block's window, when work winds down, and its price beside On-Demand for the same instance-hours."""
    window = (
        f"Capacity Block {block.reservation_id} ({block.group}: {block.instances} x {block.instance_type}) "
        f"{block.start} .. {block.end} ({block.hours:g} h); Kueue stops admitting onto it at "
        f"{block.stop_admitting_at}, jobs checkpoint at {block.checkpoint_at}, instances terminate from "
        f"{block.termination_starts}"
    )
    if block.usd_per_instance_hour is None:
        price = "no price given (pass upfront_usd, the offering's UpfrontFee)"
    else:
        price = f"{_money(block.upfront_usd)} upfront = {_money(block.usd_per_instance_hour)}/instance-hour"
    if block.on_demand_usd_per_instance_hour is None:
        versus = f"no On-Demand price for {block.instance_type} in the table"
    else:
        versus = (
            f"On-Demand {_money(block.on_demand_usd_per_instance_hour)}/instance-hour, "
            f"{_money(block.on_demand_usd)} for the same hours"
        )
        if block.saving_percent is not None:
            cheaper = block.saving_percent >= 0
            versus += f" (the block is {abs(block.saving_percent):.0f}% {'cheaper' if cheaper else 'dearer'})"
    return f"{window}; {price}; {versus}"


def _left_out(unpriced: Sequence[Any]) -> str:
    if not unpriced:
        return ""
    nodes = sum(line.nodes for line in unpriced)
    types = ", ".join(sorted({line.instance_type for line in unpriced}))
    return f" + {nodes} node{'s' if nodes != 1 else ''} with no price in the table ({types}), not included"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="eks-ml", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    plan = commands.add_parser("plan", help="what the app builds: nodes, fabric, storage, placement, cost")
    plan.add_argument("--json", action="store_true", help="machine-readable output")
    plan.add_argument("-c", "--context", action="append", default=[], metavar="KEY=VALUE", help="as cdk -c")
    plan.add_argument("--cdk-json", type=Path, default=Path("cdk.json"), help="default: ./cdk.json")
    plan.add_argument(
        "--checkpoint-gib", type=float, default=DEFAULT_CHECKPOINT_GIB, help="checkpoint size for the write time"
    )
    args = parser.parse_args(argv)
    try:
        app, context = app_settings(args.cdk_json, args.context)
        with tempfile.TemporaryDirectory(prefix="eks-ml-plan-") as outdir:
            synthesize(app, context, args.cdk_json.resolve().parent, Path(outdir))
            result = plans_from_assembly(Path(outdir))
        if not result.clusters:
            raise PlanError(f"the app of {args.cdk_json} synthesizes no eks-ml TrainingCluster or InferenceCluster")
    except PlanError as error:
        print(f"eks-ml plan: {error}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result.to_json(args.checkpoint_gib), indent=2))
    else:
        render(result, Console() if sys.stdout.isatty() else Console(width=PIPED_WIDTH), args.checkpoint_gib)
    return 0


if __name__ == "__main__":
    sys.exit(main())
