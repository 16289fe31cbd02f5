"""Cold starts (issue 13 part 6): weights cached on the node by Mountpoint and shared by replicas, the Neuron
compiled model on a persistent claim keyed by its configuration, server images pre-pulled on their pools,
and the start-up budget checked against the expected start. Each check also runs on a broken input and
must fail there."""

from __future__ import annotations

import copy
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import Duration

from eks_ml import ValidationError
from eks_ml.inference import NodePoolProps, PoolKind
from eks_ml.inference import cluster as inference_cluster
from eks_ml.inference.cold_start import NODE_READY_S, CompileCache, estimate, node_cache_gib
from eks_ml.inference.fit import weight_gib
from eks_ml.inference.model_service import (
    VLLM_NEURON_IMAGE,
    VLLM_NVIDIA_IMAGE,
    ModelServiceProps,
    S3Weights,
)
from eks_ml.inference.pools import default_pools
from eks_ml.inference.start_budget import first_start, start_budget_warning
from eks_ml.k8s.image_prepull import PrePullValues, prepull_name

from .support import pod_security
from .support.manifests import validate_objects
from .test_model_service import GPU, NEURON, objects, server, synth

README = Path(__file__).resolve().parents[1] / "README.md"
S3_GPU = ModelServiceProps(
    name="llm-s3",
    instance_type="g6e.xlarge",
    weights=S3Weights(bucket="model-weights", prefix="qwen3-8b/"),
    parameters_billions=8.2,
)
CACHED_NEURON = ModelServiceProps(
    name="llm-inf2",
    instance_type="inf2.8xlarge",
    weights=S3Weights(bucket="model-weights", prefix="qwen3-8b/"),
    parameters_billions=8.2,
    tensor_parallel=2,
    load_timeout=Duration.minutes(45),
    compile_cache=CompileCache(claim_name="neuron-compiled", path="qwen"),
)


@pytest.fixture(scope="module")
def cold() -> Any:
    # Two services with the NVIDIA image on the gpu pool share one pre-pull DaemonSet.
    return synth(GPU, S3_GPU, CACHED_NEURON)


# ---- Weights: Mountpoint's cache on the node, shared by the replicas there ---------------------------------


def assert_node_cache(volume: dict[str, Any], cache_gib: int) -> None:
    attributes = volume["spec"]["csi"]["volumeAttributes"]
    assert attributes.get("cache") == "emptyDir", "Mountpoint's local cache is off"
    assert attributes.get("cacheEmptyDirSizeLimit") == f"{cache_gib}Gi", "the cache is not sized for the weights"
    # The cache lives in the Mountpoint Pod (mount-s3 namespace), not in the server: no hostPath in the server.
    assert "hostPath" not in str(volume)


def test_s3_weights_are_cached_on_the_node_for_every_replica(cold: Any) -> None:
    cluster, _ = cold
    volume = objects(cluster, "llm-s3")["PersistentVolume"]
    cache = node_cache_gib(weight_gib(8.2, 2.0))
    assert cache == 19  # 15.3 GiB of bf16 weights with 10% and 2 GiB headroom
    assert_node_cache(volume, cache)
    # One PersistentVolume per service with fixed options: the CSI driver shares one Mountpoint Pod (and its
    # cache) between the service's pods on a node only when volume and options are the same.
    assert volume["spec"]["accessModes"] == ["ReadOnlyMany"]
    for broken in ({"cache": None}, {"cacheEmptyDirSizeLimit": "1Gi"}):
        bad = copy.deepcopy(volume)
        attributes = bad["spec"]["csi"]["volumeAttributes"]
        for key, value in broken.items():
            if value is None:
                del attributes[key]
            else:
                attributes[key] = value
        with pytest.raises(AssertionError):
            assert_node_cache(bad, cache)


def test_node_cache_can_be_turned_off() -> None:
    uncached = ModelServiceProps(
        name="nocache",
        instance_type="g6e.xlarge",
        weights=S3Weights(bucket="model-weights", node_cache=False),
        parameters_billions=8.2,
    )
    values = uncached.values(namespace="inference", region="us-west-2", load_balancer_cidrs=[])
    assert values.s3_volume is not None and values.s3_volume.cache_gib is None


def test_node_cache_must_fit_the_nodes_disk() -> None:
    small_root = NodePoolProps(name="inferentia", kind=PoolKind.NEURON, root_volume_gib=20)
    pools = [small_root, *(p for p in default_pools() if p.kind is not PoolKind.NEURON)]
    with pytest.raises(ValidationError) as error:
        synth(NEURON, pools=pools)
    message = str(error.value)
    assert "model_services[0].weights.node_cache" in message and "root_volume_gib to at least 39" in message
    # Without the cache the same pools are accepted.
    off = ModelServiceProps(
        name="llm-inf2",
        instance_type="inf2.8xlarge",
        weights=S3Weights(bucket="model-weights", prefix="qwen3-8b/", node_cache=False),
        parameters_billions=8.2,
        tensor_parallel=2,
        load_timeout=Duration.minutes(45),
    )
    synth(off, pools=pools)


