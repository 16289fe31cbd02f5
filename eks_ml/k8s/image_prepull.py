"""Image pre-pull: one DaemonSet per (node pool, server image) that runs the image on every node of the pool,
so a node pulls the multi-gigabyte server image as it joins (beside whatever pod it was launched for) and
keeps it: an image a running container uses is never garbage-collected by the kubelet.

What it buys: a second model service, a replacement replica or a scale-up that lands on a node the pool
already runs starts without a pull. What it does not: the first pod on a brand-new node still waits for the
same pull (containerd fetches an image once, whoever asks). Faster first pulls need the image on the node's
disk before it boots (a Bottlerocket data-volume snapshot in the EC2NodeClass) or SOCI parallel pull, which
EKS AMIs do not enable by default (awslabs ai-on-eks guidance, "Using SOCI snapshotter").
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import cdk8s
from cdk8s_plus_35 import k8s
from constructs import Construct

from .model_service import APP_LABEL
from .scheduling import tolerations

NOBODY = 65534
# The container sleeps: a few millicores and MiB are all it uses, and Karpenter sizes nodes with them.
REQUESTS = {"cpu": "5m", "memory": "16Mi"}
# GNU coreutils' sleep (both server images are Ubuntu-based) accepts "infinity".
SLEEP = ["sleep", "infinity"]
# The NVIDIA container runtime gives a container every GPU when NVIDIA_VISIBLE_DEVICES asks for them (the CUDA
# base images set it to "all"); "void" makes it behave as runc (NVIDIA Container Toolkit docs, "Specialized
# Configurations with Docker", NVIDIA_VISIBLE_DEVICES). The sleeper must hold no accelerator. (Bottlerocket's
# NVIDIA nodes ignore the variable in unprivileged containers altogether: bottlerocket-os/bottlerocket#4052.)
NO_GPUS = {"NVIDIA_VISIBLE_DEVICES": "void"}


@dataclass(frozen=True, kw_only=True)
class PrePullValues:
    """One image to keep on every node of one pool."""

    pool: str
    image: str
    node_selector: Mapping[str, str]
    tolerations: Sequence[Mapping[str, str]]


def prepull_name(pool: str, image: str) -> str:
    """``prepull-<pool>-<8 hex of the image>``: a DNS label (pool names are at most 31 characters)."""
    return f"prepull-{pool}-{hashlib.sha256(image.encode()).hexdigest()[:8]}"


def unique_pulls(pulls: Sequence[PrePullValues]) -> list[PrePullValues]:
    """One entry per (pool, image): two services with the same image on one pool share a DaemonSet."""
    seen: dict[tuple[str, str], PrePullValues] = {}
    for pull in pulls:
        seen.setdefault((pull.pool, pull.image), pull)
    return [seen[key] for key in sorted(seen)]


class ImagePrePullChart(cdk8s.Chart):
    def __init__(self, scope: Construct, construct_id: str, *, namespace: str, pulls: Sequence[PrePullValues]) -> None:
        super().__init__(scope, construct_id, disable_resource_name_hashes=True)
        for pull in unique_pulls(pulls):
            name = prepull_name(pull.pool, pull.image)
            labels = {APP_LABEL: name}
            container = k8s.Container(
                name="image",
                image=pull.image,
                command=SLEEP,
                env=[k8s.EnvVar(name=key, value=value) for key, value in NO_GPUS.items()],
                resources=k8s.ResourceRequirements(
                    requests={key: k8s.Quantity.from_string(value) for key, value in REQUESTS.items()},
                    limits={key: k8s.Quantity.from_string(value) for key, value in REQUESTS.items()},
                ),
                # Restricted: the server images run as root, but sleeping needs no privilege or writes.
                security_context=k8s.SecurityContext(
                    allow_privilege_escalation=False,
                    capabilities=k8s.Capabilities(drop=["ALL"]),
                    seccomp_profile=k8s.SeccompProfile(type="RuntimeDefault"),
                    run_as_non_root=True,
                    run_as_user=NOBODY,
                    run_as_group=NOBODY,
                    read_only_root_filesystem=True,
                ),
            )
            k8s.KubeDaemonSet(
                self,
                name,
                metadata=k8s.ObjectMeta(name=name, namespace=namespace, labels=labels),
                spec=k8s.DaemonSetSpec(
                    selector=k8s.LabelSelector(match_labels=labels),
                    template=k8s.PodTemplateSpec(
                        metadata=k8s.ObjectMeta(labels=labels),
                        spec=k8s.PodSpec(
                            automount_service_account_token=False,
                            security_context=k8s.PodSecurityContext(
                                run_as_non_root=True, seccomp_profile=k8s.SeccompProfile(type="RuntimeDefault")
                            ),
                            node_selector=dict(pull.node_selector),
                            tolerations=tolerations(pull.tolerations),
                            # Nothing to drain: the sleeper stops at once.
                            termination_grace_period_seconds=1,
                            containers=[container],
                        ),
                    ),
                ),
            )
