from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import Duration, assertions

from eks_ml import BaseClusterProps, MlVpc, MlVpcProps, ValidationError, catalog
from eks_ml.inference import InferenceCluster, InferenceClusterProps, NodePoolProps, PoolKind
from eks_ml.inference.fit import fits, types_that_fit, weight_gib
from eks_ml.inference.load_balancer import controller_policy
from eks_ml.inference.model_service import (
    VLLM_NEURON_IMAGE,
    VLLM_NVIDIA_IMAGE,
    ClaimWeights,
    HubWeights,
    ModelServiceProps,
    S3Weights,
)

from .support.manifests import requires_chart_cache, validate_objects
from .support.synth import joined, library_stack, manifest_id, of_type, resource_id

HELM = "Custom::AWSCDK-EKS-HelmChart"
CERTIFICATE = "arn:aws:acm:us-west-2:111111111111:certificate/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
GPU = ModelServiceProps(
    name="llm", instance_type="g6e.xlarge", weights=HubWeights(model_id="Qwen/Qwen3-8B"), parameters_billions=8.2
)
NEURON = ModelServiceProps(
    name="llm-inf2",
    instance_type="inf2.8xlarge",
    weights=S3Weights(bucket="model-weights", prefix="qwen3-8b/"),
    parameters_billions=8.2,
    tensor_parallel=2,
    load_timeout=Duration.minutes(45),
    public=True,
    certificate_arn=CERTIFICATE,
    allowed_cidrs=["203.0.113.0/24"],
)


def synth(
    *services: ModelServiceProps, auto_mode: bool = False, **props: Any
) -> tuple[InferenceCluster, dict[str, Any]]:
    _, stack = library_stack()
    network = MlVpc(stack, "Network", MlVpcProps(availability_zones=("us-west-2a", "us-west-2b")))
    cluster = InferenceCluster(
        stack,
        "Inference",
        InferenceClusterProps(
            base=BaseClusterProps(vpc=network.vpc, cluster_name="serve", auto_mode=auto_mode),
            model_services=services,
            **props,
        ),
    )
    return cluster, assertions.Template.from_stack(stack).to_json()


@pytest.fixture(scope="module")
def served() -> tuple[InferenceCluster, dict[str, Any]]:
    return synth(GPU, NEURON)


def objects(cluster: InferenceCluster, service: str) -> dict[str, dict[str, Any]]:
    return {o["kind"]: o for o in cluster.service_charts[service].to_json()}


