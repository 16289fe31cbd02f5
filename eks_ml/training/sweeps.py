"""Hyperparameter sweeps: trial TrainJobs generated from a search space, queued in a team's Kueue queue.

Each trial is a single-node job on the sweep runtime (the fine-tuning runtime without the file system, whose
claim lives in the production namespace only) running the example script with one point of the
space as its arguments (``--lr 0.0003 --batch 32``) and environment (``EKS_ML_HP_LR``). Trials carry the sweep
priority class, below production training, so a production job takes their nodes back. How many run at once
is set by Kueue alone: the team's quota plus what it may borrow, in whole nodes (one trial per node); the rest
wait in the queue and start as trials finish.
"""

from __future__ import annotations

import enum
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import product

from ..errors import Problems
from ..guards import expect_all, expect_enum, expect_int, expect_str
from ..k8s.kueue_teams import PRIORITY_CLASS_LABEL, SWEEP_PRIORITY_CLASS
from ..k8s.training_jobs import JobValues
from ..kube_names import check_dns_label
from .jobs import single_node_example_job, sweep_runtime_name
from .node_group import TrainingNodeGroup

# The example script's flags a sweep may vary, and the type of each (eks_ml/training/workloads/train_example.py).
EXAMPLE_HYPERPARAMETERS: Mapping[str, type] = {"lr": float, "batch": int, "width": int, "steps": int}
SWEEP_LABEL = "eks-ml.io/sweep"
TRIAL_LABEL = "eks-ml.io/trial"
HP_ENV_PREFIX = "EKS_ML_HP_"
MAX_TRIALS = 1000  # a sweep renders one TrainJob per trial; beyond this, run several sweeps
SWEEP_NAME_MAX = 40  # trial names are <sweep>-<index> TrainJob names (their JobSet and pods add suffixes)

Value = int | float | str


class SearchMethod(enum.Enum):
    GRID = "grid"  # every combination of the values
    RANDOM = "random"  # ``trials`` distinct combinations drawn with ``seed``


@dataclass(frozen=True, kw_only=True)
class SearchSpace:
    """The values to try for each hyperparameter, and how to pick the trials from them.

    values: hyperparameter name -> the values to try; names are the example script's flags (lr, batch, width,
        steps).
    method: GRID (every combination, in order) or RANDOM (``trials`` distinct combinations).
    trials: RANDOM only: how many combinations to draw.
    seed: RANDOM only: the same seed draws the same trials, so a re-rendered sweep is unchanged.
    """

    values: Mapping[str, Sequence[Value]]
    method: SearchMethod = SearchMethod.GRID
    trials: int | None = None
    seed: int = 0

    @classmethod
    def grid(cls, values: Mapping[str, Sequence[Value]]) -> SearchSpace:
        return cls(values=values)

    @classmethod
    def random(cls, values: Mapping[str, Sequence[Value]], *, trials: int, seed: int = 0) -> SearchSpace:
        return cls(values=values, method=SearchMethod.RANDOM, trials=trials, seed=seed)

    @property
    def combinations(self) -> int:
        return math.prod(len(values) for values in self.values.values())

    def check(self, field: str, problems: Problems) -> bool:
        if not expect_all(
            expect_enum(self.method, SearchMethod, f"{field}.method", problems),
            expect_int(self.seed, f"{field}.seed", problems),
            self.trials is None or expect_int(self.trials, f"{field}.trials", problems, minimum=1),
        ):
            return False
        if not isinstance(self.values, Mapping) or not self.values:
            problems.add(
                f"{field}.values",
                self.values,
                f"a non-empty mapping of hyperparameter to values; names: {', '.join(EXAMPLE_HYPERPARAMETERS)}",
                'pass values={"lr": [1e-4, 3e-4]}',
            )
            return False
        fine = True
        for name, values in self.values.items():
            fine = _check_values(name, values, f"{field}.values[{name}]", problems) and fine
        if not fine:
            return False
        if self.method is SearchMethod.GRID and self.trials is not None:
            problems.add(
                f"{field}.trials",
                self.trials,
                "no trial count with GRID (it runs every combination)",
                "drop trials, or use SearchSpace.random(values, trials=..., seed=...)",
            )
            return False
        count = self.combinations if self.method is SearchMethod.GRID else self.trials
        if count is None:
            problems.add(f"{field}.trials", None, "a trial count with RANDOM", "pass trials=<how many>")
            return False
        if self.method is SearchMethod.RANDOM and count > self.combinations:
            problems.add(
                f"{field}.trials",
                count,
                f"at most {self.combinations} (the distinct combinations of the values)",
                "draw fewer trials or give more values",
            )
            return False
        if count > MAX_TRIALS:
            problems.add(
                f"{field}", f"{count} trials", f"at most {MAX_TRIALS} trials per sweep", "split it into sweeps"
            )
            return False
        return True

    def points(self) -> list[dict[str, Value]]:
        """The trials' hyperparameters, in a stable order (call only on a checked space)."""
        names = list(self.values)
        if self.method is SearchMethod.GRID:
            return [dict(zip(names, combo, strict=True)) for combo in product(*(self.values[n] for n in names))]
        assert self.trials is not None
        # Draw combination indices, not combinations: the grid is never built, however large it is.
        indices = random.Random(self.seed).sample(range(self.combinations), self.trials)
        return [self._point(names, index) for index in indices]

    def _point(self, names: list[str], index: int) -> dict[str, Value]:
        point: dict[str, Value] = {}
        for name in reversed(names):
            values = self.values[name]
            index, position = divmod(index, len(values))
            point[name] = values[position]
        return {name: point[name] for name in names}


