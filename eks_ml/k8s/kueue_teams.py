"""Kueue objects for teams that share the training nodes: a Cohort, one ClusterQueue and LocalQueue per team,
and the WorkloadPriorityClasses that rank production training above sweep trials.

Fields are Kueue 0.19.2's v1beta2 API (the chart's CRDs, kueue-0.19.2.tgz templates/crd): ClusterQueue
``spec.cohortName``, per-resource ``borrowingLimit``/``lendingLimit`` (both only with a cohort), ``preemption``
(``reclaimWithinCohort``, ``borrowWithinCohort.policy``/``maxPriorityThreshold``, ``withinClusterQueue``);
``Cohort`` (spec may be empty); ``WorkloadPriorityClass`` with a top-level ``value`` and ``description``. Jobs
pick a class with the label ``kueue.x-k8s.io/priority-class`` (kubernetes-sigs/kueue
pkg/controller/constants/constants.go, WorkloadPriorityClassLabel).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import cdk8s
from constructs import Construct

from . import pod_security
from .kueue_queues import KUEUE_API, RESOURCE_ORDER

PRIORITY_CLASS_LABEL = "kueue.x-k8s.io/priority-class"
COHORT = "eks-ml-training"
PRODUCTION_PRIORITY_CLASS = "eks-ml-production"
SWEEP_PRIORITY_CLASS = "eks-ml-sweep"
# Higher wins. Sweep trials are cheap to restart (they checkpoint too) and yield to production training.
PRODUCTION_PRIORITY = 1000
SWEEP_PRIORITY = 100
# A production job that borrows may preempt sweep trials (and anything ranked at most as high) elsewhere in the
# cohort, and reclaims its lent quota from any borrower; a team queue reclaims only from lower priorities, so
# it never preempts production training.
PRODUCTION_PREEMPTION: Mapping[str, Any] = {
    "reclaimWithinCohort": "Any",
    "borrowWithinCohort": {"policy": "LowerPriority", "maxPriorityThreshold": SWEEP_PRIORITY},
    "withinClusterQueue": "LowerPriority",
}
TEAM_PREEMPTION: Mapping[str, Any] = {"reclaimWithinCohort": "LowerPriority", "withinClusterQueue": "LowerPriority"}


@dataclass(frozen=True, kw_only=True)
class FlavorLimits:
    """One flavor's quota in a team's ClusterQueue: nominal, and how much it may borrow and lend (None: no
    limit)."""

    flavor: str
    nominal: Mapping[str, int | str]
    borrowing_limit: Mapping[str, int | str] | None = None
    lending_limit: Mapping[str, int | str] | None = None


@dataclass(frozen=True, kw_only=True)
class TeamQueueValues:
    name: str
    namespace: str
    flavors: Sequence[FlavorLimits]


def _quotas(flavor: FlavorLimits, resources: Sequence[str]) -> list[dict[str, Any]]:
    entries = []
    for resource in resources:
        entry: dict[str, Any] = {"name": resource, "nominalQuota": flavor.nominal.get(resource, 0)}
        if flavor.borrowing_limit is not None:
            entry["borrowingLimit"] = flavor.borrowing_limit.get(resource, 0)
        if flavor.lending_limit is not None:
            entry["lendingLimit"] = flavor.lending_limit.get(resource, 0)
        entries.append(entry)
    return entries


class TeamQueuesChart(cdk8s.Chart):
    """The cohort, the priority classes, and each team's namespace, ClusterQueue and LocalQueue.

    ``resources`` are the covered resources of the production ClusterQueue: every ClusterQueue of a cohort
    lists the same flavors and resources, so quota can move between them.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, teams: Sequence[TeamQueueValues], resources: Sequence[str]
    ) -> None:
        super().__init__(scope, construct_id, disable_resource_name_hashes=True)
        unknown = set(resources) - set(RESOURCE_ORDER)
        if unknown:
            raise ValueError(f"no place in RESOURCE_ORDER for {sorted(unknown)}")
        self.cohort = self._object("Cohort", {"apiVersion": KUEUE_API, "kind": "Cohort"}, COHORT, spec={})
        for name, value, description in (
            (PRODUCTION_PRIORITY_CLASS, PRODUCTION_PRIORITY, "production training: preempts sweep trials"),
            (SWEEP_PRIORITY_CLASS, SWEEP_PRIORITY, "hyperparameter sweep trials: yield to production training"),
        ):
            # WorkloadPriorityClass has no spec: value and description sit at the top level.
            priority = cdk8s.ApiObject(
                self,
                f"Priority-{name}",
                api_version=KUEUE_API,
                kind="WorkloadPriorityClass",
                metadata=cdk8s.ApiObjectMetadata(name=name),
            )
            priority.add_json_patch(cdk8s.JsonPatch.add("/value", value))
            priority.add_json_patch(cdk8s.JsonPatch.add("/description", description))
        for team in teams:
            namespace = pod_security.namespace(
                self, f"Namespace-{team.name}", team.namespace, pod_security.PodSecurityLevel.BASELINE
            )
            cluster_queue = self._object(
                f"ClusterQueue-{team.name}",
                {"apiVersion": KUEUE_API, "kind": "ClusterQueue"},
                team.name,
                spec={
                    "cohortName": COHORT,
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": team.namespace}},
                    # Small trials should not wait behind a large one that does not fit yet.
                    "queueingStrategy": "BestEffortFIFO",
                    "preemption": dict(TEAM_PREEMPTION),
                    "resourceGroups": [
                        {
                            "coveredResources": list(resources),
                            "flavors": [
                                {"name": flavor.flavor, "resources": _quotas(flavor, resources)}
                                for flavor in team.flavors
                            ],
                        }
                    ],
                },
            )
            cluster_queue.add_dependency(self.cohort)
            local_queue = self._object(
                f"LocalQueue-{team.name}",
                {"apiVersion": KUEUE_API, "kind": "LocalQueue"},
                team.name,
                spec={"clusterQueue": team.name},
                namespace=team.namespace,
            )
            local_queue.add_dependency(namespace)
            local_queue.add_dependency(cluster_queue)

    def _object(
        self,
        construct_id: str,
        type_: Mapping[str, str],
        name: str,
        *,
        spec: dict[str, Any],
        namespace: str | None = None,
    ) -> cdk8s.ApiObject:
        obj = cdk8s.ApiObject(
            self,
            construct_id,
            api_version=type_["apiVersion"],
            kind=type_["kind"],
            metadata=cdk8s.ApiObjectMetadata(name=name, namespace=namespace),
        )
        obj.add_json_patch(cdk8s.JsonPatch.add("/spec", spec))
        return obj