def server(cluster: InferenceCluster, service: str) -> tuple[dict[str, Any], dict[str, Any]]:
    pod = objects(cluster, service)["Deployment"]["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    return pod, container


def test_deployment_is_sized_from_the_catalog_and_left_to_the_autoscaler(served: Any) -> None:
    cluster, _ = served
    deployment = objects(cluster, "llm")["Deployment"]
    assert "replicas" not in deployment["spec"]
    pod, container = server(cluster, "llm")
    assert container["image"] == VLLM_NVIDIA_IMAGE == "vllm/vllm-openai:v0.11.0"
    assert container["resources"]["limits"] == {"nvidia.com/gpu": "1"}
    assert container["resources"]["requests"] == {"cpu": "3", "memory": "26214Mi", "nvidia.com/gpu": "1"}
    args = container["args"]
    assert args[args.index("--tensor-parallel-size") + 1] == "1"
    assert args[args.index("--served-model-name") + 1] == "llm"
    assert args[args.index("--model") + 1] == "Qwen/Qwen3-8B"
    assert pod["spec"]["nodeSelector"] == {"node.kubernetes.io/instance-type": "g6e.xlarge", "eks-ml.io/pool": "gpu"}
    assert pod["spec"]["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]


def test_neuron_service_requests_devices_for_its_neuron_cores(served: Any) -> None:
    cluster, _ = served
    pod, container = server(cluster, "llm-inf2")
    assert container["image"] == VLLM_NEURON_IMAGE
    assert container["resources"]["limits"] == {"aws.amazon.com/neuron": "1"}
    args = container["args"]
    assert args[args.index("--tensor-parallel-size") + 1] == "2"
    assert args[args.index("--model") + 1] == "/models"
    assert pod["spec"]["nodeSelector"]["eks-ml.io/pool"] == "inferentia"


def test_probes_termination_and_security(served: Any) -> None:
    cluster, _ = served
    pod, container = server(cluster, "llm")
    assert container["startupProbe"]["failureThreshold"] == 120 and container["startupProbe"]["periodSeconds"] == 10
    assert container["startupProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert container["readinessProbe"]["httpGet"]["path"] == "/health"
    assert container["livenessProbe"]["failureThreshold"] == 4
    assert container["lifecycle"] == {"preStop": {"sleep": {"seconds": 15}}}
    assert pod["spec"]["terminationGracePeriodSeconds"] == 120
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert pod["spec"]["automountServiceAccountToken"] is False
    assert {v["name"]: v for v in pod["spec"]["volumes"]}["dshm"]["emptyDir"] == {
        "medium": "Memory",
        "sizeLimit": "4Gi",
    }
    spread = {c["topologyKey"]: c for c in pod["spec"]["topologySpreadConstraints"]}
    assert set(spread) == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
    assert all(c["whenUnsatisfiable"] == "ScheduleAnyway" for c in spread.values())
    assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    (inf_startup,) = [server(cluster, "llm-inf2")[1]["startupProbe"]["failureThreshold"]]
    assert inf_startup == 270  # 45 minutes


def test_autoscaler_scales_on_queue_depth_with_cpu_fallback(served: Any) -> None:
    cluster, _ = served
    hpa = objects(cluster, "llm")["HorizontalPodAutoscaler"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    spec = hpa["spec"]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "llm"}
    assert (spec["minReplicas"], spec["maxReplicas"]) == (1, 4)
    pods, cpu = spec["metrics"]
    assert pods == {
        "type": "Pods",
        "pods": {
            "metric": {"name": "vllm_num_requests_waiting"},
            "target": {"type": "AverageValue", "averageValue": 4},
        },
    }
    assert cpu == {
        "type": "Resource",
        "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}},
    }
    assert spec["behavior"]["scaleUp"]["stabilizationWindowSeconds"] == 0
    assert spec["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 1200  # the model load time
    neuron = objects(cluster, "llm-inf2")["HorizontalPodAutoscaler"]["spec"]["behavior"]["scaleDown"]
    assert neuron["stabilizationWindowSeconds"] == 2700


def test_service_budget_and_ingress(served: Any) -> None:
    cluster, _ = served
    found = objects(cluster, "llm")
    assert found["Service"]["spec"]["ports"] == [{"name": "http", "port": 8000, "targetPort": "http"}]
    assert found["PodDisruptionBudget"]["spec"]["maxUnavailable"] == 1
    ingress = found["Ingress"]
    assert ingress["spec"]["ingressClassName"] == "alb"
    assert ingress["metadata"]["annotations"]["alb.ingress.kubernetes.io/scheme"] == "internal"
    assert ingress["metadata"]["annotations"]["alb.ingress.kubernetes.io/target-type"] == "ip"
    assert (
        objects(cluster, "llm-inf2")["Ingress"]["metadata"]["annotations"]["alb.ingress.kubernetes.io/scheme"]
        == "internet-facing"
    )


def test_s3_weights_mount_read_only_through_mountpoint(served: Any) -> None:
    cluster, template = served
    found = objects(cluster, "llm-inf2")
    volume = found["PersistentVolume"]["spec"]
    assert volume["csi"]["driver"] == "s3.csi.aws.com"
    assert volume["csi"]["volumeAttributes"] == {
        "bucketName": "model-weights",
        "cache": "emptyDir",
        "cacheEmptyDirSizeLimit": "19Gi",
    }
    assert volume["accessModes"] == ["ReadOnlyMany"] and "prefix qwen3-8b/" in volume["mountOptions"]
    assert found["PersistentVolumeClaim"]["spec"]["volumeName"] == found["PersistentVolume"]["metadata"]["name"]
    addon = template["Resources"][resource_id(template, "AWS::EKS::Addon", AddonName="aws-mountpoint-s3-csi-driver")]
    (association,) = addon["Properties"]["PodIdentityAssociations"]
    role = association["RoleArn"]["Fn::GetAtt"][0]
    (policy,) = [
        p for p in of_type(template, "AWS::IAM::Policy").values() if p["Properties"]["Roles"] == [{"Ref": role}]
    ]
    statements = {s["Action"]: json.dumps(s["Resource"]) for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    assert set(statements) == {"s3:ListBucket", "s3:GetObject"}
    assert "s3:::model-weights/qwen3-8b/*" in statements["s3:GetObject"]


def test_claim_and_gated_hub_weights() -> None:
    claim = ModelServiceProps(
        name="c",
        instance_type="g6e.xlarge",
        weights=ClaimWeights(claim_name="models", path="qwen"),
        parameters_billions=8,
    )
    gated = ModelServiceProps(
        name="g",
        instance_type="g6e.xlarge",
        weights=HubWeights(model_id="meta-llama/Llama-3.1-8B-Instruct", token_secret="hf"),
        parameters_billions=8,
    )
    cluster, template = synth(claim, gated)
    _, container = server(cluster, "c")
    assert container["args"][container["args"].index("--model") + 1] == "/models/qwen"
    _, container = server(cluster, "g")
    assert {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}}} in container["env"]
    assert not of_type(template, "AWS::EKS::Addon") or "aws-mountpoint-s3-csi-driver" not in json.dumps(template)


def test_controllers_and_metrics_pipeline(served: Any) -> None:
    _, template = served
    controller = template["Resources"][resource_id(template, HELM, Release="aws-load-balancer-controller")]
    values = json.loads(joined(controller["Properties"]["Values"]))
    assert values["clusterName"] == "serve" and values["serviceAccount"]["name"] == "aws-load-balancer-controller"
    association = template["Resources"][
        resource_id(template, "AWS::EKS::PodIdentityAssociation", ServiceAccount="aws-load-balancer-controller")
    ]
    role = association["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    (policy,) = [
        p for p in of_type(template, "AWS::IAM::Policy").values() if p["Properties"]["Roles"] == [{"Ref": role}]
    ]

    def actions(statements: list[dict[str, Any]]) -> set[str]:
        return {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}

    # CDK merges statements that share conditions; every upstream action must still be granted.
    assert actions(policy["Properties"]["PolicyDocument"]["Statement"]) == actions(controller_policy()["Statement"])
    adapter = template["Resources"][resource_id(template, HELM, Release="prometheus-adapter")]
    (rule,) = json.loads(joined(adapter["Properties"]["Values"]))["rules"]["custom"]
    assert rule["name"] == {"matches": "vllm:num_requests_waiting", "as": "vllm_num_requests_waiting"}
    assert resource_id(template, HELM, Release="prometheus") in adapter["DependsOn"]


def test_services_are_applied_after_pools_namespace_and_load_balancer_controller(served: Any) -> None:
    _, template = served
    manifests = of_type(template, "Custom::AWSCDK-EKS-KubernetesResource")
    (workloads,) = [
        r
        for r in manifests.values()
        if '"kind":"HorizontalPodAutoscaler"' in joined(r["Properties"]["Manifest"]).replace(" ", "")
    ]
    kinds = [o["kind"] for o in json.loads(joined(workloads["Properties"]["Manifest"]))]
    assert kinds.count("HorizontalPodAutoscaler") == 2
    # The NodePools come first in the same manifest; Karpenter and the load balancer controller (whose webhooks
    # admit Services) are installed before it.
    assert kinds.index("NodePool") < kinds.index("Deployment")
    assert {
        resource_id(template, HELM, Release="karpenter"),
        resource_id(template, HELM, Release="aws-load-balancer-controller"),
    } <= set(workloads["DependsOn"])
    # The model services' namespace is in the prelude, which every release waits for.
    (prelude,) = [
        logical_id
        for logical_id, r in manifests.items()
        if ("Namespace", "inference")
        in [(o["kind"], o["metadata"]["name"]) for o in json.loads(joined(r["Properties"]["Manifest"]))]
    ]
    assert (
        prelude
        in template["Resources"][resource_id(template, HELM, Release="aws-load-balancer-controller")]["DependsOn"]
    )


@requires_chart_cache
def test_service_objects_pass_the_validator(served: Any) -> None:
    cluster, _ = served
    assert validate_objects([o for chart in cluster.service_charts.values() for o in chart.to_json()]) == []


def test_auto_mode_uses_its_own_load_balancing() -> None:
    cluster, template = synth(GPU, auto_mode=True)
    assert cluster.load_balancer is None
    releases = {r["Properties"]["Release"] for r in of_type(template, HELM).values()}
    assert releases == {"prometheus", "prometheus-adapter"}
    namespace = json.loads(
        joined(template["Resources"][manifest_id(template, "IngressClass")]["Properties"]["Manifest"])
    )
    (ingress_class,) = [o for o in namespace if o["kind"] == "IngressClass"]
    assert ingress_class["spec"] == {"controller": "eks.amazonaws.com/alb"}


# --- model-to-hardware fit --------------------------------------------------------------------------------


def test_fit_arithmetic() -> None:
    assert weight_gib(8.2, 2) == pytest.approx(15.27, abs=0.01)
    assert fits(catalog.lookup("g6e.xlarge"), 1, weight_gib(8.2, 2))
    assert not fits(catalog.lookup("g5.xlarge"), 1, weight_gib(8.2, 2))  # 22.4 GiB A10G minus headroom
    assert fits(catalog.lookup("g5.xlarge"), 1, weight_gib(8.2, 1))  # fp8/int8 fits
    # 70B at bf16 is 130 GiB: four L40S hold 120.7 GiB usable, eight hold 241.4.
    assert types_that_fit(catalog.AcceleratorVendor.NVIDIA, weight_gib(70, 2)) == ["g6e.48xlarge"]


def test_model_that_does_not_fit_names_types_that_do() -> None:
    too_big = ModelServiceProps(
        name="l70",
        instance_type="g6e.12xlarge",
        weights=HubWeights(model_id="meta-llama/Llama-3.3-70B-Instruct"),
        parameters_billions=70.6,
    )
    with pytest.raises(
        ValidationError,
        match=r"instance_type='g6e.12xlarge': allowed accelerator memory for 131.5 GiB.*Fix: use g6e.48xlarge",
    ):
        synth(too_big)


BAD = [
    pytest.param(
        {"tensor_parallel": 3}, r"tensor_parallel=3: allowed 1 to 1 .*a power of two", id="tp-not-power-of-two"
    ),
    pytest.param(
        {"instance_type": "g6e.12xlarge", "tensor_parallel": 8},
        r"tensor_parallel=8: allowed 1 to 4",
        id="tp-above-gpus",
    ),
    pytest.param(
        {"instance_type": "p5.48xlarge"}, r"an inference type of the g5, g6, g6e, inf2 families", id="training-type"
    ),
    pytest.param({"instance_type": "g6e.xlarg"}, r"did you mean g6e.xlarge", id="unknown-type"),
    pytest.param({"bytes_per_parameter": 3}, r"0.5, 1, 2 or 4 bytes per parameter", id="bad-dtype"),
    pytest.param({"parameters_billions": 0}, r"a positive parameter count", id="no-size"),
    pytest.param({"min_replicas": 3, "max_replicas": 2}, r"1 <= min_replicas <= max_replicas", id="min-above-max"),
    pytest.param({"queue_target": 0}, r"queue_target >= 1", id="zero-queue-target"),
    pytest.param(
        {"load_timeout": Duration.hours(2)}, r"load_timeout='120 min': allowed 1 to 60 minutes", id="long-load"
    ),
    pytest.param({"max_model_len": 16}, r"at least 128 tokens", id="tiny-context"),
    pytest.param({"weights": S3Weights(bucket="Models_Bucket")}, r"weights.bucket='Models_Bucket'", id="bad-bucket"),
    pytest.param({"weights": S3Weights(bucket="models", prefix="/qwen")}, r"drop the leading /", id="bad-prefix"),
    pytest.param({"weights": HubWeights(model_id="qwen3-8b")}, r"an org/name Hub id", id="bad-hub-id"),
    pytest.param({"name": "Qwen_8B"}, r"a DNS-1123 label", id="bad-name"),
]


@pytest.mark.parametrize(("changes", "message"), BAD)
def test_bad_model_service(changes: dict[str, Any], message: str) -> None:
    service = ModelServiceProps(**{**GPU.__dict__, **changes})
    with pytest.raises(ValidationError, match=message):
        synth(service)


def test_duplicate_service_names() -> None:
    with pytest.raises(ValidationError, match=r"model_services.name='llm': allowed unique service names"):
        synth(GPU, GPU)


def test_service_needs_a_pool_that_launches_its_type() -> None:
    with pytest.raises(ValidationError, match=r"a type some node pool may launch"):
        synth(GPU, pools=[NodePoolProps(name="cpu", kind=PoolKind.CPU)])


def test_chart_snapshots(served: Any, snapshot) -> None:  # type: ignore[no-untyped-def]
    import cdk8s

    cluster, _ = served
    charts = {name: cdk8s.Yaml.stringify(*chart.to_json()) for name, chart in sorted(cluster.service_charts.items())}
    charts["node-pools"] = cdk8s.Yaml.stringify(*cluster.pools_chart.to_json())
    assert set(charts) == {"llm", "llm-inf2", "node-pools"}
    assert charts == snapshot


def test_the_controller_policy_is_the_same_from_the_jsii_cache_and_from_the_bundle(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from eks_ml.inference import load_balancer

    read = load_balancer.controller_policy.__wrapped__  # past the functools cache
    from_cache = read()
    monkeypatch.setenv("JSII_RUNTIME_PACKAGE_CACHE", "disabled")  # then only the bundle is read
    assert read() == from_cache
    assert {"Version", "Statement"} <= set(from_cache)
