"""Burn-in: the check and untaint scripts run for real against a fake device tree, fake vendor tools and a
fake Kubernetes API (an HTTP server holding one node); the manifests and the cluster model around them."""

from __future__ import annotations

import functools
import json
import os
import stat
import subprocess
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import cdk8s
import pytest

from eks_ml.catalog import EFA_RESOURCE, NEURON_DEVICE_RESOURCE, NVIDIA_GPU_RESOURCE, lookup
from eks_ml.cluster.device_plugins import efa_values, neuron_values, nvidia_values
from eks_ml.errors import ValidationError
from eks_ml.inference.pools import POOL_LABEL
from eks_ml.k8s.burn_in import BURN_IN_KEY, BurnInChart, BurnInValues, startup_toleration
from eks_ml.placement import ClusterModel, Taint, Toleration, Workload, managed_node_group, workloads_from_objects
from eks_ml.training.burn_in import burn_in_group, expected_values

from .support.manifests import applied_objects
from .support.releases import releases

SH = "/bin/sh"
NODE = "ip-10-0-1-23.us-west-2.compute.internal"
ACCELERATOR_TAINT = {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}
STARTUP_TAINT = {"key": BURN_IN_KEY, "value": "pending", "effect": "NoSchedule"}


# -- a fake Kubernetes API: one node, GET and JSON merge patch with resourceVersion checks -----------------


