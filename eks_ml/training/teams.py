"""Teams that share the training node groups through Kueue: quotas in whole nodes, borrowing and lending.

Each team gets its own ClusterQueue in one cohort with the production queue. The team's nominal quota is
carved out of the groups' capacity (the production queue keeps the rest), so the cohort never promises more
than the nodes can hold; idle quota is lent across the cohort within each queue's limits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..errors import Problems
from ..guards import expect_all, expect_int, expect_str
from ..k8s.kueue_teams import FlavorLimits, TeamQueueValues
from ..kube_names import check_dns_label, check_namespace
from .node_group import TrainingNodeGroup, TrainingNodeGroupProps
from .reserved_namespaces import reserved_namespaces

TEAM_NAME_MAX = 40  # a ClusterQueue and LocalQueue name, and the default namespace team-<name>


@dataclass(frozen=True, kw_only=True)
class TeamQueue:
    """One team's share of the training nodes.

    name: the team's ClusterQueue and LocalQueue (jobs name it in ``kueue.x-k8s.io/queue-name``).
    namespace: where the team's jobs run. Default: ``team-<name>``. Not ``default``, ``kube-*`` or one eks-ml
        installs into (eks_ml.training.reserved_namespaces).
    nodes: the team's nominal quota, in whole nodes of each named node group (group name -> nodes); groups
        not named give it none. Together with the other teams' it must leave the group's maximum size or less.
    borrowing_limit: nodes per group the team may borrow beyond its own while others leave them idle.
        Default None: any idle nodes of the cohort. 0: never borrow.
    lending_limit: nodes per group of its own the team lends while it leaves them idle. Default None: all.
        0: keep them for the team.
    """

    name: str
    namespace: str | None = None
    nodes: Mapping[str, int] = field(default_factory=dict)
    borrowing_limit: int | None = None
    lending_limit: int | None = None

    @property
    def resolved_namespace(self) -> str:
        return self.namespace if self.namespace is not None else f"team-{self.name}"

    def check(self, field: str, groups: Mapping[str, TrainingNodeGroupProps], problems: Problems) -> bool:
        if not expect_all(
            expect_str(self.name, f"{field}.name", problems),
            expect_str(self.namespace, f"{field}.namespace", problems, optional=True),
            self.borrowing_limit is None
            or expect_int(self.borrowing_limit, f"{field}.borrowing_limit", problems, minimum=0),
            self.lending_limit is None or expect_int(self.lending_limit, f"{field}.lending_limit", problems, minimum=0),
            isinstance(self.nodes, Mapping) or _not_a_map(self.nodes, f"{field}.nodes", problems),
        ):
            return False
        check_dns_label(self.name, f"{field}.name", problems, max_length=TEAM_NAME_MAX)
        fine = check_namespace(self.resolved_namespace, f"{field}.namespace", problems) and _not_reserved(
            self.resolved_namespace, f"{field}.namespace", problems
        )
        for group, count in self.nodes.items():
            if group not in groups:
                problems.add(
                    f"{field}.nodes",
                    group,
                    f"a node group of this cluster: {', '.join(sorted(groups))}",
                    "name the group by its TrainingNodeGroupProps name",
                )
                fine = False
            fine = expect_int(count, f"{field}.nodes[{group}]", problems, minimum=0) and fine
        return fine


def _not_reserved(namespace: str, field: str, problems: Problems) -> bool:
    reserved = reserved_namespaces()
    if namespace not in reserved:
        return True
    problems.add(
        field,
        namespace,
        f"a namespace of the team's own, none of Kubernetes' or eks-ml's ({', '.join(reserved)}, kube-*)",
        "leave namespace unset (team-<name>) or name another",
    )
    return False


def _not_a_map(value: object, field: str, problems: Problems) -> bool:
    problems.add(field, value, "a mapping of node group name to nodes", 'pass nodes={"p5": 1}')
    return False


def check_teams(
    teams: Sequence[TeamQueue],
    groups: Mapping[str, TrainingNodeGroupProps],
    *,
    production_queue: str,
    production_namespace: str,
    problems: Problems,
) -> bool:
    """Every team valid, names and namespaces unique and apart from production, quotas within the groups."""
    fine = True
    for index, team in enumerate(teams):
        fine = team.check(f"teams[{index}]", groups, problems) and fine
    if not fine:
        return False
    names = [team.name for team in teams]
    for name in sorted({n for n in names if names.count(n) > 1 or n == production_queue}):
        problems.add(
            "teams.name",
            name,
            f"unique team names, none of them {production_queue!r} (the production queue)",
            "rename the team",
        )
        fine = False
    namespaces = [team.resolved_namespace for team in teams]
    for namespace in sorted({n for n in namespaces if namespaces.count(n) > 1 or n == production_namespace}):
        problems.add(
            "teams.namespace",
            namespace,
            f"a namespace of its own for each team, not {production_namespace!r} (production training's)",
            "give the team another namespace",
        )
        fine = False
    for group_name, group in groups.items():
        size = group.resolved_max_size
        if isinstance(size, bool) or not isinstance(size, int):
            continue  # a group with malformed sizes is reported by its own check
        taken = sum(team.nodes.get(group_name, 0) for team in teams)
        if taken > size:
            problems.add(
                "teams.nodes",
                {team.name: team.nodes.get(group_name, 0) for team in teams if team.nodes.get(group_name)},
                f"at most {group.resolved_max_size} nodes of group {group_name} (its max_size) across all teams",
                "lower the teams' nodes or raise the group's max_size",
            )
            fine = False
    return fine


def node_quota(group: TrainingNodeGroup, nodes: int) -> dict[str, int | str]:
    """``nodes`` whole nodes of the group in Kueue quota: vCPUs, MiB and every device-plugin resource."""
    spec = group.spec
    quota: dict[str, int | str] = {"cpu": spec.vcpus * nodes, "memory": f"{spec.memory_mib * nodes}Mi"}
    quota.update({resource: count * nodes for resource, count in spec.advertised_resources().items()})
    return quota


def production_nodes(group: TrainingNodeGroup, teams: Sequence[TeamQueue]) -> int:
    """What the production queue keeps of a group once the teams have their nominal quota."""
    return group.max_size - sum(team.nodes.get(group.name, 0) for team in teams)


def team_values(team: TeamQueue, groups: Sequence[TrainingNodeGroup]) -> TeamQueueValues:
    flavors = []
    for group in groups:
        own = team.nodes.get(group.name, 0)
        flavors.append(
            FlavorLimits(
                flavor=group.name,
                nominal=node_quota(group, own),
                borrowing_limit=None if team.borrowing_limit is None else node_quota(group, team.borrowing_limit),
                # Kueue lends at most the nominal quota; a larger limit would only read as a promise.
                lending_limit=None if team.lending_limit is None else node_quota(group, min(team.lending_limit, own)),
            )
        )
    return TeamQueueValues(name=team.name, namespace=team.resolved_namespace, flavors=flavors)


def team_notes(teams: Sequence[TeamQueue], groups: Sequence[TrainingNodeGroup]) -> list[str]:
    """The plan's lines for the production queue and each team: quota, borrowing and lending, in nodes."""
    if not teams:
        return []
    production = ", ".join(f"{production_nodes(g, teams)} of {g.max_size} {g.name} nodes" for g in groups)
    lines = [f"Kueue cohort: production queue keeps {production}; borrows idle team quota and preempts sweeps"]
    for team in teams:
        own = ", ".join(f"{team.nodes.get(g.name, 0)} {g.name}" for g in groups)
        borrow = "any idle nodes" if team.borrowing_limit is None else f"{team.borrowing_limit} nodes per group"
        lend = "all idle quota" if team.lending_limit is None else f"{team.lending_limit} nodes per group"
        lines.append(
            f"team {team.name} (namespace {team.resolved_namespace}): quota {own} nodes; borrows {borrow}; lends {lend}"
        )
    return lines
