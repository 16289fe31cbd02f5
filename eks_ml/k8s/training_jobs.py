"""Kubeflow Trainer objects: the torch runtimes the training cluster serves, and TrainJobs that use them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import cdk8s
from cdk8s_plus_35 import k8s
from constructs import Construct

from .kueue_queues import QUEUE_NAME_LABEL
from .pod_security import HARDENED_CONTAINER

TRAINER_API = "trainer.kubeflow.org/v1alpha1"
TRAINER_GROUP = "trainer.kubeflow.org"
WORKLOADS_CONFIG_MAP = "eks-ml-workloads"
WORKLOADS_PATH = "/opt/eks-ml"
FSX_PATH = "/fsx"
# Trainer's torch plugin finds the node container by these names.
NODE_JOB = "node"
ANCESTOR_LABEL = "trainer.kubeflow.org/trainjob-ancestor-step"
# As strict as the training images allow. The PyTorch and Neuron deep learning containers run as root (so no
# runAsNonRoot) and write caches and compiler output under / (so no read-only root); torchrun, NCCL and EFA
# need no capability (accelerators and EFA interfaces come from device plugins) and no privilege escalation.
CONTAINER_SECURITY = HARDENED_CONTAINER
POD_SECURITY = {"seccompProfile": {"type": "RuntimeDefault"}}
# Fault tolerance. torchrun ranks cannot continue without a peer, so one failed pod (its node died, it was
# evicted, the script crashed) fails the node Job at once (backoffLimit 0, restartPolicy Never: no retry of one
# pod inside a broken gang). The JobSet failure policy then recreates every Job of the gang, at most
# max_restarts times, before the TrainJob fails for good; BlockingRecreate creates the new Jobs only after all
# old pods are gone, so two gangs never overlap on the nodes and the new pods are scheduled afresh (a dead
# node is NotReady and tainted, so they land on healthy ones). The script resumes from the newest complete
# checkpoint (workloads/checkpoint_contract.py). Fields and values: JobSet v0.12.0 (the jobset chart inside
# kubeflow-trainer 2.3.0), api/jobset/v1alpha2 FailurePolicy (maxRestarts int32; restartStrategy Recreate,
# BlockingRecreate or InPlaceRestart, the last behind a feature gate). Trainer v2.3.0 copies the runtime's
# whole JobSet spec into the JobSet it creates (pkg/runtime/core/trainingruntime.go, apply.FromTypedObjWithFields
# of the template spec; pkg/runtime/framework/plugins/jobset/jobset.go Build, WithSpec), so the policy is kept.
DEFAULT_MAX_RESTARTS = 3
RESTART_STRATEGY = "BlockingRecreate"
# A restart caused by the platform, not by the job, is free: a pod that was disrupted (its node was drained,
# evicted by the taint manager when the node went NotReady, or garbage-collected with a lost node) carries the
# DisruptionTarget condition; the node Job's podFailurePolicy fails the Job with reason PodFailurePolicy for it,
# and the JobSet rule restarts the gang without spending max_restarts (JobSet v0.12.0 FailurePolicyRule action
# RestartJobSetAndIgnoreMaxRestarts; Kubernetes Job podFailurePolicy, which needs restartPolicy Never).
# Every other failure (the script crashed, OOM, a bad image) spends one of max_restarts.
DISRUPTION_RULE = "RestartOnDisruptionWithoutCounting"
JOB_FAILED_BY_POD_FAILURE_POLICY = "PodFailurePolicy"
POD_FAILURE_POLICY = {"rules": [{"action": "FailJob", "onPodConditions": [{"type": "DisruptionTarget"}]}]}


# The TrainJob's name (JobSet names its pods' label after it), for the checkpoint contract's per-job directory
# when the job sets no EKS_ML_JOB_NAME. A different variable from the one jobs set: Trainer merges the job's
# env into the runtime's by name, and one entry with both a value and a valueFrom would be invalid.
JOBSET_NAME_FROM_LABEL = {
    "name": "EKS_ML_JOBSET_NAME",
    "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['jobset.sigs.k8s.io/jobset-name']"}},
}


def _env(values: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"name": name, "value": value} for name, value in sorted(values.items())]


@dataclass(frozen=True, kw_only=True)
class RuntimeValues:
    """A ClusterTrainingRuntime: one node per pod, torchrun inside, shared memory, scripts and FSx mounted."""

    name: str
    image: str
    env: Mapping[str, str] = field(default_factory=dict)
    claim_name: str | None = None
    shm_size: str = "64Gi"
    max_restarts: int = DEFAULT_MAX_RESTARTS
    # On the node pod template, where Kueue reads its podset annotations (eks_ml.k8s.kueue_topology).
    pod_annotations: Mapping[str, str] = field(default_factory=dict)
    # On the node pod template too: Kueue admits a job only into flavors whose node labels agree with it. It
    # must sit in the runtime, not in a TrainJob runtime patch: Kueue 0.19.2 builds a TrainJob's podsets with
    # Trainer v2.2.1 types, which drop Trainer 2.3's runtimePatches, so a patched selector would reach the pods
    # but not the flavor choice, and a pod could get two contradicting selectors (see kueue_topology).
    node_selector: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class JobValues:
    name: str
    namespace: str
    queue: str
    runtime: str
    nodes: int
    procs_per_node: int
    resources: Mapping[str, int | str]
    command: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)  # beside the queue label (priority class, sweep)


class TrainingRuntimesChart(cdk8s.Chart):
    """The workload scripts (ConfigMap in the jobs' namespace) and one ClusterTrainingRuntime per value."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        namespace: str,
        scripts: Mapping[str, str],
        runtimes: Sequence[RuntimeValues],
        other_namespaces: Sequence[str] = (),
    ) -> None:
        super().__init__(scope, construct_id, disable_resource_name_hashes=True)
        k8s.KubeConfigMap(
            self,
            "Workloads",
            metadata=k8s.ObjectMeta(name=WORKLOADS_CONFIG_MAP, namespace=namespace),
            data=dict(scripts),
        )
        # A pod mounts ConfigMaps of its own namespace only: teams' jobs need the scripts in theirs.
        for other in other_namespaces:
            k8s.KubeConfigMap(
                self,
                f"Workloads-{other}",
                metadata=k8s.ObjectMeta(name=WORKLOADS_CONFIG_MAP, namespace=other),
                data=dict(scripts),
            )
        for runtime in runtimes:
            obj = cdk8s.ApiObject(
                self,
                f"Runtime-{runtime.name}",
                api_version=TRAINER_API,
                kind="ClusterTrainingRuntime",
                metadata=cdk8s.ApiObjectMetadata(name=runtime.name),
            )
            obj.add_json_patch(cdk8s.JsonPatch.add("/spec", _runtime_spec(runtime)))