@dataclass
class FakeApi:
    node: dict[str, Any]
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    conflicts: int = 0  # answer this many PATCHes with 409, as when the node changed since it was read

    def handle(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        self.requests.append((method, path, body))
        if path != f"/api/v1/nodes/{NODE}":
            return 404, {"reason": "NotFound"}
        if method == "GET":
            return 200, self.node
        if self.conflicts:
            self.conflicts -= 1
            self.node["metadata"]["resourceVersion"] = str(int(self.node["metadata"]["resourceVersion"]) + 1)
            return 409, {"reason": "Conflict"}
        if body["metadata"].get("resourceVersion") != self.node["metadata"]["resourceVersion"]:
            return 409, {"reason": "Conflict"}
        self.node = merge_patch(self.node, body)
        self.node["metadata"]["resourceVersion"] = str(int(self.node["metadata"]["resourceVersion"]) + 1)
        return 200, self.node

    @property
    def patches(self) -> list[Any]:
        return [body for method, _, body in self.requests if method == "PATCH"]


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386, as the API server applies application/merge-patch+json."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


@pytest.fixture
def api() -> Iterator[tuple[FakeApi, str]]:
    fake = FakeApi(
        node={
            "metadata": {
                "name": NODE,
                "resourceVersion": "100",
                "labels": {"eks-ml.io/node-group": "p5"},
                "annotations": {"eks-ml.io/burn-in-reason": "an old failure"},
            },
            "spec": {"taints": [dict(ACCELERATOR_TAINT), dict(STARTUP_TAINT)]},
        }
    )

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, method: str) -> None:
            assert self.headers["Authorization"] == "Bearer test-token"
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            if method == "PATCH":
                assert self.headers["Content-Type"] == "application/merge-patch+json"
            code, answer = fake.handle(method, self.path, body)
            data = json.dumps(answer).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 (the http.server hook's name)
            self._answer("GET")

        def do_PATCH(self) -> None:  # noqa: N802
            self._answer("PATCH")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


# -- a fake node: device files, sysfs and the vendor tools, each tool recording that it ran ---------------


def tool(bin_dir: Path, name: str, script: str) -> None:
    path = bin_dir / name
    path.write_text(f'#!/bin/sh\necho "{name} $*" >> "$TOOL_LOG"\n{script}\n')
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@dataclass
class FakeNode:
    root: Path
    gpus: int = 8
    gpu_memory_mib: int = 81559  # what an H100 80 GB reports
    efa_devices: int = 32
    fi_info_devices: int | None = None  # default: as many as in sysfs
    diag_fails: bool = False
    neuron_devices: int = 0
    neuron_cores_per_device: int = 2
    neuron_memory_bytes: int = 32 * 2**30

    def build(self) -> None:
        dev, sys_dir, bin_dir = self.root / "dev", self.root / "sys", self.root / "bin"
        for directory in (dev, sys_dir / "class" / "infiniband", bin_dir, self.root / "results"):
            directory.mkdir(parents=True, exist_ok=True)
        for index in range(self.gpus):
            (dev / f"nvidia{index}").touch()
        (dev / "nvidiactl").touch()  # not a GPU: must not be counted
        for index in range(self.neuron_devices):
            (dev / f"neuron{index}").touch()
        domains = []
        for index in range(self.efa_devices):
            name = f"rdmap{index}s0"
            (sys_dir / "class" / "infiniband" / name).mkdir()
            domains.append(name)
        listed = domains if self.fi_info_devices is None else domains[: self.fi_info_devices]
        # fi_info lists each device once per endpoint type asked for, with the provider's attributes.
        fi_lines = "".join(
            f"provider: efa\n    fabric: efa\n    domain: {name}-rdm\n    version: 122.0\n    type: FI_EP_RDM\n"
            for name in listed
        )
        tool(bin_dir, "fi_info", f"printf '%s' '{fi_lines}'")
        gpu_lines = "\\n".join([str(self.gpu_memory_mib)] * self.gpus)
        tool(bin_dir, "nvidia-smi", f"printf '{gpu_lines}\\n'")
        tool(bin_dir, "nv-hostengine", "exit 0")
        diag = (
            "echo '| Memory                    | Fail - GPU: 3                                  |'; exit 226"
            if self.diag_fails
            else "echo '| Memory                    | Pass - All                                     |'"
        )
        tool(bin_dir, "dcgmi", diag)
        devices = [
            {
                "neuron_device": index,
                "nc_count": self.neuron_cores_per_device,
                "memory_size": self.neuron_memory_bytes,
                "neuron_processes": [],
            }
            for index in range(self.neuron_devices)
        ]
        tool(bin_dir, "neuron-ls", f"echo '{json.dumps(devices)}'")
        (self.root / "token").write_text("test-token\n")

    @property
    def tools_run(self) -> list[str]:
        log = self.root / "tools.log"
        return log.read_text().splitlines() if log.exists() else []


@functools.cache
def daemon_set(instance_type: str) -> dict[str, Any]:
    chart = BurnInChart(
        cdk8s.App(),
        "BurnIn",
        BurnInValues(namespace="eks-ml-burn-in", groups=[burn_in_group("p5", lookup(instance_type))]),
    )
    (found,) = [obj for obj in chart.to_json() if obj["kind"] == "DaemonSet"]
    return found


def run_pod(node: FakeNode, server: str, instance_type: str = "p5.48xlarge") -> None:
    """Run the DaemonSet's init containers in order, as the kubelet would: each container's own command and
    environment from the rendered chart, with paths moved into the fake node."""
    node.build()
    scripts = node.root / "scripts"
    scripts.mkdir(exist_ok=True)
    from eks_ml.k8s.burn_in import SCRIPTS_DIR, node_check_scripts

    for name, text in node_check_scripts().items():
        (scripts / name).write_text(text)
    moved = {
        "RESULTS": str(node.root / "results"),
        "SYS": str(node.root / "sys"),
        "TOKEN_FILE": str(node.root / "token"),
    }
    for container in daemon_set(instance_type)["spec"]["template"]["spec"]["initContainers"]:
        env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
        env.update({k: v for k, v in moved.items() if k in env})
        env.update(
            NODE_NAME=NODE,
            API_SERVER=server,
            DEV=str(node.root / "dev"),
            TOOL_LOG=str(node.root / "tools.log"),
            PATH=f"{node.root / 'bin'}:{os.path.dirname(os.path.realpath(os.sys.executable))}:/usr/bin:/bin",
        )
        command = [part.replace(SCRIPTS_DIR, str(scripts)) for part in container["command"]]
        if command[0] == "python3":
            command[0] = os.sys.executable
        subprocess.run(command, env=env, check=True, timeout=30)


def test_a_healthy_gpu_node_loses_its_startup_taint_and_is_labelled_passed(
    tmp_path: Path, api: tuple[FakeApi, str]
) -> None:
    fake, server = api
    node = FakeNode(tmp_path)
    run_pod(node, server)
    assert fake.node["spec"]["taints"] == [ACCELERATOR_TAINT]  # the accelerator taint stays
    assert fake.node["metadata"]["labels"][BURN_IN_KEY] == "passed"
    assert "eks-ml.io/burn-in-reason" not in fake.node["metadata"]["annotations"]  # an old reason is dropped
    # Every check ran, with the diagnostics level from the chart.
    assert [line.split()[0] for line in node.tools_run] == [
        "nvidia-smi",
        "nv-hostengine",
        "dcgmi",
        "nv-hostengine",
        "fi_info",
    ]
    assert "dcgmi diag -r 2" in node.tools_run
    assert "fi_info -p efa -t FI_EP_RDM" in node.tools_run
    # One GET by the gate, then one GET and one PATCH of this node only.
    assert [(m, p) for m, p, _ in fake.requests] == [("GET", f"/api/v1/nodes/{NODE}")] * 2 + [
        ("PATCH", f"/api/v1/nodes/{NODE}")
    ]


@pytest.mark.parametrize(
    ("broken", "reason"),
    [
        ({"gpus": 7}, "gpu-count: 7 of 8 GPU device files in /dev"),
        ({"gpu_memory_mib": 40960}, "gpu-memory: GPU 0 reports 40960 MiB, at least 77824 expected"),
        ({"diag_fails": True}, "dcgm-diag: dcgmi diag -r 2 exited 226: Memory Fail - GPU: 3"),
        ({"efa_devices": 31}, "efa-count: 31 of 32 EFA devices in /sys/class/infiniband"),
        ({"fi_info_devices": 30}, "efa-libfabric: fi_info -p efa lists 30 of 32 EFA devices"),
    ],
)
def test_a_failing_gpu_node_keeps_its_taint_and_is_labelled_failed_with_the_reason(
    tmp_path: Path, api: tuple[FakeApi, str], broken: Mapping[str, Any], reason: str
) -> None:
    fake, server = api
    run_pod(replace(FakeNode(tmp_path), **broken), server)
    assert fake.node["spec"]["taints"] == [ACCELERATOR_TAINT, STARTUP_TAINT]
    assert fake.node["metadata"]["labels"][BURN_IN_KEY] == "failed"
    assert fake.node["metadata"]["annotations"]["eks-ml.io/burn-in-reason"].strip() == reason
    assert "spec" not in fake.patches[0]  # a failed verdict never touches the taints


def test_later_checks_are_skipped_once_one_failed(tmp_path: Path, api: tuple[FakeApi, str]) -> None:
    fake, server = api
    node = replace(FakeNode(tmp_path), gpus=6)
    run_pod(node, server)
    assert node.tools_run == []  # neither the diagnostics nor fi_info ran: the first reason is kept
    assert fake.node["metadata"]["annotations"]["eks-ml.io/burn-in-reason"].startswith("gpu-count: 6 of 8")


def test_a_node_that_passed_before_is_not_checked_again(tmp_path: Path, api: tuple[FakeApi, str]) -> None:
    fake, server = api
    fake.node["metadata"]["labels"][BURN_IN_KEY] = "passed"
    fake.node["spec"]["taints"] = [dict(ACCELERATOR_TAINT)]
    node = FakeNode(tmp_path)
    run_pod(node, server)
    # A restarted pod runs no diagnostics under a training job and leaves the node alone.
    assert node.tools_run == []
    assert fake.patches == []


def test_a_concurrent_node_change_is_retried_with_a_fresh_read(tmp_path: Path, api: tuple[FakeApi, str]) -> None:
    fake, server = api
    fake.conflicts = 1
    run_pod(FakeNode(tmp_path), server)
    assert len(fake.patches) == 2
    assert fake.patches[0]["metadata"]["resourceVersion"] != fake.patches[1]["metadata"]["resourceVersion"]
    assert fake.node["metadata"]["labels"][BURN_IN_KEY] == "passed"


def test_a_healthy_trainium_node_passes_and_a_missing_neuroncore_fails(
    tmp_path: Path, api: tuple[FakeApi, str]
) -> None:
    fake, server = api
    spec = lookup("trn1.32xlarge")
    fake.node["spec"]["taints"] = [
        {"key": "aws.amazon.com/neuron", "value": "true", "effect": "NoSchedule"},
        STARTUP_TAINT,
    ]
    healthy = FakeNode(tmp_path / "healthy", gpus=0, neuron_devices=16, efa_devices=spec.efa_interfaces)
    run_pod(healthy, server, "trn1.32xlarge")
    assert fake.node["metadata"]["labels"][BURN_IN_KEY] == "passed"
    assert [line.split()[0] for line in healthy.tools_run] == ["neuron-ls", "fi_info"]

    fake.node["metadata"]["labels"][BURN_IN_KEY] = "pending-again"
    broken = FakeNode(
        tmp_path / "broken", gpus=0, neuron_devices=16, neuron_cores_per_device=1, efa_devices=spec.efa_interfaces
    )
    run_pod(broken, server, "trn1.32xlarge")
    assert fake.node["metadata"]["labels"][BURN_IN_KEY] == "failed"
    assert fake.node["metadata"]["annotations"]["eks-ml.io/burn-in-reason"] == (
        "neuroncore-count: neuron-ls lists 16 NeuronCores, 32 expected (32 logical)"
    )


def test_expected_values_come_from_the_catalog() -> None:
    assert expected_values(lookup("p5.48xlarge")) == {
        "EXPECTED_ACCELERATORS": "8",
        "EXPECTED_MIN_MEMORY_MIB": "77824",
        "EXPECTED_EFA_DEVICES": "32",
        "DCGM_DIAG_LEVEL": "2",
    }
    trn2 = expected_values(lookup("trn2.48xlarge"))
    assert (trn2["EXPECTED_NEURON_CORES"], trn2["EXPECTED_LOGICAL_NEURON_CORES"]) == ("128", "64")
    assert trn2["EXPECTED_ACCELERATORS"] == "16"


# -- manifests ---------------------------------------------------------------------------------------------


def burn_in_objects(synth: Any) -> list[dict[str, Any]]:
    from .support.manifests import applied_objects

    template = synth.templates["Training"]
    return [
        obj
        for obj in applied_objects(template)
        if obj["metadata"].get("namespace") == "eks-ml-burn-in"
        or obj["kind"] in ("ClusterRole", "ClusterRoleBinding")
        and obj["metadata"]["name"] == "eks-ml-burn-in"
    ]


def test_one_daemon_set_per_training_group_on_its_nodes_through_both_taints_only(default_synth: Any) -> None:
    objects = burn_in_objects(default_synth)
    (daemon_set_,) = [obj for obj in objects if obj["kind"] == "DaemonSet"]
    pod = daemon_set_["spec"]["template"]["spec"]
    group = daemon_set_["metadata"]["labels"]["eks-ml.io/node-group"]
    assert pod["nodeSelector"] == {"eks-ml.io/node-group": group}
    # Exactly the group's two taints: not a blanket toleration that would put it on every node.
    assert pod["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
        startup_toleration(),
    ]
    assert [c["name"] for c in pod["initContainers"]] == ["gate", "accelerators", "efa", "report"]
    # Only the two API steps get the service account token, and only the two device checks are privileged.
    assert pod["automountServiceAccountToken"] is False
    with_token = [c["name"] for c in pod["initContainers"] if any(m["name"] == "token" for m in c["volumeMounts"])]
    assert with_token == ["gate", "report"]
    privileged = [c["name"] for c in pod["initContainers"] if c["securityContext"].get("privileged")]
    assert privileged == ["accelerators", "efa"]
    for step in (c for c in pod["initContainers"] if c["name"] in ("gate", "report")):
        context = step["securityContext"]
        assert context["runAsNonRoot"] and context["readOnlyRootFilesystem"], step["name"]
        assert context["capabilities"] == {"drop": ["ALL"]} and not context["allowPrivilegeEscalation"]
    # Real, pinned images: a registry, a repository and a tag, never latest.
    for container in [*pod["initContainers"], *pod["containers"]]:
        image = container["image"]
        assert "/" in image and ":" in image.rsplit("/", 1)[1] and not image.endswith(":latest"), image
    assert json.loads(daemon_set_["metadata"]["annotations"]["eks-ml.io/node-effects"]) == {
        "addsLabels": {BURN_IN_KEY: "passed"},
        "removesTaints": [BURN_IN_KEY],
    }


def test_the_burn_in_may_only_get_and_patch_nodes(default_synth: Any) -> None:
    objects = burn_in_objects(default_synth)
    (role,) = [obj for obj in objects if obj["kind"] == "ClusterRole"]
    assert role["rules"] == [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "patch"]}]
    (binding,) = [obj for obj in objects if obj["kind"] == "ClusterRoleBinding"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "burn-in", "namespace": "eks-ml-burn-in"}]
    assert not [obj for obj in objects if obj["kind"] in ("Role", "RoleBinding")]


