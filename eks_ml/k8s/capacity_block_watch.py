"""The Capacity Block watch: one CronJob per node group on a Capacity Block whose window is known, in the jobs'
namespace, that stops Kueue admitting work onto the block and tells running jobs to checkpoint before the block
ends (the script is eks_ml/training/workloads/capacity_block_watch.py, from the runtimes' workloads ConfigMap).

Least privilege: the only API access is get and patch on the ClusterQueues that list a block's flavor (the
production queue and, with teams, theirs: a ClusterRole, as ClusterQueues are cluster-scoped, limited to those
queues by resourceNames); the signal goes through the shared file system.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import cdk8s
from cdk8s_plus_35 import k8s
from constructs import Construct

from .kueue_queues import KUEUE_API
from .training_jobs import FSX_PATH, WORKLOADS_CONFIG_MAP, WORKLOADS_PATH

# The Docker official Python image (multi-arch: the system nodes may be Graviton), as mirrored on ECR Public
# (no Docker Hub pull limits). The script needs only the standard library, so the tag names the Python minor
# version and the Debian release, not a patch release: it is pulled on every run (imagePullPolicy Always).
PYTHON_IMAGE = "public.ecr.aws/docker/library/python:3.12-slim-bookworm"
SCRIPT = "capacity_block_watch.py"
SERVICE_ACCOUNT = "capacity-block-watch"
ROLE = "eks-ml-capacity-block-watch"
LABELS = {"app.kubernetes.io/name": "eks-ml-capacity-block-watch"}
# Every 5 minutes (eks_ml.training.capacity_block.WATCH_EVERY_MINUTES); each run takes a second or two.
SCHEDULE = "*/5 * * * *"
NOBODY = 65534
ROOT = 0


@dataclass(frozen=True, kw_only=True)
class BlockWatch:
    """One node group on a Capacity Block: its Kueue flavor, every ClusterQueue that lists the flavor (all of them
    stop admitting onto the block), and the schedule (ISO-8601 UTC) of its block."""

    flavor: str
    cluster_queues: Sequence[str]
    reservation_id: str
    end: str
    termination_starts: str
    stop_admitting_at: str
    checkpoint_at: str


@dataclass(frozen=True, kw_only=True)
class CapacityBlockWatchValues:
    """``signal_root``: the jobs' checkpoint directory (None without a shared file system, then ``claim_name``
    is None too); ``node_selector``/``tolerations``: the system nodes."""

    namespace: str
    blocks: Sequence[BlockWatch]
    claim_name: str | None
    signal_root: str | None
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: Sequence[Mapping[str, str]] = ()
    image: str = PYTHON_IMAGE


def cron_job_name(flavor: str) -> str:
    # A CronJob name is at most 52 characters (its Jobs append 11); node group names are at most 30.
    return f"capacity-block-{flavor}"


class CapacityBlockWatchChart(cdk8s.Chart):
    """Service account, a ClusterRole with get/patch on the blocks' ClusterQueues, and one CronJob per block."""

    def __init__(self, scope: Construct, construct_id: str, values: CapacityBlockWatchValues) -> None:
        super().__init__(scope, construct_id, disable_resource_name_hashes=True)
        account = k8s.KubeServiceAccount(
            self,
            "ServiceAccount",
            metadata=k8s.ObjectMeta(name=SERVICE_ACCOUNT, namespace=values.namespace, labels=dict(LABELS)),
        )
        group = KUEUE_API.split("/", 1)[0]
        role = k8s.KubeClusterRole(
            self,
            "ClusterRole",
            metadata=k8s.ObjectMeta(name=ROLE, labels=dict(LABELS)),
            rules=[
                k8s.PolicyRule(
                    api_groups=[group],
                    resources=["clusterqueues"],
                    resource_names=sorted({queue for block in values.blocks for queue in block.cluster_queues}),
                    verbs=["get", "patch"],
                )
            ],
        )
        binding = k8s.KubeClusterRoleBinding(
            self,
            "ClusterRoleBinding",
            metadata=k8s.ObjectMeta(name=ROLE, labels=dict(LABELS)),
            role_ref=k8s.RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=role.name),
            subjects=[k8s.Subject(kind="ServiceAccount", name=account.name, namespace=values.namespace)],
        )
        binding.add_dependency(role)
        for block in values.blocks:
            self._cron_job(values, block).add_dependency(account)

    def _cron_job(self, values: CapacityBlockWatchValues, block: BlockWatch) -> k8s.KubeCronJob:
        env = {
            "RESERVATION_ID": block.reservation_id,
            "END": block.end,
            "TERMINATION_STARTS": block.termination_starts,
            "STOP_ADMITTING_AT": block.stop_admitting_at,
            "CHECKPOINT_AT": block.checkpoint_at,
            "CLUSTER_QUEUES": ",".join(block.cluster_queues),
            "FLAVOR": block.flavor,
            "PYTHONDONTWRITEBYTECODE": "1",  # the root file system and the script mount are read-only
            **({"SIGNAL_ROOT": values.signal_root} if values.signal_root else {}),
        }
        mounts = [k8s.VolumeMount(name="workloads", mount_path=WORKLOADS_PATH, read_only=True)]
        volumes = [k8s.Volume(name="workloads", config_map=k8s.ConfigMapVolumeSource(name=WORKLOADS_CONFIG_MAP))]
        if values.claim_name:
            mounts.append(k8s.VolumeMount(name="fsx", mount_path=FSX_PATH))
            volumes.append(
                k8s.Volume(
                    name="fsx",
                    persistent_volume_claim=k8s.PersistentVolumeClaimVolumeSource(claim_name=values.claim_name),
                )
            )
        # Root only to write the signal beside the checkpoints, which the training images (running as root)
        # own; without a shared file system it runs as nobody. Either way: no capabilities, no escalation.
        user = ROOT if values.claim_name else NOBODY
        container = k8s.Container(
            name="watch",
            image=values.image,
            # The tag follows Python 3.12's patch releases and Debian's security fixes: each run takes the newest.
            image_pull_policy="Always",
            command=["python3", f"{WORKLOADS_PATH}/{SCRIPT}"],
            env=[k8s.EnvVar(name=name, value=value) for name, value in sorted(env.items())],
            volume_mounts=mounts,
            resources=k8s.ResourceRequirements(
                requests={"cpu": k8s.Quantity.from_string("50m"), "memory": k8s.Quantity.from_string("64Mi")},
                limits={"cpu": k8s.Quantity.from_string("500m"), "memory": k8s.Quantity.from_string("128Mi")},
            ),
            security_context=k8s.SecurityContext(
                allow_privilege_escalation=False,
                capabilities=k8s.Capabilities(drop=["ALL"]),
                read_only_root_filesystem=True,
                run_as_non_root=user != ROOT,
                run_as_user=user,
                run_as_group=user,
                seccomp_profile=k8s.SeccompProfile(type="RuntimeDefault"),
            ),
        )
        pod = k8s.PodSpec(
            restart_policy="Never",
            security_context=k8s.PodSecurityContext(
                run_as_non_root=user != ROOT,
                run_as_user=user,
                run_as_group=user,
                seccomp_profile=k8s.SeccompProfile(type="RuntimeDefault"),
            ),
            service_account_name=SERVICE_ACCOUNT,
            node_selector=dict(values.node_selector) or None,
            tolerations=[
                k8s.Toleration(
                    key=t.get("key"), operator=t.get("operator"), value=t.get("value"), effect=t.get("effect")
                )
                for t in values.tolerations
            ]
            or None,
            containers=[container],
            volumes=volumes,
        )
        return k8s.KubeCronJob(
            self,
            f"Watch-{block.flavor}",
            metadata=k8s.ObjectMeta(
                name=cron_job_name(block.flavor),
                namespace=values.namespace,
                labels={**LABELS, "eks-ml.io/node-group": block.flavor},
                annotations={"eks-ml.io/capacity-reservation-id": block.reservation_id},
            ),
            spec=k8s.CronJobSpec(
                schedule=SCHEDULE,
                time_zone="Etc/UTC",
                concurrency_policy="Forbid",
                starting_deadline_seconds=240,  # a run missed by more than this waits for the next one
                successful_jobs_history_limit=1,
                failed_jobs_history_limit=3,
                job_template=k8s.JobTemplateSpec(
                    metadata=k8s.ObjectMeta(labels=dict(LABELS)),
                    spec=k8s.JobSpec(
                        backoff_limit=2,
                        active_deadline_seconds=180,
                        template=k8s.PodTemplateSpec(metadata=k8s.ObjectMeta(labels=dict(LABELS)), spec=pod),
                    ),
                ),
            ),
        )


def _toleration(toleration: Mapping[str, str]) -> k8s.Toleration:
    return k8s.Toleration(
        key=toleration.get("key"),
        operator=toleration.get("operator"),
        value=toleration.get("value"),
        effect=toleration.get("effect"),
    )