def failure_policy(max_restarts: int) -> dict[str, Any]:
    """The JobSet failure policy of every runtime: recreate the whole gang, a bounded number of times for the
    job's own failures and without counting for disruptions (see DISRUPTION_RULE)."""
    return {
        "maxRestarts": max_restarts,
        "restartStrategy": RESTART_STRATEGY,
        "rules": [
            {
                "name": DISRUPTION_RULE,
                "action": "RestartJobSetAndIgnoreMaxRestarts",
                "onJobFailureReasons": [JOB_FAILED_BY_POD_FAILURE_POLICY],
            }
        ],
    }


def _runtime_spec(runtime: RuntimeValues) -> dict[str, Any]:
    mounts = [
        {"name": "dshm", "mountPath": "/dev/shm"},  # NCCL and dataloaders need far more than the 64 MiB default
        {"name": "workloads", "mountPath": WORKLOADS_PATH, "readOnly": True},
    ]
    volumes: list[dict[str, Any]] = [
        {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": runtime.shm_size}},
        {"name": "workloads", "configMap": {"name": WORKLOADS_CONFIG_MAP}},
    ]
    pinned = {"nodeSelector": dict(runtime.node_selector)} if runtime.node_selector else {}
    if runtime.claim_name:
        mounts.append({"name": "fsx", "mountPath": FSX_PATH})
        volumes.append({"name": "fsx", "persistentVolumeClaim": {"claimName": runtime.claim_name}})
    return {
        "mlPolicy": {"numNodes": 1, "torch": {}},
        "template": {
            "spec": {
                "failurePolicy": failure_policy(runtime.max_restarts),
                "replicatedJobs": [
                    {
                        "name": NODE_JOB,
                        "template": {
                            "metadata": {"labels": {ANCESTOR_LABEL: "trainer"}},
                            "spec": {
                                "backoffLimit": 0,
                                "podFailurePolicy": POD_FAILURE_POLICY,
                                "template": {
                                    **(
                                        {"metadata": {"annotations": dict(runtime.pod_annotations)}}
                                        if runtime.pod_annotations
                                        else {}
                                    ),
                                    "spec": {
                                        "restartPolicy": "Never",
                                        "containers": [
                                            {
                                                "name": NODE_JOB,
                                                "image": runtime.image,
                                                "env": [*_env(runtime.env), JOBSET_NAME_FROM_LABEL],
                                                "volumeMounts": mounts,
                                                "securityContext": CONTAINER_SECURITY,
                                            }
                                        ],
                                        "securityContext": POD_SECURITY,
                                        "volumes": volumes,
                                        **pinned,
                                    },
                                },
                            },
                        },
                    }
                ],
            }
        },
    }


class TrainJobsChart(cdk8s.Chart):
    """TrainJobs queued through Kueue (the queue-name label); Kueue admits each as one gang."""

    def __init__(self, scope: Construct, construct_id: str, jobs: Sequence[JobValues]) -> None:
        super().__init__(scope, construct_id, disable_resource_name_hashes=True)
        for job in jobs:
            obj = cdk8s.ApiObject(
                self,
                f"Job-{job.name}",
                api_version=TRAINER_API,
                kind="TrainJob",
                metadata=cdk8s.ApiObjectMetadata(
                    name=job.name, namespace=job.namespace, labels={**job.labels, QUEUE_NAME_LABEL: job.queue}
                ),
            )
            resources = {name: str(value) for name, value in job.resources.items()}
            obj.add_json_patch(
                cdk8s.JsonPatch.add(
                    "/spec",
                    {
                        "runtimeRef": {
                            "apiGroup": TRAINER_GROUP,
                            "kind": "ClusterTrainingRuntime",
                            "name": job.runtime,
                        },
                        "trainer": {
                            "numNodes": job.nodes,
                            "numProcPerNode": job.procs_per_node,
                            "resourcesPerNode": {"requests": resources, "limits": resources},
                            "command": list(job.command),
                            "env": _env(job.env),
                        },
                    },
                )
            )