def test_device_plugins_tolerate_the_startup_taint() -> None:
    def tolerates(tolerations: list[dict[str, str]]) -> bool:
        return any(Toleration.of(t).tolerates(BURN_IN_KEY, "pending", "NoSchedule") for t in tolerations)

    assert tolerates(nvidia_values()["tolerations"])
    assert tolerates(neuron_values()["devicePlugin"]["tolerations"])
    assert tolerates(efa_values(["p5.48xlarge"], "registry/efa")["tolerations"])
    # The check itself fails on a plugin that tolerates only the accelerator taint.
    assert not tolerates([{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}])


ACCELERATOR_TAINTS = (NVIDIA_GPU_RESOURCE, NEURON_DEVICE_RESOURCE, EFA_RESOURCE)


def toleration_lists(value: Any) -> Iterator[list[dict[str, Any]]]:
    """Every ``tolerations`` list in a Helm values tree or a Kubernetes object."""
    if isinstance(value, Mapping):
        for key, inner in value.items():
            if key == "tolerations" and isinstance(inner, list):
                yield inner
            else:
                yield from toleration_lists(inner)
    elif isinstance(value, list):
        for item in value:
            yield from toleration_lists(item)


def misses_the_startup_taint(tolerations: list[dict[str, Any]]) -> bool:
    """A pod meant for accelerator nodes (it tolerates an accelerator taint) that a training node would keep out
    until its burn-in passed: the burn-in's own checks, device plugins and monitors must run before that."""
    parsed = [Toleration.of(t) for t in tolerations]
    for_accelerators = any(t.tolerates(key, "true", "NoSchedule") for t in parsed for key in ACCELERATOR_TAINTS)
    return for_accelerators and not any(t.tolerates(BURN_IN_KEY, "pending", "NoSchedule") for t in parsed)


