"""Offline batch inference Jobs: an Indexed Job per batch, one shard of the input per index, queued in Kueue.

The Job is admitted by Kueue (the queue-name label; Kueue's webhook suspends it on creation and unsuspends it
on admission). eks-ml does not set ``suspend`` itself: the kubectl provider re-applies the manifest on every
update, and a declared ``suspend: true`` would suspend an admitted, running Job again.

Retries skip finished work: the runner script (eks_ml/inference/workloads/batch_inference.py) exits 0 at once
when its shard's ``_SUCCESS`` marker exists and resumes at the first missing output chunk. Failures are
counted per index (``backoffLimitPerIndex``), so one bad shard does not spend the others' retries, and:
- a pod that was disrupted (Spot reclaim or node drain: the DisruptionTarget condition) is replaced without
  counting (``Ignore``), so Spot interruptions never use up the retries;
- exit codes 2 (bad arguments) and 3 (bad input data) fail the index at once (``FailIndex``): retrying the
  same input cannot help.
Fields: Kubernetes batch/v1 JobSpec (completionMode Indexed, backoffLimitPerIndex and podFailurePolicy with
FailIndex are GA since Kubernetes 1.33 and 1.31; both need restartPolicy Never). Indexed Jobs set
JOB_COMPLETION_INDEX in each pod, which the runner reads as its shard.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import cdk8s
from cdk8s_plus_35 import k8s
from constructs import Construct

from .kueue_queues import QUEUE_NAME_LABEL
from .pod_security import HARDENED_CONTAINER

RUNNER_SCRIPT = "batch_inference.py"
SCRIPTS_CONFIG_MAP = "eks-ml-batch-inference"
SCRIPTS_PATH = "/opt/eks-ml"
CACHE_PATH = "/cache"
CONTAINER = "runner"
# The runner's exit codes for bad arguments (argparse) and bad input data (batch_inference.BAD_INPUT_EXIT).
NO_RETRY_EXIT_CODES = (2, 3)
# Index of a pod in an Indexed Job (Kubernetes sets this annotation and the JOB_COMPLETION_INDEX variable).
COMPLETION_INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"


@dataclass(frozen=True, kw_only=True)
class BatchJobValues:
    name: str
    namespace: str
    queue: str
    service_account: str
    image: str
    args: Sequence[str]
    shards: int
    parallelism: int
    retries_per_index: int
    node_selector: Mapping[str, str]
    tolerations: Sequence[Mapping[str, str]]
    requests: Mapping[str, str]
    limits: Mapping[str, str]
    shm_size: str
    env: Mapping[str, str] = field(default_factory=dict)
    # Variable -> (Secret, key): the Hub token of a gated model.
    secret_env: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    active_deadline_seconds: int | None = None


def pod_failure_policy() -> dict[str, Any]:
    return {
        "rules": [
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
            {
                "action": "FailIndex",
                "onExitCodes": {"containerName": CONTAINER, "operator": "In", "values": list(NO_RETRY_EXIT_CODES)},
            },
        ]
    }


def job_spec(job: BatchJobValues) -> dict[str, Any]:
    return {
        "completionMode": "Indexed",
        "completions": job.shards,
        "parallelism": job.parallelism,
        "backoffLimitPerIndex": job.retries_per_index,
        "podFailurePolicy": pod_failure_policy(),
        **({"activeDeadlineSeconds": job.active_deadline_seconds} if job.active_deadline_seconds else {}),
        "template": {
            "spec": {
                "restartPolicy": "Never",
                "serviceAccountName": job.service_account,
                "nodeSelector": dict(job.node_selector),
                "tolerations": [dict(t) for t in job.tolerations],
                "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
                "containers": [
                    {
                        "name": CONTAINER,
                        "image": job.image,
                        # The vLLM image's entrypoint serves; the runner is a script of its Python.
                        "command": ["python3", f"{SCRIPTS_PATH}/{RUNNER_SCRIPT}"],
                        "args": list(job.args),
                        "env": [
                            *({"name": k, "value": v} for k, v in sorted(job.env.items())),
                            *(
                                {"name": k, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}
                                for k, (secret, key) in sorted(job.secret_env.items())
                            ),
                        ],
                        "resources": {"requests": dict(job.requests), "limits": dict(job.limits)},
                        # Runs as root like the serving image (so baseline, not restricted); nothing else.
                        "securityContext": HARDENED_CONTAINER,
                        "volumeMounts": [
                            {"name": "scripts", "mountPath": SCRIPTS_PATH, "readOnly": True},
                            {"name": "cache", "mountPath": CACHE_PATH},
                            {"name": "dshm", "mountPath": "/dev/shm"},
                        ],
                    }
                ],
                "volumes": [
                    {"name": "scripts", "configMap": {"name": SCRIPTS_CONFIG_MAP}},
                    # Node-local storage (the pool's root volume) for the weights and vLLM's compile cache.
                    {"name": "cache", "emptyDir": {}},
                    {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": job.shm_size}},
                ],
            }
        },
    }


class BatchInferenceChart(cdk8s.Chart):
    """The runner script (a ConfigMap) and, per job, its ServiceAccount (the Pod Identity association names
    it) and its Indexed Job. The namespace and its Kueue queues come from TrainingQueuesChart."""

    def __init__(
        self, scope: Construct, construct_id: str, *, namespace: str, script: str, jobs: Sequence[BatchJobValues]
    ) -> None:
        super().__init__(scope, construct_id, disable_resource_name_hashes=True)
        k8s.KubeConfigMap(
            self,
            "Scripts",
            metadata=k8s.ObjectMeta(name=SCRIPTS_CONFIG_MAP, namespace=namespace),
            data={RUNNER_SCRIPT: script},
        )
        for job in jobs:
            k8s.KubeServiceAccount(
                self,
                f"ServiceAccount-{job.name}",
                metadata=k8s.ObjectMeta(name=job.service_account, namespace=job.namespace),
            )
            obj = cdk8s.ApiObject(
                self,
                f"Job-{job.name}",
                api_version="batch/v1",
                kind="Job",
                metadata=cdk8s.ApiObjectMetadata(
                    name=job.name, namespace=job.namespace, labels={QUEUE_NAME_LABEL: job.queue}
                ),
            )
            obj.add_json_patch(cdk8s.JsonPatch.add("/spec", job_spec(job)))
