"""NVIDIA Triton services (a GPU pool and Fargate) and the cluster's Fargate profile: IAM scoped to the
model repository prefix and the one service account, the objects, the metric the autoscaler reads and the
adapter rule that serves it, placement on the cluster model, and the mistakes refused at synth."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from aws_cdk import App, Duration, Environment, Stack, assertions

from eks_ml import BaseClusterProps, MlVpc, MlVpcProps, ValidationError
from eks_ml.inference import (
    FargateProfileProps,
    FargateSelector,
    InferenceCluster,
    InferenceClusterProps,
    S3ModelRepository,
    TritonServiceProps,
)
from eks_ml.inference.metrics import TRITON_QUEUE_SERIES, adapter_values
from eks_ml.inference.model_service import HubWeights, ModelServiceProps

from .support.manifests import requires_chart_cache, validate_objects
from .support.synth import CDK_CONTEXT, joined, of_type, resource_id, scratch_dir

HELM = "Custom::AWSCDK-EKS-HelmChart"
ACCOUNT = "111122223333"
GPU = TritonServiceProps(
    name="vision",
    model_repository=S3ModelRepository(bucket="models", prefix="triton/vision"),
    instance_type="g6.xlarge",
)
CPU = TritonServiceProps(
    name="tabular",
    model_repository=S3ModelRepository(bucket="models", prefix="triton/tabular/"),
    fargate_cpu=1,
    fargate_memory_gib=4,
)


def synth(
    *services: TritonServiceProps, cluster_name: str = "serve", **props: Any
) -> tuple[InferenceCluster, dict[str, Any]]:
    app = App(
        context=dict(CDK_CONTEXT),
        outdir=str(scratch_dir("triton-")),
        analytics_reporting=False,
        builtin_cloud_formation_validation=False,
    )
    # A known account and region: the service accounts name their roles by plain ARNs (GitOps-exportable).
    stack = Stack(app, "Lib", env=Environment(account=ACCOUNT, region="us-west-2"))
    network = MlVpc(stack, "Network", MlVpcProps(availability_zones=("us-west-2a", "us-west-2b")))
    cluster = InferenceCluster(
        stack,
        "Inference",
        InferenceClusterProps(
            base=BaseClusterProps(vpc=network.vpc, cluster_name=cluster_name),
            triton_services=services,
            **{"fargate": FargateProfileProps(), **props},
        ),
    )
    return cluster, assertions.Template.from_stack(stack).to_json()


@pytest.fixture(scope="module")
def served() -> tuple[InferenceCluster, dict[str, Any]]:
    return synth(GPU, CPU)


def objects(cluster: InferenceCluster, service: str) -> dict[str, dict[str, Any]]:
    return {o["kind"]: o for o in cluster.triton_charts[service].to_json()}


def server(cluster: InferenceCluster, service: str) -> tuple[dict[str, Any], dict[str, Any]]:
    pod = objects(cluster, service)["Deployment"]["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    return pod, container


# --- Fargate profile --------------------------------------------------------------------------------------


def test_fargate_profile_runs_in_private_subnets_with_a_cluster_scoped_execution_role(served: Any) -> None:
    _, template = served
    (profile,) = of_type(template, "AWS::EKS::FargateProfile").values()
    properties = profile["Properties"]
    assert properties["FargateProfileName"] == "serverless"
    assert properties["Selectors"] == [
        {"Namespace": "inference", "Labels": [{"Key": "eks-ml.io/compute", "Value": "fargate"}]}
    ]
    private = {
        logical_id
        for logical_id, subnet in of_type(template, "AWS::EC2::Subnet").items()
        if subnet["Properties"]["MapPublicIpOnLaunch"] is False
    }
    subnets = {ref["Ref"] for ref in properties["Subnets"]}
    assert subnets and subnets <= private
    role = template["Resources"][properties["PodExecutionRoleArn"]["Fn::GetAtt"][0]]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "eks-fargate-pods.amazonaws.com"}
    assert joined(trust["Condition"]["ArnLike"]["aws:SourceArn"]).endswith(":fargateprofile/serve/*")
    assert "AmazonEKSFargatePodExecutionRolePolicy" in json.dumps(role["ManagedPolicyArns"])


def test_workloads_are_applied_after_the_fargate_profile(served: Any) -> None:
    cluster, template = served
    profile = resource_id(template, "AWS::EKS::FargateProfile", FargateProfileName="serverless")
    # The Fargate scheduler takes only pods created after their profile exists.
    manifests = [
        r for r in of_type(template, "Custom::AWSCDK-EKS-KubernetesResource").values() if "tabular" in json.dumps(r)
    ]
    assert manifests
    assert all(profile in r.get("DependsOn", []) for r in manifests)


# --- IAM: the model repository ----------------------------------------------------------------------------


def role_of(template: dict[str, Any], name: str) -> tuple[str, dict[str, Any]]:
    logical_id = resource_id(template, "AWS::IAM::Role", RoleName=name)
    return logical_id, template["Resources"][logical_id]["Properties"]


def test_role_trusts_only_the_service_account_of_this_cluster(served: Any) -> None:
    _, template = served
    _, role = role_of(template, "serve-triton-tabular")
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Action"] == "sts:AssumeRoleWithWebIdentity"
    (provider,) = of_type(template, "AWS::IAM::OIDCProvider")
    assert trust["Principal"] == {"Federated": {"Ref": provider}}
    conditions = template["Resources"][trust["Condition"]["StringEquals"]["Fn::GetAtt"][0]]
    value = joined(conditions["Properties"]["Value"])
    assert value == ('{"TOKEN:sub":"system:serviceaccount:inference:tabular","TOKEN:aud":"sts.amazonaws.com"}')


def test_role_reads_only_its_repository_prefix(served: Any) -> None:
    _, template = served
    for name, prefix in (("tabular", "triton/tabular/"), ("vision", "triton/vision/")):
        logical_id, _ = role_of(template, f"serve-triton-{name}")
        (policy,) = [
            p
            for p in of_type(template, "AWS::IAM::Policy").values()
            if p["Properties"]["Roles"] == [{"Ref": logical_id}]
        ]
        statements = [
            (s["Action"], joined(s["Resource"]), s.get("Condition"))
            for s in policy["Properties"]["PolicyDocument"]["Statement"]
        ]
        assert statements == [
            ("s3:ListBucket", "arn:TOKEN:s3:::models", {"StringLike": {"s3:prefix": [f"{prefix}*"]}}),
            ("s3:GetObject", f"arn:TOKEN:s3:::models/{prefix}*", None),
        ]


def test_service_account_names_its_role_by_a_plain_arn(served: Any) -> None:
    cluster, _ = served
    account = objects(cluster, "tabular")["ServiceAccount"]
    assert account["metadata"]["annotations"] == {
        "eks.amazonaws.com/role-arn": f"arn:aws:iam::{ACCOUNT}:role/serve-triton-tabular"
    }
    pod, _ = server(cluster, "tabular")
    assert pod["spec"]["serviceAccountName"] == "tabular"


# --- objects ----------------------------------------------------------------------------------------------


def test_triton_reads_its_s3_repository_and_serves_three_ports(served: Any) -> None:
    cluster, _ = served
    pod, container = server(cluster, "vision")
    assert container["image"] == "nvcr.io/nvidia/tritonserver:26.07-py3"
    assert container["command"] == ["tritonserver"]
    assert container["args"][:4] == [
        "--model-repository=s3://models/triton/vision",
        "--http-port=8000",
        "--grpc-port=8001",
        "--metrics-port=8002",
    ]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["AWS_REGION"] == "us-west-2" and env["TRITON_AWS_MOUNT_DIRECTORY"] == "/model-cache"
    assert {(p["name"], p["containerPort"]) for p in container["ports"]} == {
        ("http", 8000),
        ("grpc", 8001),
        ("metrics", 8002),
    }
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert pod["metadata"]["annotations"] == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "8002",
        "prometheus.io/path": "/metrics",
    }
    service = objects(cluster, "vision")["Service"]
    assert [p["port"] for p in service["spec"]["ports"]] == [8000, 8001, 8002]
    ingress = objects(cluster, "vision")["Ingress"]
    assert ingress["metadata"]["annotations"]["alb.ingress.kubernetes.io/target-type"] == "ip"
    assert ingress["metadata"]["annotations"]["alb.ingress.kubernetes.io/scheme"] == "internal"


def test_gpu_replica_takes_one_gpu_of_its_pool(served: Any) -> None:
    cluster, _ = served
    pod, container = server(cluster, "vision")
    assert pod["spec"]["nodeSelector"] == {"node.kubernetes.io/instance-type": "g6.xlarge", "eks-ml.io/pool": "gpu"}
    assert container["resources"]["limits"] == {"nvidia.com/gpu": "1"}
    assert "--allow-gpu-metrics=false" not in container["args"]


def test_fargate_replica_is_sized_to_a_fargate_combination(served: Any) -> None:
    cluster, _ = served
    pod, container = server(cluster, "tabular")
    assert pod["metadata"]["labels"]["eks-ml.io/compute"] == "fargate"
    assert "nodeSelector" not in pod["spec"] and "tolerations" not in pod["spec"]
    # Requests = limits (Fargate runs pods Guaranteed); 256 MiB under 4 GB, which Fargate adds back.
    resources = {"cpu": "1000m", "memory": "3840Mi", "ephemeral-storage": "60Gi"}
    assert container["resources"] == {"requests": resources, "limits": resources}
    assert "--allow-gpu-metrics=false" in container["args"]


def test_network_policy_admits_the_load_balancer_to_http_and_scrapers_to_metrics(served: Any) -> None:
    cluster, _ = served
    policy = objects(cluster, "vision")["NetworkPolicy"]["spec"]
    http, metrics = policy["ingress"]
    assert [p["port"] for p in http["ports"]] == [8000] and all("ipBlock" in peer for peer in http["from"])
    assert [p["port"] for p in metrics["ports"]] == [8002]
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}} in metrics["from"]
    ((egress),) = policy["egress"]
    assert [p["port"] for p in egress["ports"]] == [443]  # S3 and STS only


@requires_chart_cache
def test_triton_objects_pass_the_validator(served: Any) -> None:
    cluster, _ = served
    for name in ("vision", "tabular"):
        assert validate_objects(cluster.triton_charts[name].to_json()) == []


# --- metrics and autoscaling ------------------------------------------------------------------------------


def served_metrics(values: dict[str, Any]) -> set[str]:
    """The custom metric names prometheus-adapter serves with these values."""
    return {rule["name"]["as"] for rule in values["rules"]["custom"]}


def test_autoscaler_metric_is_served_by_the_adapter_rule(served: Any) -> None:
    cluster, template = served
    adapter = template["Resources"][resource_id(template, HELM, Release="prometheus-adapter")]
    values = json.loads(joined(adapter["Properties"]["Values"]))
    for name in ("vision", "tabular"):
        queue, cpu = objects(cluster, name)["HorizontalPodAutoscaler"]["spec"]["metrics"]
        assert queue["pods"]["metric"]["name"] in served_metrics(values)
        assert queue["pods"]["target"] == {"type": "AverageValue", "averageValue": 8}
        assert cpu["resource"]["name"] == "cpu"
    (rule,) = [r for r in values["rules"]["custom"] if r["name"]["matches"] == TRITON_QUEUE_SERIES]
    # The series name as Triton v2.71.0 documents it (docs/user_guide/metrics.md, Pending Request Count).
    assert rule["seriesQuery"] == 'nv_inference_pending_request_count{namespace!="",pod!=""}'
    # Without Triton services the adapter serves only vLLM's queue: a Triton HPA there would read nothing.
    placement = cluster.base.system_placement
    assert queue["pods"]["metric"]["name"] not in served_metrics(adapter_values(placement))


# --- placement --------------------------------------------------------------------------------------------


def test_every_triton_pod_lands_where_its_props_say(served: Any) -> None:
    cluster, _ = served
    landings = {p.workload.name: dict(p.landings) for p in cluster.model.prove()}
    assert landings["Deployment inference/tabular"] == {"Fargate profile serverless": ("Fargate",)}
    assert list(landings["Deployment inference/vision"]) == ["Karpenter NodePool gpu"]


def test_a_profile_that_selects_the_gpu_server_fails_synth() -> None:
    # A selector on the whole namespace takes the GPU server to Fargate, which has no GPUs.
    whole_namespace = FargateProfileProps(selectors=[FargateSelector(namespace="inference")])
    with pytest.raises(ValidationError, match=r"Deployment inference/vision.*Fargate has no GPUs"):
        synth(GPU, CPU, fargate=whole_namespace)


# --- mistakes ---------------------------------------------------------------------------------------------

BAD = [
    pytest.param({"fargate_cpu": 2, "fargate_memory_gib": 20}, r"fargate_size=.*a Fargate vCPU/memory", id="size"),
    pytest.param({"fargate_cpu": 3}, r"fargate_size=", id="cpu-step"),
    pytest.param({"fargate_storage_gib": 10}, r"fargate_storage_gib=10: allowed 20 to 175 GiB", id="storage-low"),
    pytest.param({"fargate_storage_gib": 200}, r"fargate_storage_gib=200", id="storage-high"),
    pytest.param({"instance_type": "inf2.xlarge"}, r"an NVIDIA inference type", id="neuron-type"),
    pytest.param({"instance_type": "p5.48xlarge"}, r"an NVIDIA inference type", id="training-type"),
    pytest.param({"extra_args": ["--http-port=9000"]}, r"extra_args='--http-port=9000'", id="managed-flag"),
    pytest.param({"extra_args": ["--model-repository=s3://other"]}, r"set model_repository instead", id="other-repo"),
    pytest.param(
        {"model_repository": S3ModelRepository(bucket="Models_Bucket")}, r"bucket='Models_Bucket'", id="bucket"
    ),
    pytest.param(
        {"model_repository": S3ModelRepository(bucket="models", prefix="/triton")}, r"without a leading /", id="slash"
    ),
    pytest.param({"min_replicas": 3, "max_replicas": 2}, r"1 <= min_replicas <= max_replicas", id="replicas"),
    pytest.param({"load_timeout": Duration.hours(2)}, r"load_timeout='120 min'", id="load-timeout"),
    pytest.param({"public": True}, r"certificate_arn=None", id="public-without-tls"),
]


@pytest.mark.parametrize(("changes", "message"), BAD)
def test_bad_triton_service(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        synth(replace(CPU, **changes))


def test_role_name_must_fit_iam() -> None:
    assert len(replace(CPU, name="x" * 38).role_name("serving-clusters-a")) == 64  # the longest allowed
    with pytest.raises(ValidationError, match=r"role name 'serving-clusters-a-triton-x{39}' within 64 characters"):
        synth(replace(CPU, name="x" * 39), cluster_name="serving-clusters-a")


def test_fargate_service_needs_a_profile_that_takes_it() -> None:
    with pytest.raises(ValidationError, match=r"set fargate=FargateProfileProps\(\)"):
        synth(CPU, fargate=None)
    other = FargateProfileProps(selectors=[FargateSelector(namespace="batch")])
    with pytest.raises(ValidationError, match=r"a Fargate profile selector that takes its pods"):
        synth(CPU, fargate=other)


@pytest.mark.parametrize(
    ("profile", "message"),
    [
        (FargateProfileProps(selectors=[FargateSelector(namespace="monitoring")]), r"namespace='monitoring'"),
        (FargateProfileProps(selectors=[FargateSelector(namespace="kube-system")]), r"namespace='kube-system'"),
        (FargateProfileProps(selectors=[FargateSelector(namespace=f"n{i}") for i in range(6)]), r"at most 5"),
        (FargateProfileProps(name="Server_less"), r"fargate.name='Server_less'"),
        (
            FargateProfileProps(selectors=[FargateSelector(namespace="inference", labels={"-bad": "x"})]),
            r"fargate.selectors\[0\].labels",
        ),
    ],
)
def test_bad_fargate_profile(profile: FargateProfileProps, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        synth(GPU, fargate=profile)


def test_names_are_unique_across_triton_and_vllm_services() -> None:
    llm = ModelServiceProps(
        name="vision", instance_type="g6.xlarge", weights=HubWeights(model_id="org/model"), parameters_billions=1
    )
    with pytest.raises(ValidationError, match=r"triton_services.name='vision'"):
        synth(GPU, model_services=[llm])


def test_the_plan_prices_gpu_triton_replicas_and_notes_fargate_ones() -> None:
    from eks_ml.plan import inference_plan

    two = replace(GPU, min_replicas=2)
    plan = inference_plan(
        "serve", "Lib/Inference", system=None, services=[], triton=[two, CPU], pools=[], placements=[]
    )
    (line,) = plan.nodes
    # One GPU per replica: two g6.xlarge nodes (one GPU each) stand at the minimum.
    assert (line.role, line.instance_type, line.nodes) == ("triton vision", "g6.xlarge", 2)
    assert line.usd_per_node_hour is not None
    assert any("tabular" in note and "Fargate" in note for note in plan.notes)


def test_the_cluster_s_plan_lists_its_triton_services(served: Any) -> None:
    cluster, _ = served
    assert [(n.role, n.nodes) for n in cluster.plan.nodes if n.role.startswith("triton")] == [("triton vision", 1)]
    assert any(note.startswith("triton tabular: 1 Fargate pod") for note in cluster.plan.notes)


def test_the_cluster_gets_the_oidc_provider_irsa_needs(served: Any) -> None:
    # aws_eks_v2 creates the cluster's IAM OIDC provider only when something asks for it: Triton's role does, and
    # its trust names that provider.
    _, template = served
    providers = {
        **of_type(template, "Custom::AWSCDKOpenIdConnectProvider"),
        **of_type(template, "AWS::IAM::OIDCProvider"),
    }
    assert len(providers) == 1
    (provider,) = providers
    trusts = json.dumps(
        [r["Properties"]["AssumeRolePolicyDocument"] for r in of_type(template, "AWS::IAM::Role").values()]
    )
    assert f'"Federated": {{"Ref": "{provider}"}}' in trusts