@pytest.mark.parametrize("variant", ["prometheus_synth", "trainium_synth"])
def test_every_pod_for_accelerator_nodes_tolerates_the_startup_taint(
    request: pytest.FixtureRequest, variant: str
) -> None:
    synth = request.getfixturevalue(variant)
    found = [(f"release {r.id}", r.values) for r in releases(synth.templates)] + [
        (f"{obj['kind']} {obj['metadata']['name']}", obj)
        for template in synth.templates.values()
        for obj in applied_objects(template)
        if obj["kind"] == "DaemonSet"  # node agents; model servers and jobs go to nodes that passed
        # Image pre-pulls select an inference pool by name: those pools run no burn-in.
        and POOL_LABEL not in (obj["spec"]["template"]["spec"].get("nodeSelector") or {})
    ]
    assert [
        name
        for name, value in found
        for tolerations in toleration_lists(value)
        if misses_the_startup_taint(tolerations)
    ] == []
    # The check itself: dcgm-exporter as it was before it tolerated the taint.
    assert misses_the_startup_taint([{"key": NVIDIA_GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}])


# -- the cluster model: jobs land only on nodes the burn-in passed -----------------------------------------


def model_with(burn_in: list[dict[str, Any]]) -> ClusterModel:
    """One p5.48xlarge group with both taints, its device plugins, ``burn_in`` objects and a whole-node job
    admitted as Kueue admits it (the flavor's labels and accelerator toleration)."""
    spec = lookup("p5.48xlarge")
    model = ClusterModel("test")
    model.add_source(
        managed_node_group(
            "p5",
            [spec.name],
            {"eks-ml.io/node-group": "p5"},
            [Taint("nvidia.com/gpu", "true", "NoSchedule"), Taint(BURN_IN_KEY, "pending", "NoSchedule")],
        )
    )
    plugin_tolerations = (
        Toleration("nvidia.com/gpu", "Exists", None, "NoSchedule"),
        Toleration.of(startup_toleration()),
    )
    model.add_workloads(
        [
            Workload(
                "nvidia plugin",
                "test",
                "DaemonSet",
                tolerations=plugin_tolerations,
                provides=frozenset({"nvidia.com/gpu"}),
            ),
            Workload(
                "efa plugin",
                "test",
                "DaemonSet",
                tolerations=plugin_tolerations,
                provides=frozenset({"vpc.amazonaws.com/efa"}),
            ),
            *workloads_from_objects(burn_in, "burn-in"),
            Workload(
                "TrainJob p5-example",
                "test",
                "TrainJob",
                node_selector={"eks-ml.io/node-group": "p5", BURN_IN_KEY: "passed"},
                tolerations=(Toleration("nvidia.com/gpu", "Exists", None, "NoSchedule"),),
                requests={"cpu": 172000, "memory": 1000, **spec.extended_resources()},
            ),
        ]
    )
    return model