def test_node_cache_must_be_a_bool() -> None:
    bad = ModelServiceProps(
        name="llm",
        instance_type="g6e.xlarge",
        weights=S3Weights(bucket="model-weights", node_cache="yes"),  # type: ignore[arg-type]
        parameters_billions=8.2,
    )
    with pytest.raises(ValidationError, match=r"weights\.node_cache"):
        synth(bad)


# ---- Neuron: the compiled model on a persistent claim -------------------------------------------------------


def compiled_dir(service: ModelServiceProps) -> str:
    values = service.values(namespace="inference", region="us-west-2", load_balancer_cidrs=[])
    return values.env["NEURON_COMPILED_ARTIFACTS"]


def test_neuron_compiled_model_lives_on_the_claim(cold: Any) -> None:
    cluster, _ = cold
    pod, container = server(cluster, "llm-inf2")
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["compiled"] == {"name": "compiled", "persistentVolumeClaim": {"claimName": "neuron-compiled"}}
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["compiled"] == {"name": "compiled", "mountPath": "/compiled"}  # written on the first start
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert re.fullmatch(r"/compiled/qwen/llm-inf2/[0-9a-f]{16}", env["NEURON_COMPILED_ARTIFACTS"])
    # Without a claim the compiled model stays in the pod's scratch, as before.
    assert compiled_dir(NEURON) == "/cache/neuron"


def test_compiled_directory_changes_with_every_flag_that_shapes_the_graphs() -> None:
    base = compiled_dir(CACHED_NEURON)
    assert compiled_dir(replace(CACHED_NEURON)) == base  # stable across synths
    changed = [
        replace(CACHED_NEURON, tensor_parallel=1),
        replace(CACHED_NEURON, max_model_len=4096),
        replace(CACHED_NEURON, image=VLLM_NEURON_IMAGE.replace("sdk2.28.0", "sdk2.29.0")),
        replace(CACHED_NEURON, extra_args=["--additional-config", '{"override_neuron_config": {}}']),
        replace(CACHED_NEURON, weights=S3Weights(bucket="model-weights", prefix="qwen3-14b/")),
    ]
    dirs = [compiled_dir(service) for service in changed]
    # A present directory is loaded whatever the flags: a shared key would serve graphs of another shape.
    assert base not in dirs and len(set(dirs)) == len(dirs)


@pytest.mark.parametrize(
    ("service", "field"),
    [
        (replace(GPU, compile_cache=CompileCache(claim_name="neuron-compiled")), "compile_cache"),
        (replace(CACHED_NEURON, compile_cache=CompileCache(claim_name="Neuron_Cache")), "compile_cache.claim_name"),
        (replace(CACHED_NEURON, compile_cache=CompileCache(claim_name="c", path="/abs")), "compile_cache.path"),
        (replace(CACHED_NEURON, compile_cache=CompileCache(claim_name="c", path="a/../b")), "compile_cache.path"),
        (replace(CACHED_NEURON, compile_cache="neuron-compiled"), "compile_cache"),
    ],
    ids=["on-nvidia", "bad-claim", "absolute-path", "dotdot-path", "not-a-cache"],
)
def test_bad_compile_cache_is_refused(service: ModelServiceProps, field: str) -> None:
    with pytest.raises(ValidationError, match=rf"model_services\[0\]\.{re.escape(field)}\b"):
        synth(service)


# ---- Images pre-pulled on the pools that serve them ---------------------------------------------------------


def prepull_sets(cluster: Any) -> dict[str, dict[str, Any]]:
    assert cluster.prepull_chart is not None
    return {o["metadata"]["name"]: o for o in cluster.prepull_chart.to_json() if o["kind"] == "DaemonSet"}


