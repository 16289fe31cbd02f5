"""Batch inference (eks_ml.inference.batch): the Indexed Job, its Kueue queue on the pools, its scoped role,
the Kueue release only where a batch job exists, placement proven by the cluster model, and bad input."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from eks_ml import ValidationError
from eks_ml.inference import (
    BatchInferenceJobProps,
    InferenceCluster,
    NodePoolProps,
    PoolKind,
    S3Prefix,
    default_pools,
)
from eks_ml.inference.model_service import ClaimWeights, HubWeights, S3Weights
from eks_ml.k8s.batch_inference import RUNNER_SCRIPT

from .support.inference import inference_cluster
from .support.manifests import applied_objects, requires_chart_cache, validate_objects
from .support.synth import Synthesis, joined, manifest_id, of_type

HELM = "Custom::AWSCDK-EKS-HelmChart"
JOB = BatchInferenceJobProps(
    name="summaries",
    instance_type="g6.xlarge",
    model=HubWeights(model_id="Qwen/Qwen3-8B"),
    parameters_billions=8,
    input=S3Prefix(bucket="data-bucket", prefix="prompts/"),
    output=S3Prefix(bucket="data-bucket", prefix="results/"),
    shards=6,
    parallelism=3,
)


def synth(**props: Any) -> tuple[InferenceCluster, dict[str, Any]]:
    return inference_cluster(**props)


@pytest.fixture(scope="module")
def batch() -> tuple[InferenceCluster, dict[str, Any]]:
    return synth(batch_jobs=[JOB, dataclasses.replace(JOB, name="spot-only", capacity_types=["spot"])])


def kinds(cluster: InferenceCluster) -> dict[tuple[str, str], dict[str, Any]]:
    assert cluster.batch is not None
    objects = [*cluster.batch.queues_chart.to_json(), *cluster.batch.jobs_chart.to_json()]
    return {(o["kind"], o["metadata"]["name"]): o for o in objects}


def test_indexed_job_one_shard_per_index_with_retries_that_skip_disruptions(batch: Any) -> None:
    cluster, _ = batch
    job = kinds(cluster)[("Job", "summaries")]
    assert job["metadata"]["labels"] == {"kueue.x-k8s.io/queue-name": "batch"}
    spec = job["spec"]
    assert (spec["completionMode"], spec["completions"], spec["parallelism"]) == ("Indexed", 6, 3)
    assert spec["backoffLimitPerIndex"] == 3
    assert "suspend" not in spec  # Kueue suspends on creation; a declared suspend would re-suspend on update
    rules = spec["podFailurePolicy"]["rules"]
    assert rules[0] == {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}
    assert rules[1]["action"] == "FailIndex" and rules[1]["onExitCodes"]["values"] == [2, 3]
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"  # required by podFailurePolicy and backoffLimitPerIndex
    assert pod["serviceAccountName"] == "batch-summaries"
    (container,) = pod["containers"]
    assert container["command"] == ["python3", f"/opt/eks-ml/{RUNNER_SCRIPT}"]
    args = dict(a.removeprefix("--").split("=", 1) for a in container["args"])
    assert args["input"] == "s3://data-bucket/prompts/" and args["output"] == "s3://data-bucket/results/"
    assert (args["shards"], args["model"], args["tensor-parallel"]) == ("6", "Qwen/Qwen3-8B", "1")
    # Sized like a model service on the same type: one L4 and 80% of the host (g6.xlarge: 4 vCPU, 16 GiB).
    assert container["resources"] == {
        "requests": {"cpu": "3", "memory": "13107Mi", "nvidia.com/gpu": "1"},
        "limits": {"nvidia.com/gpu": "1"},
    }
    script = kinds(cluster)[("ConfigMap", "eks-ml-batch-inference")]["data"][RUNNER_SCRIPT]
    assert "def run(" in script and "SUCCESS_MARKER" in script


def test_one_flavor_per_pool_carries_its_labels_and_capacity_stays_with_the_job(batch: Any) -> None:
    cluster, _ = batch
    objects = kinds(cluster)
    pools = {o["metadata"]["name"]: o for o in cluster.pools_chart.to_json() if o["kind"] == "NodePool"}
    gpu_labels = pools["gpu"]["spec"]["template"]["metadata"]["labels"]
    flavors = {name: o["spec"] for (kind, name), o in objects.items() if kind == "ResourceFlavor"}
    assert list(flavors) == ["gpu"]  # both jobs share the pool's one flavor and quota
    assert flavors["gpu"]["nodeLabels"].items() <= gpu_labels.items()  # Kueue's selector matches the pool's nodes
    assert flavors["gpu"]["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    spot_pod = objects[("Job", "spot-only")]["spec"]["template"]["spec"]
    assert spot_pod["nodeSelector"]["karpenter.sh/capacity-type"] == "spot"
    either_pod = objects[("Job", "summaries")]["spec"]["template"]["spec"]
    assert "karpenter.sh/capacity-type" not in either_pod["nodeSelector"]  # Karpenter picks, Spot first
    queue = objects[("ClusterQueue", "batch")]["spec"]
    (group,) = queue["resourceGroups"]
    assert group["coveredResources"] == ["cpu", "memory", "nvidia.com/gpu"]
    # Kueue admits no more than the NodePool may launch: the pool's limits are the quota.
    quotas = {r["name"]: r["nominalQuota"] for r in group["flavors"][0]["resources"]}
    assert quotas["nvidia.com/gpu"] == 32 and quotas["cpu"] == 1024
    assert objects[("LocalQueue", "batch")]["spec"] == {"clusterQueue": "batch"}
    assert objects[("Namespace", "batch")]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "baseline"


def statements(template: dict[str, Any], role_prefix: str) -> list[dict[str, Any]]:
    (policy,) = [
        r for k, r in of_type(template, "AWS::IAM::Policy").items() if k.startswith(f"InferenceBatch{role_prefix}")
    ]
    return [
        json.loads(json.dumps(s).replace('{"Ref": "AWS::Partition"}', '"aws"'))
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def grants(template: dict[str, Any], role_prefix: str) -> set[tuple[str, str, str]]:
    """(action, resource ARN, condition) of a role's policy, one per resource (CDK merges statements)."""
    found = set()
    for statement in statements(template, role_prefix):
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        for resource in resources:
            arn = "".join(resource["Fn::Join"][1])
            found.add((statement["Action"], arn, json.dumps(statement.get("Condition"))))
    return found


