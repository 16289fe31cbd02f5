"""The Pod Security Standards (baseline and restricted) as the admission controller applies them to a pod
spec, for tests: a pod that violates its namespace's ``enforce`` level is refused at deploy.

Covers the controls of Kubernetes' Pod Security Standards page that a manifest can violate: host
namespaces, privileged containers, capabilities, hostPath volumes, host ports, AppArmor, SELinux, /proc
mount type, seccomp and sysctls (baseline), and volume types, privilege escalation, running as non-root,
seccomp and capabilities (restricted).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from eks_ml.k8s.pod_security import BASELINE_CAPABILITIES

SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
RESTRICTED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
POD_KINDS = {"Deployment", "DaemonSet", "StatefulSet", "Job", "ReplicaSet"}


def pod_specs(obj: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(what, pod spec) of every pod an object runs: workload kinds, and each replicated job of a Kubeflow
    ClusterTrainingRuntime (its pods run in the namespace of the TrainJob that uses it)."""
    name = f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}"
    if obj.get("kind") in POD_KINDS:
        yield name, obj["spec"]["template"].get("spec") or {}
    elif obj.get("kind") == "CronJob":
        yield name, obj["spec"]["jobTemplate"]["spec"]["template"].get("spec") or {}
    elif obj.get("kind") == "LeaderWorkerSet":  # leader and worker pods (kubernetes-sigs/lws v0.10.0)
        template = obj["spec"]["leaderWorkerTemplate"]
        for role in ("leaderTemplate", "workerTemplate"):
            if template.get(role):
                yield f"{name}/{role}", template[role].get("spec") or {}
    elif obj.get("kind") == "ClusterTrainingRuntime":
        for job in obj["spec"]["template"]["spec"]["replicatedJobs"]:
            yield f"{name}/{job['name']}", job["template"]["spec"]["template"]["spec"]


def _containers(spec: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [
        *(spec.get("initContainers") or []),
        *(spec.get("containers") or []),
        *(spec.get("ephemeralContainers") or []),
    ]


def baseline_problems(spec: Mapping[str, Any]) -> list[str]:
    problems = [f"host namespace {field}" for field in ("hostNetwork", "hostPID", "hostIPC") if spec.get(field)]
    if spec.get("hostUsers") is False:
        pass  # user namespaces are allowed at every level
    pod_context = spec.get("securityContext") or {}
    problems += _seccomp_unconfined("pod", pod_context)
    problems += _selinux("pod", pod_context)
    problems += _apparmor("pod", pod_context)
    for sysctl in pod_context.get("sysctls") or []:
        if sysctl.get("name") not in SAFE_SYSCTLS:
            problems.append(f"unsafe sysctl {sysctl.get('name')}")
    for volume in spec.get("volumes") or []:
        if "hostPath" in volume:
            problems.append(f"hostPath volume {volume.get('name')}")
    for container in _containers(spec):
        where = f"container {container.get('name')}"
        context = container.get("securityContext") or {}
        if context.get("privileged"):
            problems.append(f"{where} is privileged")
        extra = set((context.get("capabilities") or {}).get("add") or []) - BASELINE_CAPABILITIES
        if extra:
            problems.append(f"{where} adds {sorted(extra)}")
        if any(port.get("hostPort") for port in container.get("ports") or []):
            problems.append(f"{where} uses a host port")
        if context.get("procMount") not in (None, "Default"):
            problems.append(f"{where} procMount {context.get('procMount')}")
        problems += _seccomp_unconfined(where, context)
        problems += _selinux(where, context)
        problems += _apparmor(where, context)
    return problems


def restricted_problems(spec: Mapping[str, Any]) -> list[str]:
    problems = baseline_problems(spec)
    for volume in spec.get("volumes") or []:
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUMES:
            problems.append(f"volume {volume.get('name')} of type {sorted(kinds)}")
    pod_context = spec.get("securityContext") or {}
    if pod_context.get("runAsUser") == 0:
        problems.append("pod runs as user 0")
    for container in _containers(spec):
        where = f"container {container.get('name')}"
        context = container.get("securityContext") or {}
        if context.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{where} does not set allowPrivilegeEscalation: false")
        non_root = context.get("runAsNonRoot", pod_context.get("runAsNonRoot"))
        if non_root is not True:
            problems.append(f"{where} does not set runAsNonRoot: true")
        if context.get("runAsUser") == 0:
            problems.append(f"{where} runs as user 0")
        seccomp = (context.get("seccompProfile") or pod_context.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{where} has no RuntimeDefault or Localhost seccomp profile")
        capabilities = context.get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            problems.append(f"{where} does not drop ALL capabilities")
        extra = set(capabilities.get("add") or []) - {"NET_BIND_SERVICE"}
        if extra:
            problems.append(f"{where} adds {sorted(extra)} (restricted allows only NET_BIND_SERVICE)")
    return problems


def problems(spec: Mapping[str, Any], level: str) -> list[str]:
    """What keeps ``spec`` out of a namespace that enforces ``level``."""
    if level == "privileged":
        return []
    return restricted_problems(spec) if level == "restricted" else baseline_problems(spec)


def _seccomp_unconfined(where: str, context: Mapping[str, Any]) -> list[str]:
    kind = (context.get("seccompProfile") or {}).get("type")
    return [f"{where} seccomp profile Unconfined"] if kind == "Unconfined" else []


def _selinux(where: str, context: Mapping[str, Any]) -> list[str]:
    options = context.get("seLinuxOptions") or {}
    bad = options.get("type", "") not in SELINUX_TYPES or options.get("user") or options.get("role")
    return [f"{where} SELinux options {options}"] if bad else []


def _apparmor(where: str, context: Mapping[str, Any]) -> list[str]:
    kind = (context.get("appArmorProfile") or {}).get("type")
    return [f"{where} AppArmor profile Unconfined"] if kind == "Unconfined" else []
