"""Workloads: the pods a cluster runs, reduced to what decides where they can land.

They come from two places: the Kubernetes objects eks-ml applies (cdk8s charts: Deployments,
DaemonSets, Jobs, Trainer runtimes and TrainJobs) and the pod placement eks-ml sets through each Helm
release's values (declared beside its pin in :mod:`eks_ml.helm`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from .quantity import parse

POD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet")
# On a DaemonSet that changes its node when it succeeds (the burn-in lifts the startup taint and labels the
# node passed): JSON {"removesTaints": [keys], "addsLabels": {key: value}}. The model places other pods on
# the node as it is after that change, and the DaemonSet itself on the node as it joins.
NODE_EFFECTS_ANNOTATION = "eks-ml.io/node-effects"


@dataclass(frozen=True)
class Toleration:
    key: str | None
    operator: str
    value: str | None
    effect: str | None

    @classmethod
    def of(cls, raw: Mapping[str, Any]) -> Toleration:
        return cls(raw.get("key"), raw.get("operator", "Equal"), raw.get("value"), raw.get("effect"))

    def tolerates(self, key: str, value: str | None, effect: str) -> bool:
        if self.effect and self.effect != effect:
            return False
        if self.key is None:  # an empty key with Exists tolerates everything
            return self.operator == "Exists"
        if self.key != key:
            return False
        return self.operator == "Exists" or (self.value or "") == (value or "")


@dataclass(frozen=True)
class Requirement:
    """One node selector requirement (matchExpressions item)."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    def allows(self, labels: Mapping[str, frozenset[str]]) -> bool:
        """Whether some node with these possible label values satisfies the requirement."""
        present = labels.get(self.key)
        if self.operator == "Exists":
            return present is not None
        if self.operator == "DoesNotExist":
            return present is None
        if present is None:
            return self.operator == "NotIn"
        if self.operator == "In":
            return bool(present & set(self.values))
        if self.operator == "NotIn":
            return bool(present - set(self.values))
        if self.operator in ("Gt", "Lt"):
            bound = int(self.values[0])
            numbers = [int(v) for v in present if v.lstrip("-").isdigit()]
            return any(n > bound if self.operator == "Gt" else n < bound for n in numbers)
        raise ValueError(f"unknown node selector operator {self.operator}")

    def __str__(self) -> str:
        return f"{self.key} {self.operator} {list(self.values)}" if self.values else f"{self.key} {self.operator}"


@dataclass(frozen=True)
class Workload:
    """Pods of one object: where they may go and what each needs.

    ``required_terms`` are ORed node selector terms of ANDed requirements (empty: anywhere).
    ``requests`` holds cpu (millicores), memory (MiB) and extended resources of one pod.
    ``provides`` are extended resources this DaemonSet advertises on the nodes it runs on.
    """

    name: str
    origin: str
    kind: str
    node_selector: Mapping[str, str] = field(default_factory=dict)
    required_terms: tuple[tuple[Requirement, ...], ...] = ()
    tolerations: tuple[Toleration, ...] = ()
    requests: Mapping[str, int] = field(default_factory=dict)
    provides: frozenset[str] = frozenset()
    blocked: str | None = None  # why no node can ever get it, before node sources are even tried
    # What this DaemonSet does to its node when it succeeds (NODE_EFFECTS_ANNOTATION).
    removes_taints: frozenset[str] = frozenset()
    adds_labels: Mapping[str, str] = field(default_factory=dict)
    # Where the pods are and what they carry: a Fargate profile selects pods by namespace and labels.
    namespace: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    # What the pods take from their node's host (privileged containers, hostPath volumes, host network or
    # ports): allowed on EC2 nodes, refused on Fargate.
    host_access: tuple[str, ...] = ()

    @property
    def is_daemon_set(self) -> bool:
        return self.kind == "DaemonSet"

    @property
    def changes_node(self) -> bool:
        return self.is_daemon_set and bool(self.removes_taints or self.adds_labels)


