"""The burn-in DaemonSet: on each new training node, check the hardware against the catalog and run the
vendor diagnostics, then lift the node's startup taint (passed) or label it failed with the reason.

One DaemonSet per node group (each gets its instance type's expected values). Its pod runs four steps as
init containers, each in the image that has the tool, sharing one directory of results:

1. ``gate`` (training image, python3): a node already labelled passed is not checked again.
2. ``accelerators`` (NVIDIA: the DCGM image; Neuron: the Neuron training image): device files, memory,
   NeuronCores, then ``dcgmi diag`` (NVIDIA) or ``neuron-ls`` (Neuron).
3. ``efa`` (training image, which ships libfabric): EFA devices in sysfs and ``fi_info -p efa``.
4. ``report`` (training image, python3): patches the node.

A pause container then keeps the pod (a DaemonSet pod cannot complete) at a few MiB. The checks need the
devices without allocating them (a device-plugin allocation would hold every GPU for the pod's lifetime),
so those two steps are privileged; the API steps are not, and only they get the service account token.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources

import cdk8s
from cdk8s_plus_35 import k8s
from constructs import Construct

from ..placement.pods import NODE_EFFECTS_ANNOTATION
from . import pod_security
from .burn_in_policy import own_node_policy
from .scheduling import tolerations

# The startup taint every training node joins with, and the label that tells how its burn-in went
# ("passed" or "failed"; a failure's reason is in the annotation). Device plugins and node agents that the
# checks or the monitoring need tolerate the taint (startup_toleration); training jobs never do.
BURN_IN_KEY = "eks-ml.io/burn-in"
PENDING = "pending"
PASSED = "passed"
REASON_ANNOTATION = "eks-ml.io/burn-in-reason"


def startup_toleration() -> dict[str, str]:
    """What a DaemonSet needs to run on a training node before its burn-in passed."""
    return {"key": BURN_IN_KEY, "operator": "Exists", "effect": "NoSchedule"}


SCRIPTS_DIR = "/opt/eks-ml-burn-in"
RESULTS_DIR = "/results"
TOKEN_DIR = "/var/run/secrets/eks-ml"
HOST_SYS = "/host/sys"
SCRIPTS = ("checks.sh", "verdict.py")
# The pod only waits once the steps are done; registry.k8s.io/pause 3.10 is the pause image of current
# Kubernetes releases.
PAUSE_IMAGE = "registry.k8s.io/pause:3.10"


def node_check_scripts() -> dict[str, str]:
    package = resources.files("eks_ml.k8s.node_checks")
    return {name: package.joinpath(name).read_text() for name in SCRIPTS}


@dataclass(frozen=True, kw_only=True)
class BurnInGroup:
    """One node group's burn-in: where it runs, which images, what the hardware must show.

    ``accelerator_check`` is "nvidia" or "neuron" (the checks.sh step); ``expected`` the EXPECTED_* and
    DCGM_DIAG_LEVEL environment of the checks; ``tolerations`` the node group's taints (startup taint
    included)."""

    name: str
    node_selector: Mapping[str, str]
    tolerations: Sequence[Mapping[str, str]]
    accelerator_check: str
    accelerator_image: str
    training_image: str
    expected: Mapping[str, str]


@dataclass(frozen=True, kw_only=True)
class BurnInValues:
    namespace: str
    groups: Sequence[BurnInGroup]
    taint_key: str = BURN_IN_KEY
    label_key: str = BURN_IN_KEY
    reason_annotation: str = REASON_ANNOTATION
    service_account: str = "burn-in"
    labels: Mapping[str, str] = field(default_factory=lambda: {"app.kubernetes.io/name": "eks-ml-burn-in"})


def _env(values: Mapping[str, str]) -> list[k8s.EnvVar]:
    return [k8s.EnvVar(name=name, value=value) for name, value in sorted(values.items())]


def _resources(cpu_limit: str, memory_limit: str) -> k8s.ResourceRequirements:
    # Init container requests count toward the pod for its whole life: keep them small.
    return k8s.ResourceRequirements(
        requests={"cpu": k8s.Quantity.from_string("100m"), "memory": k8s.Quantity.from_string("128Mi")},
        limits={"cpu": k8s.Quantity.from_string(cpu_limit), "memory": k8s.Quantity.from_string(memory_limit)},
    )


# The API steps run as nobody: python3 reads the token and the results and writes only to the results
# directory (an emptyDir, writable by every user).
NOBODY = 65534


class BurnInChart(cdk8s.Chart):
    """Namespace (privileged Pod Security), scripts ConfigMap, service account with get/patch on nodes, the
    admission policy that confines it to its own node's burn-in keys, and one DaemonSet per node group."""

    def __init__(self, scope: Construct, construct_id: str, values: BurnInValues) -> None:
        super().__init__(scope, construct_id, disable_resource_name_hashes=True)
        self.values = values
        # privileged: the checks open every GPU, Neuron and EFA device without a device-plugin allocation.
        namespace = pod_security.namespace(
            self, "Namespace", values.namespace, pod_security.PodSecurityLevel.PRIVILEGED
        )
        scripts = k8s.KubeConfigMap(
            self,
            "Scripts",
            metadata=k8s.ObjectMeta(name="burn-in-scripts", namespace=values.namespace, labels=dict(values.labels)),
            data=node_check_scripts(),
        )
        account = k8s.KubeServiceAccount(
            self,
            "ServiceAccount",
            metadata=k8s.ObjectMeta(name=values.service_account, namespace=values.namespace),
            automount_service_account_token=False,  # projected into the two API steps only
        )
        # Nodes are cluster-scoped, so only a ClusterRole can grant access to them (a namespaced Role cannot),
        # and RBAC cannot name "the pod's own node": resourceNames are fixed at apply time, node names are not.
        # So: get and patch on nodes and nothing else (no list, watch, update, delete, no nodes/status); the
        # script patches only NODE_NAME (the downward API's spec.nodeName), and the admission policy below
        # denies any other node and any change but the burn-in taint, label and reason annotation.
        role = k8s.KubeClusterRole(
            self,
            "ClusterRole",
            metadata=k8s.ObjectMeta(name="eks-ml-burn-in", labels=dict(values.labels)),
            rules=[k8s.PolicyRule(api_groups=[""], resources=["nodes"], verbs=["get", "patch"])],
        )
        k8s.KubeClusterRoleBinding(
            self,
            "ClusterRoleBinding",
            metadata=k8s.ObjectMeta(name="eks-ml-burn-in", labels=dict(values.labels)),
            role_ref=k8s.RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=role.name),
            subjects=[k8s.Subject(kind="ServiceAccount", name=account.name, namespace=values.namespace)],
        )
        own_node_policy(
            self,
            name="eks-ml-burn-in-own-node",
            namespace=values.namespace,
            service_account=values.service_account,
            taint_key=values.taint_key,
            label_key=values.label_key,
            reason_annotation=values.reason_annotation,
            labels=values.labels,
        )
        scripts.add_dependency(namespace)
        account.add_dependency(namespace)
        for group in values.groups:
            daemon_set = self._daemon_set(group)
            daemon_set.add_dependency(scripts)
            daemon_set.add_dependency(account)

    def _daemon_set(self, group: BurnInGroup) -> k8s.KubeDaemonSet:
        values = self.values
        labels = {**values.labels, "eks-ml.io/node-group": group.name}
        # Tells the cluster model what a successful run does to the node; the tests run the scripts and check
        # they do exactly this.
        effects = {"removesTaints": [values.taint_key], "addsLabels": {values.label_key: PASSED}}
        api_env = {
            "RESULTS": RESULTS_DIR,
            "TAINT_KEY": values.taint_key,
            "LABEL_KEY": values.label_key,
            "REASON_ANNOTATION": values.reason_annotation,
            "TOKEN_FILE": f"{TOKEN_DIR}/token",
            "CA_FILE": f"{TOKEN_DIR}/ca.crt",
        }
        check_env = {"RESULTS": RESULTS_DIR, "SYS": HOST_SYS, **group.expected}
        node_name = k8s.EnvVar(
            name="NODE_NAME", value_from=k8s.EnvVarSource(field_ref=k8s.ObjectFieldSelector(field_path="spec.nodeName"))
        )
        scripts = k8s.VolumeMount(name="scripts", mount_path=SCRIPTS_DIR, read_only=True)
        results = k8s.VolumeMount(name="results", mount_path=RESULTS_DIR)
        token = k8s.VolumeMount(name="token", mount_path=TOKEN_DIR, read_only=True)
        host_sys = k8s.VolumeMount(name="host-sys", mount_path=HOST_SYS, read_only=True)
        hardened = k8s.SecurityContext(
            allow_privilege_escalation=False,
            capabilities=k8s.Capabilities(drop=["ALL"]),
            read_only_root_filesystem=True,
            run_as_non_root=True,
            run_as_user=NOBODY,
            run_as_group=NOBODY,
            seccomp_profile=k8s.SeccompProfile(type="RuntimeDefault"),
        )
        privileged = k8s.SecurityContext(privileged=True)

        def api_step(step: str) -> k8s.Container:
            return k8s.Container(
                name=step,
                image=group.training_image,
                command=["python3", f"{SCRIPTS_DIR}/verdict.py", step],
                env=[node_name, *_env(api_env)],
                volume_mounts=[scripts, results, token],
                resources=_resources("500m", "256Mi"),
                security_context=hardened,
            )

        def check_step(name: str, image: str, check: str, extra_env: Mapping[str, str]) -> k8s.Container:
            return k8s.Container(
                name=name,
                image=image,
                command=["/bin/sh", f"{SCRIPTS_DIR}/checks.sh", check],
                env=_env({**check_env, **extra_env}),
                volume_mounts=[scripts, results, host_sys],
                resources=_resources("4", "4Gi"),
                security_context=privileged,
            )

        # The NVIDIA container runtime gives the container every GPU and the driver's tools (nvidia-smi).
        gpu_env = {"NVIDIA_VISIBLE_DEVICES": "all", "NVIDIA_DRIVER_CAPABILITIES": "compute,utility"}
        return k8s.KubeDaemonSet(
            self,
            f"DaemonSet-{group.name}",
            metadata=k8s.ObjectMeta(
                name=f"burn-in-{group.name}",
                namespace=values.namespace,
                labels=labels,
                annotations={NODE_EFFECTS_ANNOTATION: json.dumps(effects, sort_keys=True)},
            ),
            spec=k8s.DaemonSetSpec(
                selector=k8s.LabelSelector(match_labels=labels),
                template=k8s.PodTemplateSpec(
                    metadata=k8s.ObjectMeta(labels=labels),
                    spec=k8s.PodSpec(
                        service_account_name=values.service_account,
                        automount_service_account_token=False,
                        security_context=k8s.PodSecurityContext(
                            seccomp_profile=k8s.SeccompProfile(type="RuntimeDefault")
                        ),
                        node_selector=dict(group.node_selector),
                        tolerations=tolerations(group.tolerations),
                        init_containers=[
                            api_step("gate"),
                            check_step(
                                "accelerators",
                                group.accelerator_image,
                                group.accelerator_check,
                                gpu_env if group.accelerator_check == "nvidia" else {},
                            ),
                            check_step("efa", group.training_image, "efa", {}),
                            api_step("report"),
                        ],
                        containers=[
                            k8s.Container(
                                name="done",
                                image=PAUSE_IMAGE,
                                resources=k8s.ResourceRequirements(
                                    requests={
                                        "cpu": k8s.Quantity.from_string("1m"),
                                        "memory": k8s.Quantity.from_string("8Mi"),
                                    },
                                    limits={
                                        "cpu": k8s.Quantity.from_string("10m"),
                                        "memory": k8s.Quantity.from_string("16Mi"),
                                    },
                                ),
                                security_context=k8s.SecurityContext(
                                    allow_privilege_escalation=False,
                                    capabilities=k8s.Capabilities(drop=["ALL"]),
                                    read_only_root_filesystem=True,
                                    run_as_non_root=True,
                                    run_as_user=65535,
                                    seccomp_profile=k8s.SeccompProfile(type="RuntimeDefault"),
                                ),
                            )
                        ],
                        volumes=[
                            k8s.Volume(
                                name="scripts",
                                config_map=k8s.ConfigMapVolumeSource(name="burn-in-scripts"),
                            ),
                            k8s.Volume(name="results", empty_dir=k8s.EmptyDirVolumeSource()),
                            k8s.Volume(
                                name="host-sys",
                                host_path=k8s.HostPathVolumeSource(path="/sys", type="Directory"),
                            ),
                            k8s.Volume(
                                name="token",
                                projected=k8s.ProjectedVolumeSource(
                                    sources=[
                                        k8s.VolumeProjection(
                                            service_account_token=k8s.ServiceAccountTokenProjection(
                                                path="token", expiration_seconds=3600
                                            )
                                        ),
                                        k8s.VolumeProjection(
                                            config_map=k8s.ConfigMapProjection(
                                                name="kube-root-ca.crt",
                                                items=[k8s.KeyToPath(key="ca.crt", path="ca.crt")],
                                            )
                                        ),
                                    ]
                                ),
                            ),
                        ],
                    ),
                ),
            ),
        )
