"""The Capacity Block watch of a training cluster: which node groups need one, and with what schedule."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import cdk8s

from ..cluster.system_nodes import SystemPlacement
from ..k8s.capacity_block_watch import BlockWatch, CapacityBlockWatchChart, CapacityBlockWatchValues
from .capacity_block import format_utc
from .jobs import CHECKPOINT_ROOT
from .node_group import TrainingNodes


def queues_by_flavor(queue_charts: Sequence[cdk8s.Chart]) -> dict[str, list[str]]:
    """Flavor -> every ClusterQueue of the charts that lists it, in chart order (production first)."""
    listing: dict[str, list[str]] = {}
    for chart in queue_charts:
        for obj in chart.to_json():
            if obj.get("kind") != "ClusterQueue":
                continue
            for group in obj["spec"].get("resourceGroups") or ():
                for flavor in group.get("flavors") or ():
                    queues = listing.setdefault(flavor["name"], [])
                    if obj["metadata"]["name"] not in queues:
                        queues.append(obj["metadata"]["name"])
    return listing


def block_watches(
    groups: Sequence[TrainingNodes], cluster_queues: Mapping[str, Sequence[str]] | None = None
) -> list[BlockWatch]:
    """One watch per group on a Capacity Block whose window is known; the flavor is the group's name
    (eks_ml.training.queues.flavor_quota), held in every ClusterQueue ``cluster_queues`` lists for it."""
    cluster_queues = cluster_queues or {}
    watches = []
    for group in groups:
        window = group.capacity.block_window
        if window is None or group.capacity.reservation_id is None:
            continue
        watches.append(
            BlockWatch(
                flavor=group.name,
                cluster_queues=tuple(cluster_queues.get(group.name, ())),
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
    queue_charts: Sequence[cdk8s.Chart],
    claim_name: str | None,
    placement: SystemPlacement,
) -> CapacityBlockWatchChart | None:
    """The watch chart, or None when no group is on a Capacity Block with a known window. ``queue_charts``: the
    charts of the production and the team ClusterQueues; a block is held in each queue that lists its flavor."""
    watches = block_watches(groups, queues_by_flavor(queue_charts))
    if not watches:
        return None
    unlisted = [watch.flavor for watch in watches if not watch.cluster_queues]
    if unlisted:  # every group has a flavor in the production queue (eks_ml.training.queues.flavor_quota)
        raise ValueError(f"no ClusterQueue lists the flavors {unlisted}")
    return CapacityBlockWatchChart(
        cdk8s.App(),
        "CapacityBlockWatch",
        CapacityBlockWatchValues(
            namespace=namespace,
            blocks=watches,
            claim_name=claim_name,
            # The runtimes' EKS_ML_CHECKPOINT_DIR (eks_ml.training.jobs.runtimes): where the jobs look.
            signal_root=CHECKPOINT_ROOT if claim_name else None,
            node_selector=placement.node_selector,
            tolerations=placement.tolerations,
        ),
    )
