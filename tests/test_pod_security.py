"""Pod Security Admission on the namespaces eks-ml creates: each is labelled (enforce, audit, warn), every pod
eks-ml runs there (its own objects and the rendered pinned charts) meets the enforced level, and the level is
the strictest those pods allow, so privileged appears only where a device plugin, exporter or monitor (or a
capability such as the Neuron runtime's IPC_LOCK) needs it."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import pytest

from eks_ml.k8s.pod_security import AUDIT, ENFORCE, WARN
from eks_ml.k8s.training_jobs import WORKLOADS_CONFIG_MAP

from .support import charts, pod_security
from .support.gated_apps import GATED_APPS
from .support.manifests import applied_objects
from .support.releases import RENDER, releases
from .support.synth import Synthesis

LEVELS = ("restricted", "baseline", "privileged")
# The enforced level of each namespace eks-ml creates, per app variant, and why (see where each is created).
# The burn-in opens every GPU, Neuron and EFA device without a device-plugin allocation (privileged).
_TRAINING = {
    "training": "baseline",
    "kueue-system": "restricted",
    "kubeflow-system": "restricted",
    "eks-ml-burn-in": "privileged",
}
_INFERENCE = {"inference": "privileged", "monitoring": "restricted"}
EXPECTED = {
    # training images run as root (baseline); the default app's inf2 model server adds IPC_LOCK for the Neuron
    # runtime (privileged); the controllers' namespaces meet restricted.
    "default": {**_TRAINING, **_INFERENCE},
    # plus node-exporter (host namespaces, hostPath), dcgm-exporter (SYS_ADMIN) and neuron-monitor (privileged).
    "prometheus": {
        **_TRAINING,
        **_INFERENCE,
        "eks-ml-observability": "privileged",
        "neuron-monitor": "privileged",
    },
    "trainium": {**_TRAINING, **_INFERENCE},
    "auto-mode": {**_TRAINING, **_INFERENCE},
    # examples/existing_vpc_inference serves on NVIDIA only: no Neuron runtime, so no IPC_LOCK.
    "example": {"inference": "baseline", "monitoring": "restricted"},
    "karpenter-training": _TRAINING,
    # The batch job runs the vLLM image as root (baseline); the Inferentia queue worker adds IPC_LOCK
    # (privileged; Triton's root image would need only baseline); multi-node vLLM (LeaderWorkerSet) runs as root
    # without added capabilities (baseline); the controllers (Kueue, KEDA, LWS, Prometheus) meet restricted.
    "inference-patterns": {
        "batch": "baseline",
        "kueue-system": "restricted",
        "inference": "privileged",
        "keda": "restricted",
        "monitoring": "restricted",
        "multi-node": "baseline",
        "lws-system": "restricted",
    },
}


@pytest.fixture(params=list(GATED_APPS))
def synth(request: pytest.FixtureRequest) -> tuple[str, Synthesis]:
    return request.param, request.getfixturevalue(GATED_APPS[request.param])


def namespaces(synth: Synthesis) -> dict[str, Mapping[str, str]]:
    """Labels of every Namespace eks-ml applies, by name."""
    found: dict[str, Mapping[str, str]] = {}
    for template in synth.templates.values():
        for obj in applied_objects(template):
            if obj["kind"] == "Namespace":
                found[obj["metadata"]["name"]] = obj["metadata"].get("labels") or {}
    return found


def pods_by_namespace(synth: Synthesis) -> dict[str, list[tuple[str, Mapping[str, Any]]]]:
    """(what, pod spec) of every pod eks-ml's objects and rendered releases run, by namespace. Training
    runtimes' pods run where the TrainJobs do: the namespace of the workloads ConfigMap."""
    pods: dict[str, list[tuple[str, Mapping[str, Any]]]] = {}
    for template in synth.templates.values():
        objects = applied_objects(template)
        jobs_namespace = next(
            (o["metadata"]["namespace"] for o in objects if o["metadata"]["name"] == WORKLOADS_CONFIG_MAP), None
        )
        for obj in objects:
            namespace = obj["metadata"].get("namespace") or jobs_namespace
            for what, spec in pod_security.pod_specs(obj):
                pods.setdefault(str(namespace), []).append((what, spec))
    for release in releases(synth.templates):
        pin = release.pin
        assert pin is not None
        if charts.chart_archive(pin) is None:
            continue
        rendered = RENDER(pin, release.values)
        assert not isinstance(rendered, str), rendered
        for obj in rendered:
            for what, spec in pod_security.pod_specs(obj):
                namespace = obj["metadata"].get("namespace") or release.namespace
                pods.setdefault(namespace, []).append((f"{release.chart}: {what}", spec))
    return pods


