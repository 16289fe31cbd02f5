"""The Capacity Block watch of a training cluster: which node groups need one, and with what schedule."""

from __future__ import annotations

from collections.abc import Sequence

import cdk8s

from ..cluster.system_nodes import SystemPlacement
from ..k8s.capacity_block_watch import BlockWatch, CapacityBlockWatchChart, CapacityBlockWatchValues
from .capacity_block import format_utc
from .jobs import CHECKPOINT_ROOT
from .node_group import TrainingNodes


def block_watches(groups: Sequence[TrainingNodes]) -> list[BlockWatch]:
    """One watch per group on a Capacity Block whose window is known; the flavor is the group's name
    (eks_ml.training.queues.flavor_quota)."""
    watches = []
    for group in groups:
        window = group.capacity.block_window
        if window is None or group.capacity.reservation_id is None:
            continue
        watches.append(
            BlockWatch(
                flavor=group.name,
                reservation_id=group.capacity.reservation_id,
                end=format_utc(window.end_time),
                termination_starts=format_utc(window.termination_starts),
                stop_admitting_at=format_utc(window.stop_admitting_at),
                checkpoint_at=format_utc(window.checkpoint_at),
            )
        )
    return watches


def block_watch_chart(
    groups: Sequence[TrainingNodes],
    *,
    namespace: str,
    cluster_queue: str,
    claim_name: str | None,
    placement: SystemPlacement,
) -> CapacityBlockWatchChart | None:
    """The watch chart, or None when no group is on a Capacity Block with a known window."""
    watches = block_watches(groups)
    if not watches:
        return None
    return CapacityBlockWatchChart(
        cdk8s.App(),
        "CapacityBlockWatch",
        CapacityBlockWatchValues(
            namespace=namespace,
            cluster_queue=cluster_queue,
            blocks=watches,
            claim_name=claim_name,
            # The runtimes' EKS_ML_CHECKPOINT_DIR (eks_ml.training.jobs.runtimes): where the jobs look.
            signal_root=CHECKPOINT_ROOT if claim_name else None,
            node_selector=placement.node_selector,
            tolerations=placement.tolerations,
        ),
    )