def test_role_reads_the_input_prefix_and_writes_the_output_prefix_only(batch: Any) -> None:
    _, template = batch
    assert grants(template, "RoleSummaries") == {
        ("s3:ListBucket", "arn:aws:s3:::data-bucket", '{"StringLike": {"s3:prefix": ["prompts/*"]}}'),
        ("s3:GetObject", "arn:aws:s3:::data-bucket/prompts/*", "null"),
        ("s3:ListBucket", "arn:aws:s3:::data-bucket", '{"StringLike": {"s3:prefix": ["results/*"]}}'),
        ("s3:PutObject", "arn:aws:s3:::data-bucket/results/*", "null"),
    }
    associations = [r["Properties"] for r in of_type(template, "AWS::EKS::PodIdentityAssociation").values()]
    assert {"Namespace": "batch", "ServiceAccount": "batch-summaries"}.items() <= next(
        a for a in associations if a["ServiceAccount"] == "batch-summaries"
    ).items()


def test_s3_model_is_readable_too() -> None:
    job = dataclasses.replace(JOB, model=S3Weights(bucket="models", prefix="qwen3-8b/"))
    cluster, template = synth(batch_jobs=[job])
    assert ("s3:GetObject", "arn:aws:s3:::models/qwen3-8b/*", "null") in grants(template, "RoleSummaries")
    container = kinds(cluster)[("Job", "summaries")]["spec"]["template"]["spec"]["containers"][0]
    assert "--model=s3://models/qwen3-8b/" in container["args"]


def test_kueue_is_installed_only_with_a_batch_job(batch: Any) -> None:
    _, with_batch = batch
    releases = [r["Properties"]["Release"] for r in of_type(with_batch, HELM).values()]
    assert "kueue" in releases
    cluster, without = synth()
    assert cluster.batch is None
    assert "kueue" not in [r["Properties"]["Release"] for r in of_type(without, HELM).values()]
    # The inference cluster's controller configuration: Jobs only, no all-or-nothing wait for single pods.
    (kueue,) = [r for r in of_type(with_batch, HELM).values() if r["Properties"]["Release"] == "kueue"]
    config = json.loads(joined(kueue["Properties"]["Values"]))
    yaml_text = config["managerConfig"]["controllerManagerConfigYaml"]
    assert "batch/job" in yaml_text and "jobset" not in yaml_text and "waitForPodsReady" not in yaml_text


