"""The cluster model: a cluster's node sources and workloads, and the proof that every workload lands.

Each cluster construct owns one :class:`ClusterModel`. Constructs that add nodes add a node source;
constructs that add pods add their workloads. :meth:`ClusterModel.prove` then checks, per workload,
that some node source takes it: node selector and required affinity match, every taint is tolerated,
its requests fit beside the DaemonSets that run there, and every extended resource it asks for is
advertised on that node by a device plugin this cluster runs (or by EKS Auto Mode). A workload that
lands nowhere is a ValidationError naming it and why each node source refused it.

Nodes have two states. A node joins with its source's labels and taints; DaemonSets that change their
node when they succeed (the burn-in: it lifts the startup taint and labels the node passed) are placed on
that joining node. Every other workload is placed on the node as those DaemonSets leave it, so a node
whose startup taint nothing lifts takes none of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..errors import Problem, ValidationError
from .fargate import EPHEMERAL_STORAGE, fargate_refusal, selects
from .nodes import NodeShape, NodeSource, Taint
from .pods import Workload
from .quantity import CPU, MEMORY, PODS, describe

_BASIC = (CPU, MEMORY, PODS)
# Node resources every node has without a device plugin (not modelled per node: the root volume).
_NODE_RESOURCES = (*_BASIC, EPHEMERAL_STORAGE)


@dataclass(frozen=True)
class Placement:
    """Where one workload can land: (node source name, instance types) pairs."""

    workload: Workload
    landings: tuple[tuple[str, tuple[str, ...]], ...]


class ClusterModel:
    """Node sources and workloads of one cluster. ``name`` is the cluster's name, for messages."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.sources: list[NodeSource] = []
        self.workloads: list[Workload] = []
        self._ready: dict[tuple[int, int], _Node] = {}  # (source, shape) ids -> the node after burn-in

    def add_source(self, source: NodeSource) -> None:
        self.sources.append(source)

    def add_workloads(self, workloads: Iterable[Workload]) -> None:
        self.workloads.extend(workloads)
        self._ready.clear()

    # -- the proof -------------------------------------------------------------------------------

    def placements(self) -> list[Placement]:
        """Where every workload can land (an empty ``landings`` means nowhere)."""
        return [self._place(w) for w in self.workloads]

    def prove(self) -> list[Placement]:
        """Every workload's placement; a ValidationError listing each workload that lands nowhere."""
        placements = self.placements()
        problems = [
            Problem(
                field=f"cluster {self.name}: {p.workload.name}",
                value=p.workload.origin,
                allowed="a node source of this cluster that takes the pod: "
                + "; ".join(self.refusals(p.workload) or ["(the cluster has no node sources)"]),
                fix="give the pod a selector and tolerations of an existing node source, add a node source "
                "that offers what it requests, or install the device plugin that advertises its resources",
            )
            for p in placements
            if not p.landings
        ]
        if problems:
            raise ValidationError(problems)
        return placements

    def refusals(self, workload: Workload) -> list[str]:
        """Why each node source refused ``workload`` (empty when one takes it)."""
        if workload.blocked:
            return [f"never scheduled: {workload.blocked}"]
        reasons = []
        for source in self._candidates(workload):
            shape_reasons = [self._refusal(workload, source, shape) for shape in source.shapes]
            if any(reason is None for reason in shape_reasons):
                return []
            unique = sorted({r for r in shape_reasons if r is not None})
            reasons.append(f"{source.name} refused it: {', '.join(unique[:3])}")
        return reasons

    def _place(self, workload: Workload) -> Placement:
        if workload.blocked:
            return Placement(workload, ())
        landings = []
        for source in self._candidates(workload):
            types = tuple(s.instance_type for s in source.shapes if self._refusal(workload, source, s) is None)
            if types:
                landings.append((source.name, types))
        return Placement(workload, tuple(landings))

    def _candidates(self, workload: Workload) -> list[NodeSource]:
        """The node sources that may get ``workload``: a pod a Fargate profile selects goes to Fargate only."""
        fargate = [s for s in self.sources if s.is_fargate and selects(s, workload)]
        return fargate or self.sources

    def _node(self, workload: Workload, source: NodeSource, shape: NodeShape) -> _Node:
        """The node ``workload`` meets: as it joins for a DaemonSet that changes it, else as those leave it."""
        joining = _Node(shape.labels, source.taints)
        if workload.changes_node:
            return joining
        key = (id(source), id(shape))
        if key not in self._ready:
            self._ready[key] = self._changed(joining)
        return self._ready[key]

    def _changed(self, joining: _Node) -> _Node:
        changers = [w for w in self.workloads if w.changes_node and _selection_refusal(w, joining) is None]
        removed = {key for w in changers for key in w.removes_taints}
        labels = dict(joining.labels)
        for changer in changers:
            labels.update({key: frozenset({value}) for key, value in changer.adds_labels.items()})
        return _Node(labels, tuple(t for t in joining.taints if t.key not in removed))

    def _refusal(self, workload: Workload, source: NodeSource, shape: NodeShape) -> str | None:
        """Why ``workload`` cannot run on ``shape`` of ``source``; None when it can."""
        if source.is_fargate:
            return fargate_refusal(source, workload) or _selection_refusal(workload, _Node(shape.labels, ()))
        reason = _selection_refusal(workload, self._node(workload, source, shape))
        if reason:
            return reason
        advertised = source.builtin_resources | self._advertised(source, shape, exclude=workload)
        for resource, amount in workload.requests.items():
            if resource in _NODE_RESOURCES:
                continue
            if resource not in advertised:
                return f"no device plugin advertises {resource} on {shape.instance_type}"
            if shape.devices.get(resource, 0) < amount:
                return f"{shape.instance_type} has {shape.devices.get(resource, 0)} {resource}, the pod asks {amount}"
        free = dict(shape.allocatable)
        for daemon in self._daemons_on(source, shape, exclude=workload):
            for resource in _BASIC:
                free[resource] = free.get(resource, 0) - daemon.requests.get(resource, 0) - (resource == PODS)
        for resource in (CPU, MEMORY):
            if workload.requests.get(resource, 0) > free.get(resource, 0):
                left, asked = max(free.get(resource, 0), 0), workload.requests[resource]
                return (
                    f"{shape.instance_type} has {describe(resource, left)} {resource} left after the kubelet "
                    f"and DaemonSets, the pod asks {describe(resource, asked)}"
                )
        if free.get(PODS, 1) < 1:
            return f"{shape.instance_type} has no pod slot left after DaemonSets"
        return None

    def _daemons_on(self, source: NodeSource, shape: NodeShape, *, exclude: Workload) -> list[Workload]:
        # Selection only: a DaemonSet pod is placed on every matching node whatever its requests.
        if source.is_fargate:
            return []  # Fargate runs no DaemonSets
        return [
            w
            for w in self.workloads
            if w.is_daemon_set and w is not exclude and _selection_refusal(w, self._node(w, source, shape)) is None
        ]

    def _advertised(self, source: NodeSource, shape: NodeShape, *, exclude: Workload) -> frozenset[str]:
        provided: set[str] = set()
        for daemon in self._daemons_on(source, shape, exclude=exclude):
            provided |= daemon.provides
        return frozenset(provided)


@dataclass(frozen=True)
class _Node:
    """A node's labels (each a set of possible values) and taints at one point of its life."""

    labels: Mapping[str, frozenset[str]]
    taints: tuple[Taint, ...]


def _selection_refusal(workload: Workload, node: _Node) -> str | None:
    """Selector, required affinity and taints: whether the scheduler would consider the node at all."""
    for key, value in workload.node_selector.items():
        if value not in node.labels.get(key, frozenset()):
            have = sorted(node.labels.get(key, ()))
            return f"nodeSelector {key}={value} (nodes have {have or 'no such label'})"
    if workload.required_terms and not any(
        all(requirement.allows(node.labels) for requirement in term) for term in workload.required_terms
    ):
        failed = next(str(r) for r in workload.required_terms[0] if not r.allows(node.labels))
        return f"required node affinity ({failed})"
    for taint in node.taints:
        if not any(t.tolerates(taint.key, taint.value, taint.effect) for t in workload.tolerations):
            return f"taint {taint} not tolerated"
    return None
