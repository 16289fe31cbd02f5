"""The benchmark Job: vllm bench serve against a model service, rendered (not applied), validated and placed."""

from __future__ import annotations

import json
import shlex
from dataclasses import replace
from typing import Any

import pytest
import yaml

from eks_ml import ValidationError
from eks_ml.inference import NodePoolProps, PoolKind
from eks_ml.inference.benchmark_job import BenchmarkJobProps
from eks_ml.inference.model_service import ModelServiceProps
from eks_ml.inference.slo import ServiceLevelObjective
from eks_ml.k8s.benchmark_job import RESULTS_MARKER

from .support.manifests import validate_objects
from .support.pod_security import restricted_problems
from .support.synth import of_type
from .test_model_service import GPU, NEURON, synth

GPU_SLO = replace(GPU, slo=ServiceLevelObjective(latency_target=0.995))
BENCHMARKS = [BenchmarkJobProps(service="llm"), BenchmarkJobProps(service="llm-inf2", concurrency=(1, 2, 4, 8))]


@pytest.fixture(scope="module")
def benchmarked() -> tuple[Any, dict[str, Any]]:
    return synth(GPU_SLO, NEURON, benchmarks=BENCHMARKS)


def rendered(cluster: Any) -> dict[str, dict[str, Any]]:
    return {f"{o['kind']}/{o['metadata']['name']}": o for o in yaml.safe_load_all(cluster.benchmarks_yaml())}


def test_jobs_are_rendered_not_applied(benchmarked: Any) -> None:
    cluster, template = benchmarked
    assert sorted(rendered(cluster)) == [
        "Job/llm-benchmark", "Job/llm-inf2-benchmark",
        "NetworkPolicy/llm-benchmark-client", "NetworkPolicy/llm-benchmark-server",
        "NetworkPolicy/llm-inf2-benchmark-client", "NetworkPolicy/llm-inf2-benchmark-server",
    ]  # fmt: skip
    manifests = json.dumps(
        [r["Properties"] for r in of_type(template, "Custom::AWSCDK-EKS-KubernetesResource").values()]
    )
    assert "llm-benchmark" not in manifests
    assert "benchmark llm-benchmark: rendered for kubectl apply, not deployed" in cluster.plan.notes
    # Without benchmarks there is nothing to export.
    assert synth(GPU)[0].benchmarks_yaml() == ""


def test_objects_pass_the_schema_and_the_restricted_pod_standard(benchmarked: Any) -> None:
    cluster, _ = benchmarked
    objects = list(rendered(cluster).values())
    assert validate_objects(objects) == []
    for job in (o for o in objects if o["kind"] == "Job"):
        assert restricted_problems(job["spec"]["template"]["spec"]) == []


def test_the_cluster_model_places_the_load_generator_on_the_cpu_pool(benchmarked: Any) -> None:
    cluster, _ = benchmarked
    (line,) = [p for p in cluster.plan.placements if p.startswith("Job inference/llm-benchmark ")]
    assert line.startswith("Job inference/llm-benchmark -> Karpenter NodePool cpu ("), line
    job = rendered(cluster)["Job/llm-benchmark"]
    assert job["spec"]["template"]["spec"]["nodeSelector"] == {"eks-ml.io/pool": "cpu"}
    assert job["spec"]["backoffLimit"] == 0


def test_the_sweep_runs_vllm_bench_serve_with_what_the_analysis_reads(benchmarked: Any) -> None:
    cluster, _ = benchmarked
    (container,) = rendered(cluster)["Job/llm-benchmark"]["spec"]["template"]["spec"]["containers"]
    script = container["command"][2]
    assert script.splitlines()[1] == "for c in 1 2 4 8 16 32 64 128; do"
    (bench,) = [line for line in script.splitlines() if "vllm bench serve" in line]
    words = shlex.split(bench)
    flag = {w: words[i + 1] for i, w in enumerate(words[:-1]) if w.startswith("--")}
    assert flag["--base-url"] == "http://llm:8000"
    assert (flag["--model"], flag["--tokenizer"], flag["--served-model-name"]) == ("Qwen/Qwen3-8B",) * 2 + ("llm",)
    assert flag["--percentile-metrics"] == "ttft,tpot,itl,e2el"
    assert flag["--metric-percentiles"] == "50,90,99,99.5"  # the SLO's 99.5th percentile too
    metadata = words[words.index("--metadata") + 1 : words.index("--metadata") + 4]
    assert metadata == ["instance_type=g6e.xlarge", "tensor_parallel=1", "replicas=1"]
    assert {"--save-result", "--append-result", "--ignore-eos"} <= set(words)
    assert script.splitlines()[-2:] == [f"echo '{RESULTS_MARKER}'", "cat /results/llm-benchmark.jsonl"]
    assert {"name": "HF_HOME", "value": "/scratch/huggingface"} in container["env"]


