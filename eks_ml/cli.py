"""The ``eks-ml`` console command.

``eks-ml plan`` reads the app's configuration (the ``eks-ml:*`` keys of cdk.json, then ``-c key=value``
overrides, exactly as ``cdk synth`` does) and prints what it will build and roughly what it costs.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from .config import AppConfig, load_app_config
from .errors import ValidationError
from .placement import ClusterModel
from .plan import DEFAULT_CHECKPOINT_GIB, AppPlan, plan_app


def _context(cdk_json: Path, overrides: Sequence[str]) -> dict[str, Any]:
    context: dict[str, Any] = {}
    if cdk_json.exists():
        try:
            document = json.loads(cdk_json.read_text())
        except json.JSONDecodeError as exc:
            raise ValidationError.single(
                "--cdk-json", str(cdk_json), "a JSON file", f"fix the JSON at line {exc.lineno}: {exc.msg}"
            ) from None
        found = document.get("context", {}) if isinstance(document, dict) else None
        if not isinstance(found, dict):
            raise ValidationError.single(
                "--cdk-json", str(cdk_json), 'an object with a "context" object', 'write {"context": {...}}'
            )
        context.update(found)
    for item in overrides:
        key, separator, value = item.partition("=")
        if not separator:
            raise SystemExit(f"eks-ml: -c takes key=value, got {item!r}")
        context[key] = value  # a string, as cdk's -c gives it
    return context


def _money(value: float | None) -> str:
    return "n/a" if value is None else f"${value:,.2f}"


def render(plan: AppPlan, console: Console) -> None:
    for cluster in plan.clusters:
        table = Table(title=f"{cluster.name} ({cluster.workload})", title_justify="left")
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
                _money(line.usd_per_hour),
            )
        console.print(table)
        if cluster.storage:
            s = cluster.storage
            console.print(
                f"  FSx for Lustre: {s.storage_gib} GiB at {s.throughput_mbps:,.0f} MB/s"
                f"{' over EFA' if s.efa_enabled else ''}; a {s.checkpoint_gib:g} GiB checkpoint takes "
                f"~{s.checkpoint_write_seconds:,.0f} s to write at full throughput"
            )
        for pool in cluster.pools:
            console.print(f"  Karpenter pool {pool}")
        for note in cluster.notes:
            console.print(f"  note: {note}")
        for landing in cluster.placements:
            console.print(f"  lands: {landing}", soft_wrap=True)
        console.print(f"  estimated {_money(cluster.usd_per_hour)}/h including the EKS control plane\n")
    console.print(
        f"Total ~{_money(plan.usd_per_hour)}/h On-Demand ({plan.price_region} list prices of {plan.prices_as_of}; "
        "FSx, EBS, load balancers, NAT and data transfer not included)."
    )


def _cluster_models(cdk_json: Path, config: AppConfig) -> dict[str, ClusterModel]:
    """Build the default app of the folder holding ``cdk.json`` (as ``cdk synth`` would, without
    writing templates) and return its clusters' models; the build proves every workload placeable."""
    from aws_cdk import App

    from .inference import InferenceCluster
    from .training import TrainingCluster

    sys.path.insert(0, str(cdk_json.resolve().parent))
    from stacks import build_default_app  # the app folder's stacks, next to its cdk.json

    app = App(analytics_reporting=False)
    build_default_app(app, config)
    return {c.model.name: c.model for c in app.node.find_all() if isinstance(c, TrainingCluster | InferenceCluster)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="eks-ml", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    plan = commands.add_parser("plan", help="what the configuration builds: nodes, fabric, storage, cost")
    plan.add_argument("--json", action="store_true", help="machine-readable output")
    plan.add_argument("-c", "--context", action="append", default=[], metavar="KEY=VALUE", help="as cdk -c")
    plan.add_argument("--cdk-json", type=Path, default=Path("cdk.json"), help="default: ./cdk.json")
    plan.add_argument(
        "--checkpoint-gib", type=float, default=DEFAULT_CHECKPOINT_GIB, help="checkpoint size for the write time"
    )
    args = parser.parse_args(argv)
    try:
        config = load_app_config(_context(args.cdk_json, args.context))
        result = plan_app(config, checkpoint_gib=args.checkpoint_gib, models=_cluster_models(args.cdk_json, config))
    except ValidationError as error:
        print(f"eks-ml configuration error: {error}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        render(result, Console())
    return 0


if __name__ == "__main__":
    sys.exit(main())