def _check_values(name: str, values: object, field: str, problems: Problems) -> bool:
    kind = EXAMPLE_HYPERPARAMETERS.get(name)
    if kind is None:
        problems.add(
            field.rsplit(".", 1)[0],
            name,
            f"a flag of the example script: {', '.join(EXAMPLE_HYPERPARAMETERS)}",
            "rename the hyperparameter or add the flag to train_example.py",
        )
        return False
    if isinstance(values, str) or not isinstance(values, Sequence) or not values:
        problems.add(field, values, f"a non-empty list of {kind.__name__} values", f'write "{name}": [v1, v2]')
        return False
    for value in values:
        number = isinstance(value, int | float) and not isinstance(value, bool)
        whole = isinstance(value, int) and not isinstance(value, bool)
        if not (whole if kind is int else number) or value <= 0 or value != value:  # NaN != NaN
            problems.add(
                field,
                value,
                f"positive {'whole numbers' if kind is int else 'numbers'} (the script's --{name})",
                "fix the value",
            )
            return False
    if len(set(values)) != len(values):
        problems.add(field, list(values), "distinct values", "drop the repeated value")
        return False
    return True


@dataclass(frozen=True, kw_only=True)
class SweepProps:
    """A hyperparameter sweep.

    name: prefixes the trials' TrainJob names (``<name>-000``...) and labels them (``eks-ml.io/sweep``).
    team: the TeamQueue whose quota and queue the trials use.
    node_group: the node group a trial runs on (one whole node's accelerators per trial).
    space: the search space (``SearchSpace.grid(...)`` or ``SearchSpace.random(...)``).
    """

    name: str
    team: str
    node_group: str
    space: SearchSpace

    def check(self, field: str, teams: Sequence[str], groups: Sequence[str], problems: Problems) -> bool:
        if not expect_all(
            expect_str(self.name, f"{field}.name", problems),
            expect_str(self.team, f"{field}.team", problems),
            expect_str(self.node_group, f"{field}.node_group", problems),
        ):
            return False
        fine = check_dns_label(self.name, f"{field}.name", problems, max_length=SWEEP_NAME_MAX)
        if self.team not in teams:
            problems.add(
                f"{field}.team",
                self.team,
                f"a team of this cluster: {', '.join(teams) or 'none (set teams=[TeamQueue(...)])'}",
                "name one of TrainingClusterProps.teams",
            )
            fine = False
        if self.node_group not in groups:
            problems.add(
                f"{field}.node_group",
                self.node_group,
                f"a node group of this cluster: {', '.join(sorted(groups))}",
                "name the group by its TrainingNodeGroupProps name",
            )
            fine = False
        if not isinstance(self.space, SearchSpace):
            problems.add(f"{field}.space", self.space, "a SearchSpace", "pass SearchSpace.grid({...})")
            return False
        return self.space.check(f"{field}.space", problems) and fine


def trial_name(sweep: str, index: int) -> str:
    return f"{sweep}-{index:03d}"


def _argument(value: Value) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def trial_jobs(sweep: SweepProps, group: TrainingNodeGroup, *, namespace: str, queue: str) -> list[JobValues]:
    """One single-node TrainJob per point of the space, in the team's queue at sweep priority."""
    jobs = []
    for index, point in enumerate(sweep.space.points()):
        jobs.append(
            single_node_example_job(
                group,
                name=trial_name(sweep.name, index),
                namespace=namespace,
                queue=queue,
                runtime=sweep_runtime_name(group.name),
                arguments=[part for hp, value in point.items() for part in (f"--{hp}", _argument(value))],
                env={f"{HP_ENV_PREFIX}{hp.upper()}": _argument(value) for hp, value in point.items()},
                labels={PRIORITY_CLASS_LABEL: SWEEP_PRIORITY_CLASS, SWEEP_LABEL: sweep.name, TRIAL_LABEL: str(index)},
            )
        )
    return jobs


@dataclass(frozen=True)
class SweepSummary:
    """For the plan: how many trials and, from the team's quota and borrowing, how many can run at once."""

    name: str
    team: str
    node_group: str
    trials: int
    parallel: int  # nodes of the group the team holds or may borrow: one trial per node
    borrowing: bool  # whether ``parallel`` counts borrowed nodes (only there while others leave them idle)

    def line(self) -> str:
        at_once = f"up to {min(self.parallel, self.trials)} at once"
        return (
            f"sweep {self.name} (team {self.team}, group {self.node_group}): {self.trials} trials, {at_once}"
            f"{' when the cohort has idle nodes' if self.borrowing else ''}"
        )