def test_network_policies_open_only_the_server_port_between_client_and_server(benchmarked: Any) -> None:
    objects = rendered(benchmarked[0])
    client = objects["NetworkPolicy/llm-benchmark-client"]["spec"]
    assert client["podSelector"] == {"matchLabels": {"eks-ml.io/benchmark-of": "llm"}}
    to_server, https = client["egress"]  # Hub weights: the tokenizer is downloaded
    assert to_server["to"] == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "llm"}}}]
    assert to_server["ports"] == [{"protocol": "TCP", "port": 8000}]
    assert https["ports"] == [{"protocol": "TCP", "port": 443}]
    server = objects["NetworkPolicy/llm-benchmark-server"]["spec"]
    assert server["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "llm"}}
    assert server["ingress"][0]["from"] == [{"podSelector": {"matchLabels": {"eks-ml.io/benchmark-of": "llm"}}}]
    # S3 weights: the client reads the tokenizer from the same read-only claim and needs no HTTPS.
    s3_client = objects["NetworkPolicy/llm-inf2-benchmark-client"]["spec"]
    assert len(s3_client["egress"]) == 1
    job = objects["Job/llm-inf2-benchmark"]["spec"]["template"]["spec"]
    assert {"name": "weights", "persistentVolumeClaim": {"claimName": "llm-inf2-weights", "readOnly": True}} in job[
        "volumes"
    ]


BAD: list[Any] = [
    pytest.param(
        {"benchmarks": [BenchmarkJobProps(service="other")]},
        r"benchmarks\[0\].service='other': allowed a model service of this cluster \(llm\)",
        id="unknown-service",
    ),
    pytest.param(
        {"benchmarks": [BenchmarkJobProps(service="llm", concurrency=(4, 2))]},
        r"benchmarks\[0\].concurrency=\(4, 2\): allowed ascending whole numbers",
        id="descending",
    ),
    pytest.param(
        {"benchmarks": [BenchmarkJobProps(service="llm", input_tokens=8000, output_tokens=512)]},
        r"benchmarks\[0\].input_tokens=8512: allowed input_tokens \+ output_tokens within the service's max_model_len",
        id="too-long",
    ),
    pytest.param(
        {"benchmarks": [BenchmarkJobProps(service="llm", replicas=5)]},
        r"benchmarks\[0\].replicas=5: allowed at most the service's max_replicas \(4\)",
        id="replicas",
    ),
    pytest.param(
        {"benchmarks": [BenchmarkJobProps(service="llm")] * 2},
        r"benchmarks.service='llm': allowed one benchmark per service",
        id="twice",
    ),
    pytest.param(
        {"benchmarks": [BenchmarkJobProps(service="llm")], "pools": [NodePoolProps(name="gpu", kind=PoolKind.NVIDIA)]},
        r"allowed a cluster with a CPU node pool for the load generator",
        id="no-cpu-pool",
    ),
    pytest.param(
        {"benchmarks": [BenchmarkJobProps(service="llm", output_tokens="256")]},  # type: ignore[arg-type]
        r"benchmarks\[0\].output_tokens='256'",
        id="string-tokens",
    ),
    pytest.param({"benchmarks": ["llm"]}, r"benchmarks", id="not-props"),
]


@pytest.mark.parametrize(("props", "message"), BAD)
def test_bad_benchmarks_are_refused(props: dict[str, Any], message: str) -> None:
    service: ModelServiceProps = GPU
    with pytest.raises(ValidationError, match=message):
        synth(service, **props)