def strictest_level(specs: list[tuple[str, Mapping[str, Any]]]) -> str:
    return next(level for level in LEVELS if all(not pod_security.problems(spec, level) for _, spec in specs))


def test_every_namespace_eks_ml_creates_is_labelled(synth: tuple[str, Synthesis]) -> None:
    name, synthesis = synth
    labels = namespaces(synthesis)
    assert {ns: lab.get(ENFORCE) for ns, lab in labels.items()} == EXPECTED[name]
    for namespace, found in labels.items():
        # Audit and warn at restricted: the gap between enforced and restricted shows in kubectl and the audit log.
        assert found.get(AUDIT) == "restricted" and found.get(WARN) == "restricted", namespace


@pytest.mark.skipif(not charts.chart_cache_available(), reason=charts.HOW_TO_ENABLE)
def test_every_pod_meets_its_namespace_level_and_the_level_is_the_strictest_it_allows(
    synth: tuple[str, Synthesis],
) -> None:
    _, synthesis = synth
    pods = pods_by_namespace(synthesis)
    for namespace, found in namespaces(synthesis).items():
        level = found[ENFORCE]
        specs = pods.get(namespace, [])
        assert specs, f"{namespace}: no pod runs there; nothing justifies its level"
        problems = [f"{what}: {p}" for what, spec in specs for p in pod_security.problems(spec, level)]
        assert problems == [], f"{namespace} enforces {level}"
        assert strictest_level(specs) == level, f"{namespace} could enforce {strictest_level(specs)}"


def test_training_pods_and_model_servers_are_hardened(default_synth: Synthesis) -> None:
    """No privilege escalation, no capabilities but the ones named, RuntimeDefault seccomp: restricted except
    for the user (the images run as root)."""
    own = [
        (what, spec)
        for template in default_synth.templates.values()
        for obj in applied_objects(template)
        for what, spec in pod_security.pod_specs(obj)
        if obj["kind"] in ("ClusterTrainingRuntime", "Deployment")
    ]
    assert {what for what, _ in own} == {
        # p5.48xlarge nodes carry EC2 network labels: a runtime per Kueue topology request (training, fabric test)
        "ClusterTrainingRuntime/eks-ml-torch-p5-prefer-nnl3/node",
        "ClusterTrainingRuntime/eks-ml-torch-p5-require-nnl1/node",
        "Deployment/qwen3-8b",
        "Deployment/qwen3-8b-inf2",
    }
    for what, spec in own:
        remaining = pod_security.restricted_problems(spec)
        root = {f"container {c['name']} does not set runAsNonRoot: true" for c in spec["containers"]}
        # Only the Neuron server adds a capability: IPC_LOCK, for the Neuron runtime's locked host buffers.
        ipc_lock = {
            f"container server adds {suffix}"
            for suffix in ("['IPC_LOCK']", "['IPC_LOCK'] (restricted allows only NET_BIND_SERVICE)")
        }
        allowed = root | (ipc_lock if what == "Deployment/qwen3-8b-inf2" else set())
        assert set(remaining) <= allowed, what


# ---- the checks catch what they claim ---------------------------------------------------------------------


def _runtime_spec(default_synth: Synthesis) -> dict[str, Any]:
    runtime, *_ = [
        o for t in default_synth.templates.values() for o in applied_objects(t) if o["kind"] == "ClusterTrainingRuntime"
    ]
    ((_, spec),) = pod_security.pod_specs(runtime)
    return copy.deepcopy(dict(spec))


@pytest.mark.parametrize(
    ("mutation", "level", "problem"),
    [
        (lambda s: s["containers"][0]["securityContext"].update(privileged=True), "baseline", "is privileged"),
        (lambda s: s.update(hostNetwork=True), "baseline", "host namespace hostNetwork"),
        (lambda s: s["volumes"].append({"name": "h", "hostPath": {"path": "/"}}), "baseline", "hostPath volume h"),
        (
            lambda s: s["containers"][0]["securityContext"]["capabilities"].update(add=["IPC_LOCK"]),
            "baseline",
            "adds ['IPC_LOCK']",
        ),
        (
            lambda s: s["containers"][0]["securityContext"].pop("allowPrivilegeEscalation"),
            "restricted",
            "allowPrivilegeEscalation",
        ),
        (lambda s: None, "restricted", "runAsNonRoot"),  # the training images run as root
        (lambda s: s["securityContext"].update(seccompProfile={"type": "Unconfined"}), "baseline", "Unconfined"),
    ],
)
def test_a_pod_that_breaks_its_level_is_reported(
    default_synth: Synthesis, mutation: Any, level: str, problem: str
) -> None:
    spec = _runtime_spec(default_synth)
    assert pod_security.problems(spec, "baseline") == []
    mutation(spec)
    assert any(problem in p for p in pod_security.problems(spec, level)), pod_security.problems(spec, level)