def pod_requests(pod_spec: Mapping[str, Any]) -> dict[str, int]:
    """Effective requests of one pod: the sum over containers (a limit stands in for a missing request,
    as the API server defaults it), or the largest init container's if that is more."""

    def of(container: Mapping[str, Any]) -> dict[str, int]:
        resources = container.get("resources") or {}
        merged = {**(resources.get("limits") or {}), **(resources.get("requests") or {})}
        return {name: parse(name, value) for name, value in merged.items()}

    total: dict[str, int] = {}
    for container in pod_spec.get("containers") or []:
        for name, amount in of(container).items():
            total[name] = total.get(name, 0) + amount
    for container in pod_spec.get("initContainers") or []:
        for name, amount in of(container).items():
            total[name] = max(total.get(name, 0), amount)
    return total


def required_terms(affinity: Mapping[str, Any] | None) -> tuple[tuple[Requirement, ...], ...]:
    node_affinity = (affinity or {}).get("nodeAffinity") or {}
    required = node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or {}
    return tuple(
        tuple(
            Requirement(e["key"], e["operator"], tuple(str(v) for v in e.get("values") or ()))
            for e in term.get("matchExpressions") or ()
        )
        for term in required.get("nodeSelectorTerms") or ()
    )


def workload(
    name: str,
    origin: str,
    kind: str,
    pod_spec: Mapping[str, Any],
    *,
    provides: Iterable[str] = (),
    extra_node_selector: Mapping[str, str] | None = None,
    extra_tolerations: Sequence[Mapping[str, Any]] = (),
    namespace: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> Workload:
    return Workload(
        name=name,
        origin=origin,
        kind=kind,
        node_selector={**(pod_spec.get("nodeSelector") or {}), **(extra_node_selector or {})},
        required_terms=required_terms(pod_spec.get("affinity")),
        tolerations=tuple(Toleration.of(t) for t in [*(pod_spec.get("tolerations") or ()), *extra_tolerations]),
        requests=pod_requests(pod_spec),
        provides=frozenset(provides),
        namespace=namespace,
        labels=dict(labels or {}),
        host_access=host_access(pod_spec),
    )


def host_access(pod_spec: Mapping[str, Any]) -> tuple[str, ...]:
    """What of its node's host a pod uses: host network, PID or IPC, host ports, hostPath volumes,
    privileged containers."""
    found = [f"{key}: true" for key in ("hostNetwork", "hostPID", "hostIPC") if pod_spec.get(key)]
    found += [f"hostPath volume {v['name']}" for v in pod_spec.get("volumes") or () if "hostPath" in v]
    for container in [*(pod_spec.get("initContainers") or ()), *(pod_spec.get("containers") or ())]:
        if (container.get("securityContext") or {}).get("privileged"):
            found.append(f"privileged container {container['name']}")
        found += [
            f"hostPort {port['hostPort']} on container {container['name']}"
            for port in container.get("ports") or ()
            if port.get("hostPort")
        ]
    return tuple(found)


def _name(obj: Mapping[str, Any]) -> str:
    metadata = obj.get("metadata") or {}
    namespace = metadata.get("namespace")
    return f"{obj['kind']} {namespace + '/' if namespace else ''}{metadata.get('name')}"


def workloads_from_objects(objects: Sequence[Mapping[str, Any]], origin: str) -> list[Workload]:
    """Every pod-running object among ``objects``: the built-in workload kinds, and TrainJobs resolved
    against the ClusterTrainingRuntimes and Kueue ResourceFlavors in ``objects``."""
    found = []
    for obj in objects:
        if obj.get("kind") in POD_KINDS:
            template = obj["spec"]["template"]
            pod = workload(
                _name(obj),
                origin,
                obj["kind"],
                template.get("spec") or {},
                namespace=(obj.get("metadata") or {}).get("namespace"),
                labels=(template.get("metadata") or {}).get("labels"),
            )
            found.append(_with_node_effects(pod, obj) if obj["kind"] == "DaemonSet" else pod)
        elif obj.get("kind") == "CronJob":  # its pods come from the Job template inside
            template = obj["spec"]["jobTemplate"]["spec"]["template"]
            found.append(workload(_name(obj), origin, "CronJob", template.get("spec") or {}))
        elif obj.get("kind") == "LeaderWorkerSet":  # a leader and its workers per group (workers: size - 1)
            found.extend(_leader_worker_set(obj, origin))
    found.extend(_train_jobs(objects, origin))
    return found


def _leader_worker_set(obj: Mapping[str, Any], origin: str) -> list[Workload]:
    """The leader pods and, in groups of more than one pod, the worker pods; without a leader template the
    leader uses the worker template (kubernetes-sigs/lws v0.10.0, LeaderWorkerTemplate)."""
    template = obj["spec"]["leaderWorkerTemplate"]
    workers = template["workerTemplate"].get("spec") or {}
    leader = (template.get("leaderTemplate") or {}).get("spec") or workers
    found = [workload(f"{_name(obj)} (leader pods)", origin, "LeaderWorkerSet", leader)]
    if int(template.get("size", 1)) > 1:
        found.append(workload(f"{_name(obj)} (worker pods)", origin, "LeaderWorkerSet", workers))
    return found


def _with_node_effects(pod: Workload, obj: Mapping[str, Any]) -> Workload:
    raw = ((obj.get("metadata") or {}).get("annotations") or {}).get(NODE_EFFECTS_ANNOTATION)
    if raw is None:
        return pod
    effects = json.loads(raw)
    return replace(
        pod,
        removes_taints=frozenset(effects.get("removesTaints") or ()),
        adds_labels=dict(effects.get("addsLabels") or {}),
    )


def _train_jobs(objects: Sequence[Mapping[str, Any]], origin: str) -> list[Workload]:
    runtimes = {o["metadata"]["name"]: o for o in objects if o.get("kind") == "ClusterTrainingRuntime"}
    found = []
    for job in (o for o in objects if o.get("kind") == "TrainJob"):
        runtime = runtimes.get(job["spec"]["runtimeRef"]["name"])
        if runtime is None:
            raise ValueError(f"{_name(job)} names runtime {job['spec']['runtimeRef']['name']}, which is not given")
        trainer = job["spec"].get("trainer") or {}
        for replicated in runtime["spec"]["template"]["spec"]["replicatedJobs"]:
            pod_spec = dict(replicated["template"]["spec"]["template"]["spec"])
            # Trainer puts resourcesPerNode on the node container of every node pod.
            if trainer.get("resourcesPerNode"):
                pod_spec["containers"] = [
                    {**c, "resources": trainer["resourcesPerNode"]} if c["name"] == "node" else c
                    for c in pod_spec["containers"]
                ]
            pod = workload(f"{_name(job)} ({replicated['name']} pods)", origin, "TrainJob", pod_spec)
            admitted = _admitted(pod, job, int(trainer.get("numNodes", 1)), objects)
            found.append(_with_runtime_patch(admitted, _patched_node_selector(job, replicated["name"])))
    return found


def _with_runtime_patch(pod: Workload, selector: Mapping[str, str]) -> Workload:
    """The admitted pod with the node selector of the TrainJob's runtimePatches, which Trainer 2.3 applies to the
    pods but Kueue 0.19.2 does not see when it picks the flavor (its TrainJob podsets come from Trainer v2.2.1
    types, eks_ml.k8s.kueue_topology): a patch that contradicts the flavor Kueue chose leaves the pod nowhere
    to go, so a node pin belongs in the runtime (eks_ml.k8s.training_jobs.RuntimeValues.node_selector)."""
    if not selector or pod.blocked:
        return pod
    clashes = {key: value for key, value in selector.items() if pod.node_selector.get(key, value) != value}
    if clashes:
        return replace(
            pod,
            blocked=f"its runtime patch selects {clashes}, which Kueue does not see when it picks a flavor: "
            f"{pod.name} gets {dict(pod.node_selector)}",
        )
    return replace(pod, node_selector={**pod.node_selector, **selector})


def _patched_node_selector(job: Mapping[str, Any], replicated_job: str) -> dict[str, str]:
    """The node selector a TrainJob's runtimePatches give one replicated job's pods (Trainer merges them)."""
    selector: dict[str, str] = {}
    for patch in job["spec"].get("runtimePatches") or ():
        spec = ((patch.get("trainingRuntimeSpec") or {}).get("template") or {}).get("spec") or {}
        for replicated in spec.get("replicatedJobs") or ():
            if replicated.get("name") == replicated_job:
                pod = (((replicated.get("template") or {}).get("spec") or {}).get("template") or {}).get("spec") or {}
                selector.update(pod.get("nodeSelector") or {})
    return selector


QUEUE_NAME_LABEL = "kueue.x-k8s.io/queue-name"


def _reachable_quota(
    cluster_queue: Mapping[str, Any], entry: Mapping[str, Any], objects: Sequence[Mapping[str, Any]]
) -> dict[str, int]:
    """The most a ClusterQueue can use of one flavor: its nominal quota, plus, in a cohort, what the other
    ClusterQueues of the cohort lend of that flavor (their lendingLimit, or all their nominal quota) up to its
    own borrowingLimit. That much is admitted only while the lenders leave it idle; the model asks whether a
    job can ever be admitted, as it asks whether it can ever be placed."""
    quota = {r["name"]: parse(r["name"], r["nominalQuota"]) for r in entry["resources"]}
    cohort = cluster_queue["spec"].get("cohortName")
    if not cohort:
        return quota
    lent: dict[str, int] = {}
    for other in objects:
        spec = other.get("spec") or {}
        if other.get("kind") != "ClusterQueue" or other is cluster_queue or spec.get("cohortName") != cohort:
            continue
        for group in spec.get("resourceGroups") or ():
            for flavor in group["flavors"]:
                if flavor["name"] != entry["name"]:
                    continue
                for r in flavor["resources"]:
                    lendable = r.get("lendingLimit", r["nominalQuota"])
                    lent[r["name"]] = lent.get(r["name"], 0) + parse(r["name"], lendable)
    limits = {r["name"]: parse(r["name"], r["borrowingLimit"]) for r in entry["resources"] if "borrowingLimit" in r}
    return {
        name: amount + min(lent.get(name, 0), limits.get(name, lent.get(name, 0))) for name, amount in quota.items()
    }


def _admitted(pod: Workload, job: Mapping[str, Any], pods: int, objects: Sequence[Mapping[str, Any]]) -> Workload:
    """The pod as Kueue admits it: into the first flavor of its ClusterQueue whose nominal quota covers
    the whole gang (``pods`` times the pod's requests), with the flavor's node labels and tolerations
    injected. A job with no queue is left as it is; one that no flavor can hold is blocked."""
    queue = ((job.get("metadata") or {}).get("labels") or {}).get(QUEUE_NAME_LABEL)
    if queue is None:
        return pod
    namespace = job["metadata"].get("namespace")
    by_kind = {(o["kind"], o["metadata"]["name"], o["metadata"].get("namespace")): o for o in objects}
    local = by_kind.get(("LocalQueue", queue, namespace))
    cluster_queue = local and by_kind.get(("ClusterQueue", local["spec"]["clusterQueue"], None))
    if cluster_queue is None:
        return replace(pod, blocked=f"its queue {namespace}/{queue} or that queue's ClusterQueue is not applied")
    needed = {resource: amount * pods for resource, amount in pod.requests.items()}
    for group in cluster_queue["spec"].get("resourceGroups") or ():
        if not set(needed) <= set(group["coveredResources"]):
            continue
        for entry in group["flavors"]:
            quota = _reachable_quota(cluster_queue, entry, objects)
            flavor = by_kind.get(("ResourceFlavor", entry["name"], None))
            spec = (flavor or {}).get("spec") or {}
            labels = spec.get("nodeLabels") or {}
            # Kueue skips a flavor whose node labels contradict the pod's node selector.
            if any(labels.get(key, value) != value for key, value in pod.node_selector.items()):
                continue
            if all(quota.get(resource, 0) >= amount for resource, amount in needed.items()):
                return replace(
                    pod,
                    name=f"{pod.name} in Kueue flavor {entry['name']}",
                    node_selector={**pod.node_selector, **(spec.get("nodeLabels") or {})},
                    tolerations=pod.tolerations + tuple(Toleration.of(t) for t in spec.get("tolerations") or ()),
                )
    return replace(
        pod,
        blocked=f"no flavor of ClusterQueue {cluster_queue['metadata']['name']} has quota for {pods} pods of "
        f"{dict(pod.requests)} (Kueue would never admit it)",
    )