def assert_prepull(daemon_set: dict[str, Any], *, pool: str, image: str, taint: str) -> None:
    spec = daemon_set["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    assert container["image"] == image
    assert spec["nodeSelector"] == {"eks-ml.io/pool": pool}
    assert {"key": taint, "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
    resources = container["resources"]
    assert taint not in resources.get("requests", {}) and taint not in resources.get("limits", {})
    assert {"name": "NVIDIA_VISIBLE_DEVICES", "value": "void"} in container["env"]
    assert pod_security.problems(spec, "restricted") == []


def test_one_prepull_daemon_set_per_pool_and_image(cold: Any) -> None:
    cluster, _ = cold
    found = prepull_sets(cluster)
    gpu, inf2 = prepull_name("gpu", VLLM_NVIDIA_IMAGE), prepull_name("inferentia", VLLM_NEURON_IMAGE)
    assert set(found) == {gpu, inf2}  # the two NVIDIA services share one
    assert_prepull(found[gpu], pool="gpu", image=VLLM_NVIDIA_IMAGE, taint="nvidia.com/gpu")
    assert_prepull(found[inf2], pool="inferentia", image=VLLM_NEURON_IMAGE, taint="aws.amazon.com/neuron")
    assert validate_objects(found.values()) == []
    broken = copy.deepcopy(found[gpu])
    broken["spec"]["template"]["spec"]["containers"][0]["securityContext"]["runAsUser"] = 0
    broken["spec"]["template"]["spec"]["containers"][0]["securityContext"]["runAsNonRoot"] = False
    with pytest.raises(AssertionError):
        assert_prepull(broken, pool="gpu", image=VLLM_NVIDIA_IMAGE, taint="nvidia.com/gpu")
    broken = copy.deepcopy(found[gpu])
    broken["spec"]["template"]["spec"]["containers"][0]["env"] = []
    with pytest.raises(AssertionError):
        assert_prepull(broken, pool="gpu", image=VLLM_NVIDIA_IMAGE, taint="nvidia.com/gpu")


def test_cluster_model_refuses_a_prepull_that_cannot_reach_its_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    def untolerated(**fields: Any) -> PrePullValues:
        return PrePullValues(**{**fields, "tolerations": []})

    monkeypatch.setattr(inference_cluster, "PrePullValues", untolerated)
    with pytest.raises(ValidationError, match="prepull-gpu"):
        synth(GPU)


def test_prepull_can_be_turned_off() -> None:
    cluster, _ = synth(GPU, prepull_images=False)
    assert cluster.prepull_chart is None
    with pytest.raises(ValidationError, match="prepull_images"):
        synth(GPU, prepull_images="no")


# ---- Start-up budget and the README's start times -----------------------------------------------------------


def test_start_budget_warns_when_load_timeout_is_below_the_expected_first_start() -> None:
    pool = next(p for p in default_pools() if p.kind is PoolKind.NEURON)
    assert start_budget_warning(CACHED_NEURON, pool) is None  # 45 minutes cover a compile of 16 GB
    short = replace(CACHED_NEURON, load_timeout=Duration.minutes(10))
    warning = start_budget_warning(short, pool)
    assert warning is not None and "load_timeout is 10 min" in warning and "Duration.minutes(" in warning
    gpu_pool = next(p for p in default_pools() if p.kind is PoolKind.NVIDIA)
    assert start_budget_warning(GPU, gpu_pool) is None


def test_estimates_order_the_paths() -> None:
    spec = GPU.spec()
    weights = weight_gib(8.2, 2.0)
    hub, s3, cached = (estimate(p, spec=spec, weights_gib=weights, image_cached=False) for p in ("hub", "s3", "cached"))
    assert cached.total_s < s3.total_s < hub.total_s
    neuron = CACHED_NEURON.spec()
    compiled = estimate("cached", spec=neuron, weights_gib=weights, image_cached=True)
    compiling = estimate("cached", spec=neuron, weights_gib=weights, image_cached=True, compiled=False)
    assert compiling.compile_s > 10 * 60 and compiled.compile_s == 0
    assert first_start(CACHED_NEURON).compile_s == compiling.compile_s
    with pytest.raises(ValueError, match="unknown path"):
        estimate("fsx", spec=spec, weights_gib=weights, image_cached=True)


def readme_start_rows() -> dict[str, list[float]]:
    """The README's start-time table: row label -> minutes per column."""
    text = README.read_text()
    section = text.split("<!-- start-times -->", 1)[1].split("<!-- /start-times -->", 1)[0]
    rows: dict[str, list[float]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and re.fullmatch(r"[\d.]+", cells[1]):
            rows[cells[0]] = [float(c) for c in cells[1:]]
    return rows


def expected_start_rows() -> dict[str, list[float]]:
    """Minutes to a ready server on a new node (launch, image pull, weights, compile, server start) and on a
    node the pool already runs (image pre-pulled; what the startup probe must cover). The node cache is empty
    on a new node and warm where a replica of the service runs or ran in the same pod."""
    weights = weight_gib(8.2, 2.0)
    node_minutes = NODE_READY_S / 60
    rows: dict[str, list[float]] = {}
    for label, service, new_path, running_path, compiled in (
        ("g6e.xlarge, Hugging Face Hub download", GPU, "hub", "hub", True),
        ("g6e.xlarge, S3 through Mountpoint, node cache", S3_GPU, "s3", "cached", True),
        ("inf2.8xlarge, Hub download and Neuron compile", NEURON, "hub", "hub", False),
        ("inf2.8xlarge, S3 node cache and compiled model on the claim", CACHED_NEURON, "s3", "cached", True),
    ):
        spec = service.spec()
        new = estimate(new_path, spec=spec, weights_gib=weights, image_cached=False, compiled=compiled)
        running = estimate(running_path, spec=spec, weights_gib=weights, image_cached=True, compiled=compiled)
        rows[label] = [round(node_minutes + new.total_s / 60, 1), running.minutes]
    return rows


def test_readme_start_times_are_the_estimates() -> None:
    expected = expected_start_rows()
    assert readme_start_rows() == expected
    drifted = {label: [minutes + 1 for minutes in row] for label, row in expected.items()}
    assert readme_start_rows() != drifted
