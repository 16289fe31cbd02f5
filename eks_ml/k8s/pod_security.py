"""Pod Security Admission labels for the namespaces eks-ml creates.

Each namespace enforces the strictest Pod Security Standard its pods meet, and audits and warns at
``restricted`` so any gap shows in the audit log and in ``kubectl`` warnings. Which level a namespace
gets, and why, is stated where the namespace is created.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from cdk8s_plus_35 import k8s
from constructs import Construct

ENFORCE = "pod-security.kubernetes.io/enforce"
AUDIT = "pod-security.kubernetes.io/audit"
WARN = "pod-security.kubernetes.io/warn"

# The capabilities the baseline standard lets a container add (Pod Security Standards, "Capabilities").
BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)


# A container security context that meets restricted except for the user: no privilege escalation, no
# capabilities, the runtime's default seccomp profile. Charts and manifests add their user and file system.
HARDENED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


class PodSecurityLevel(StrEnum):
    RESTRICTED = "restricted"
    BASELINE = "baseline"
    PRIVILEGED = "privileged"


def labels(enforce: PodSecurityLevel) -> dict[str, str]:
    return {ENFORCE: enforce.value, AUDIT: PodSecurityLevel.RESTRICTED.value, WARN: PodSecurityLevel.RESTRICTED.value}


def level_for_root_containers(added_capabilities: Iterable[str]) -> PodSecurityLevel:
    """The level for containers that run as root (so not ``restricted``) and add ``added_capabilities``:
    ``baseline`` unless one is outside baseline's list (e.g. IPC_LOCK, which the Neuron runtime needs to lock
    its host buffers), which only ``privileged`` admits."""
    extra = set(added_capabilities) - BASELINE_CAPABILITIES
    return PodSecurityLevel.PRIVILEGED if extra else PodSecurityLevel.BASELINE


def namespace(scope: Construct, construct_id: str, name: str, enforce: PodSecurityLevel) -> k8s.KubeNamespace:
    return k8s.KubeNamespace(scope, construct_id, metadata=k8s.ObjectMeta(name=name, labels=labels(enforce)))
