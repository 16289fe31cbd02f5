"""A Job that server-side applies a chart's CRDs, so that a chart bump upgrades them.

Helm installs a chart's ``crds/`` folder on first install only and never upgrades it, and the aws_eks_v2
kubectl provider cannot skip or apply it otherwise: it ignores ``skip_crds``, and its client-side
``kubectl apply`` of a KubernetesManifest cannot carry JobSet's CRD (over the 262 KB annotation limit).
So each chart whose ``crds/`` folder eks-ml relies on gets this Job, named after the chart version, which
applies the very same files (fetched from the upstream repository at the commit the chart was built from,
checked byte for byte against the chart archive by the tests) with ``kubectl apply --server-side``. The
chart is installed only after the Job has succeeded (see :func:`eks_ml.helm.install`).

The Job's pods need egress to raw.githubusercontent.com (the default VPC's NAT gateway gives it).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import cdk8s
from cdk8s_plus_35 import k8s
from constructs import Construct

# registry.k8s.io publishes a kubectl image per Kubernetes release. kubectl supports one minor version of
# skew either way; 1.34 is within one of every version eks_ml.cluster.versions supports (1.33-1.35), which
# a test checks whenever that table changes.
KUBECTL_IMAGE = "registry.k8s.io/kubectl:v1.34.0"
FIELD_MANAGER = "eks-ml-crd-upgrade"
# On every object of the chart: these belong to installing a Helm release, not to the cluster's own objects
# (a GitOps tool installs the release's CRDs itself, so the GitOps export leaves them out).
COMPONENT_LABEL = {"app.kubernetes.io/component": "crd-upgrade"}
# Commit-addressed raw URLs: the bytes at such a URL never change.
_PINNED_URL = re.compile(r"^https://raw\.githubusercontent\.com/[\w.-]+/[\w.-]+/[0-9a-f]{40}/[\w./-]+\.yaml$")


@dataclass(frozen=True)
class CrdFile:
    """One file of a chart's ``crds/`` folder: its path in the chart archive, the same bytes at a
    commit-pinned upstream URL, their sha256, and the CRDs it defines."""

    path: str
    url: str
    sha256: str
    names: tuple[str, ...]

    def __post_init__(self) -> None:
        if not _PINNED_URL.match(self.url):
            raise ValueError(f"{self.url}: a CRD file must be fetched from a commit-pinned raw GitHub URL")


def job_name(release: str, version: str, spec: object = None) -> str:
    """A DNS-1123 label per chart version and Job spec: a bump, or a new image, placement or file list,
    creates (and runs) a new Job, as a Job's pod template cannot be changed in place. The release part is
    shortened, never the version or the hash."""
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:8]
    suffix = f"-crds-{re.sub(r'[^0-9a-z]+', '-', version.lower()).strip('-')}-{digest}"
    return f"{release[: 63 - len(suffix)].rstrip('-')}{suffix}"


def upgrade_job_name(release: str, version: str, files: Sequence[CrdFile], placement: Mapping[str, Any]) -> str:
    """The name of the Job :class:`CrdUpgradeChart` makes: everything its pod template holds is in the hash."""
    return job_name(release, version, [KUBECTL_IMAGE, [f.url for f in files], placement])


class CrdUpgradeChart(cdk8s.Chart):
    """The service account, its rights on exactly these CRDs, and the Job that applies them."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        release: str,
        version: str,
        namespace: str,
        files: Sequence[CrdFile],
        placement: Mapping[str, Any],
    ) -> None:
        super().__init__(scope, construct_id, disable_resource_name_hashes=True)
        self.job_name = upgrade_job_name(release, version, files, placement)
        account = f"{release}-crd-upgrade"
        names = sorted({name for file in files for name in file.names})
        labels = {"app.kubernetes.io/name": account, "app.kubernetes.io/part-of": "eks-ml", **COMPONENT_LABEL}
        k8s.KubeServiceAccount(
            self, "ServiceAccount", metadata=k8s.ObjectMeta(name=account, namespace=namespace, labels=labels)
        )
        crds = "customresourcedefinitions"
        k8s.KubeClusterRole(
            self,
            "ClusterRole",
            metadata=k8s.ObjectMeta(name=account, labels=labels),
            rules=[
                # create cannot be limited by name (the name is in the request body, not the URL).
                k8s.PolicyRule(api_groups=["apiextensions.k8s.io"], resources=[crds], verbs=["create"]),
                k8s.PolicyRule(
                    api_groups=["apiextensions.k8s.io"], resources=[crds], resource_names=names, verbs=["get", "patch"]
                ),
            ],
        )
        k8s.KubeClusterRoleBinding(
            self,
            "ClusterRoleBinding",
            metadata=k8s.ObjectMeta(name=account, labels=labels),
            role_ref=k8s.RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=account),
            subjects=[k8s.Subject(kind="ServiceAccount", name=account, namespace=namespace)],
        )
        sources = [arg for file in files for arg in ("-f", file.url)]
        k8s.KubeJob(
            self,
            "Job",
            metadata=k8s.ObjectMeta(name=self.job_name, namespace=namespace, labels=labels),
            spec=k8s.JobSpec(
                backoff_limit=4,
                active_deadline_seconds=600,
                template=k8s.PodTemplateSpec(
                    metadata=k8s.ObjectMeta(labels=labels),
                    spec=k8s.PodSpec(
                        service_account_name=account,
                        restart_policy="OnFailure",
                        node_selector=dict(placement.get("nodeSelector") or {}),
                        tolerations=[k8s.Toleration(**t) for t in placement.get("tolerations") or []],
                        security_context=k8s.PodSecurityContext(
                            run_as_non_root=True,
                            run_as_user=65532,
                            seccomp_profile=k8s.SeccompProfile(type="RuntimeDefault"),
                        ),
                        containers=[
                            k8s.Container(
                                name="kubectl",
                                image=KUBECTL_IMAGE,
                                command=["kubectl"],
                                args=["apply", "--server-side", "--force-conflicts", f"--field-manager={FIELD_MANAGER}"]
                                + sources,
                                # kubectl keeps its discovery cache under $HOME.
                                env=[k8s.EnvVar(name="HOME", value="/tmp")],
                                volume_mounts=[k8s.VolumeMount(name="tmp", mount_path="/tmp")],
                                resources=k8s.ResourceRequirements(
                                    requests={
                                        "cpu": k8s.Quantity.from_string("50m"),
                                        "memory": k8s.Quantity.from_string("128Mi"),
                                    },
                                    limits={
                                        "cpu": k8s.Quantity.from_string("500m"),
                                        "memory": k8s.Quantity.from_string("256Mi"),
                                    },
                                ),
                                security_context=k8s.SecurityContext(
                                    allow_privilege_escalation=False,
                                    read_only_root_filesystem=True,
                                    capabilities=k8s.Capabilities(drop=["ALL"]),
                                ),
                            )
                        ],
                        volumes=[k8s.Volume(name="tmp", empty_dir=k8s.EmptyDirVolumeSource())],
                    ),
                ),
            ),
        )