def test_patterns_app_applies_the_batch_job_and_its_queue(inference_patterns_synth: Synthesis) -> None:
    objects = applied_objects(inference_patterns_synth.templates["Patterns"])
    batch = [
        o
        for o in objects
        if o["metadata"].get("namespace") == "batch" or o["kind"] in ("ResourceFlavor", "ClusterQueue")
    ]
    assert {o["kind"] for o in batch} >= {
        "ResourceFlavor",
        "ClusterQueue",
        "LocalQueue",
        "Job",
        "ServiceAccount",
        "ConfigMap",
    }


@requires_chart_cache
def test_batch_objects_validate_against_the_pinned_kueue_crds(batch: Any) -> None:
    cluster, _ = batch
    objects = list(kinds(cluster).values())
    assert validate_objects(objects) == []
    # The gate is not blind: a ClusterQueue flavor missing a covered resource breaks Kueue's CEL rule/schema.
    broken = json.loads(json.dumps(kinds(cluster)[("ClusterQueue", "batch")]))
    broken["spec"]["resourceGroups"][0]["flavors"][0]["resources"].pop()
    assert validate_objects([broken]) != []


def test_a_job_that_cannot_land_fails_synth() -> None:
    """The cluster model places the Job's pods: a Spot-only job on an On-Demand-only pool has no node."""
    pools = [NodePoolProps(name="gpu", kind=PoolKind.NVIDIA, capacity_types=["on-demand"])]
    with pytest.raises(
        ValidationError, match=r"Job batch/summaries.*capacity-type=spot \(nodes have \['on-demand'\]\)"
    ):
        synth(pools=pools, batch_jobs=[dataclasses.replace(JOB, capacity_types=["spot"])])
    synth(pools=pools, batch_jobs=[JOB])  # the same job allowed On-Demand lands


BAD = [
    ({"output": S3Prefix(bucket="data-bucket", prefix="prompts/out/")}, r"batch_jobs\[0\]\.output.*outside the input"),
    ({"input": S3Prefix(bucket="s3://data-bucket", prefix="prompts/")}, r"input\.bucket.*S3 bucket name"),
    ({"input": S3Prefix(bucket="data-bucket", prefix="prompts")}, r"input\.prefix.*ending in /"),
    ({"output": S3Prefix(bucket="data-bucket", prefix="/results/")}, r"output\.prefix"),
    ({"parallelism": 7}, r"parallelism.*at most shards \(6\)"),
    ({"shards": 0}, r"shards"),
    ({"capacity_types": ["spot", "spot"]}, r"capacity_types"),
    ({"capacity_types": ["reserved"]}, r"capacity_types"),
    ({"parameters_billions": 70}, r"instance_type.*accelerator memory"),
    ({"tensor_parallel": 2}, r"tensor_parallel"),
    ({"instance_type": "inf2.xlarge"}, r"NVIDIA inference type"),
    ({"instance_type": "p5.48xlarge"}, r"NVIDIA inference type"),
    ({"model": ClaimWeights(claim_name="weights")}, r"model.*HubWeights"),
    ({"model": HubWeights(model_id="qwen")}, r"model_id"),
    ({"temperature": 3.0}, r"temperature"),
    ({"name": "Bad_Name"}, r"name"),
    ({"retries_per_index": -1}, r"retries_per_index"),
]


@pytest.mark.parametrize(("changes", "message"), BAD)
def test_bad_batch_job(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        synth(batch_jobs=[dataclasses.replace(JOB, **changes)])


def test_duplicate_names_and_a_type_no_pool_launches() -> None:
    with pytest.raises(ValidationError, match="unique batch job names"):
        synth(batch_jobs=[JOB, JOB])
    cpu_and_neuron = [p for p in default_pools() if p.kind is not PoolKind.NVIDIA]
    with pytest.raises(ValidationError, match=r"batch_jobs\[0\]\.instance_type.*some node pool"):
        synth(pools=cpu_and_neuron, batch_jobs=[JOB])


def test_jobs_are_applied_after_their_pod_identity_associations(batch: Any) -> None:
    # EKS injects Pod Identity credentials into a pod when it is created, and only if its service account has an
    # association then: a job pod created first would fail to read S3.
    cluster, template = batch
    workloads = template["Resources"][manifest_id(template, "LocalQueue")]
    accounts = {o["metadata"]["name"] for o in cluster.batch.jobs_chart.to_json() if o["kind"] == "ServiceAccount"}
    associations = of_type(template, "AWS::EKS::PodIdentityAssociation")
    ids = [i for i, r in associations.items() if r["Properties"]["ServiceAccount"] in accounts]
    assert len(ids) == len(accounts) == 2
    assert set(ids) <= set(workloads.get("DependsOn", []))