def chart_objects() -> list[dict[str, Any]]:
    chart = BurnInChart(
        cdk8s.App(),
        "BurnIn",
        BurnInValues(namespace="eks-ml-burn-in", groups=[burn_in_group("p5", lookup("p5.48xlarge"))]),
    )
    return list(chart.to_json())


def test_jobs_land_on_nodes_the_burn_in_passed() -> None:
    placements = {p.workload.name: p.landings for p in model_with(chart_objects()).prove()}
    assert placements["TrainJob p5-example"] == (("managed node group p5", ("p5.48xlarge",)),)


def test_without_the_burn_in_no_job_lands() -> None:
    with pytest.raises(ValidationError) as error:
        model_with([]).prove()
    assert "TrainJob p5-example" in str(error.value)
    assert "nodeSelector eks-ml.io/burn-in=passed" in str(error.value)


def test_a_burn_in_that_does_not_tolerate_the_startup_taint_lifts_nothing() -> None:
    objects = chart_objects()
    for obj in objects:
        if obj["kind"] == "DaemonSet":
            pod = obj["spec"]["template"]["spec"]
            pod["tolerations"] = [t for t in pod["tolerations"] if t["key"] != BURN_IN_KEY]
    with pytest.raises(ValidationError) as error:
        model_with(objects).prove()
    message = str(error.value)
    assert "DaemonSet eks-ml-burn-in/burn-in-p5" in message and "TrainJob p5-example" in message
    assert "taint eks-ml.io/burn-in=pending:NoSchedule not tolerated" in message


def test_the_readme_names_the_images_the_burn_in_runs() -> None:
    from eks_ml.training.burn_in import DCGM_IMAGE, NEURON_IMAGE

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    section = readme.split("### Burn-in", 1)[1].split("\n### ", 1)[0]
    assert f"`{DCGM_IMAGE}`" in section and f"`{NEURON_IMAGE}`" in section
    assert "dcgmi diag -r 2" in section  # the level the chart sets (DCGM_DIAG_LEVEL)
