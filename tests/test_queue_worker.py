"""Queue workers scaled by KEDA: the objects, the IAM scoping, the placement proof and bad input."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

import pytest
from aws_cdk import Duration
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs

from eks_ml import ValidationError, helm
from eks_ml.errors import Problems
from eks_ml.inference import (
    InferenceCluster,
    MskSource,
    NodeOS,
    NodePoolProps,
    PoolKind,
    QueueWorkerProps,
    S3ModelRepository,
    SqsSource,
    TritonServiceProps,
)

from .support.inference import inference_cluster
from .support.manifests import applied_objects, requires_chart_cache, validate_objects
from .support.synth import Synthesis, joined, library_stack, manifest_id, of_type

HELM = "Custom::AWSCDK-EKS-HelmChart"
QUEUE_ARN = "arn:aws:sqs:us-west-2:111122223333:jobs"
KEY_ARN = "arn:aws:kms:us-west-2:111122223333:key/0a1b2c3d-4e5f-6789-abcd-ef0123456789"
MSK_CLUSTER = "arn:aws:kafka:us-west-2:111122223333:cluster/events/0a1b2c3d-4e5f-6789-abcd-ef0123456789-2"
MSK = MskSource(
    cluster_arn=MSK_CLUSTER,
    topic="documents",
    consumer_group="summarizers",
    bootstrap_servers=["b-1.events.abc.c2.kafka.us-west-2.amazonaws.com:9098"],
)


def sqs_worker(**overrides: Any) -> QueueWorkerProps:
    props: dict[str, Any] = {
        "name": "embed",
        "image": "example.com/worker:1",
        "instance_type": "g6.xlarge",
        "source": SqsSource(queue_arn=QUEUE_ARN, kms_key_arn=KEY_ARN),
    }
    return QueueWorkerProps(**{**props, **overrides})


def synth(workers: list[QueueWorkerProps], **props: Any) -> tuple[InferenceCluster, dict[str, Any]]:
    return inference_cluster(queue_workers=workers, **props)


@pytest.fixture(scope="module")
def small() -> tuple[InferenceCluster, dict[str, Any]]:
    """A GPU worker on an existing encrypted queue, a CPU worker on MSK."""
    return synth([sqs_worker(), QueueWorkerProps(name="summarize", image="example.com/s:1", source=MSK)])


def worker_objects(cluster: InferenceCluster, name: str) -> dict[str, dict[str, Any]]:
    (chart,) = [chart for stem, chart in cluster.applied_charts if stem == f"queue-worker-{name}"]
    return {o["kind"]: o for o in chart.to_json()}


# --- IAM scoping ------------------------------------------------------------------------------------------


def grants(template: dict[str, Any], role_id: str) -> dict[str, set[str]]:
    """Action -> the resources (rendered as JSON) a role's policies allow it on."""
    found: dict[str, set[str]] = {}
    for policy in of_type(template, "AWS::IAM::Policy").values():
        if {"Ref": role_id} not in policy["Properties"]["Roles"]:
            continue
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            assert statement["Effect"] == "Allow"
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            for action in actions:
                found.setdefault(action, set()).update(json.dumps(r, sort_keys=True) for r in resources)
    return found


def scoping_problems(granted: Mapping[str, set[str]], allowed: Mapping[str, set[str]]) -> list[str]:
    """What a role may do beyond ``allowed`` (action -> exact resources): an extra action, an extra or
    wildcard resource. An empty list means the role is scoped to exactly what it needs."""
    problems = [f"{action} is not needed" for action in sorted(set(granted) - set(allowed))]
    for action, resources in sorted(granted.items()):
        for resource in sorted(resources - allowed.get(action, set())):
            problems.append(f"{action} on {resource}")
        problems += [f"{action} on a wildcard {r}" for r in sorted(resources) if "*" in r]
    return problems


def role_id(template: dict[str, Any], description: str) -> str:
    (found,) = [
        logical_id
        for logical_id, role in of_type(template, "AWS::IAM::Role").items()
        if role["Properties"].get("Description") == description
    ]
    return found


def exact(*resources: Any) -> set[str]:
    return {json.dumps(r, sort_keys=True) for r in resources}


def sqs_allowed(queue: Any, key: Any) -> dict[str, set[str]]:
    return {
        **{a: exact(queue) for a in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")},
        "sqs:ChangeMessageVisibility": exact(queue),
        "kms:Decrypt": exact(key),
    }


def msk_allowed(*, scaler: bool) -> dict[str, set[str]]:
    topic = f"{MSK_CLUSTER.replace(':cluster/', ':topic/')}/documents"
    group = f"{MSK_CLUSTER.replace(':cluster/', ':group/')}/summarizers"
    allowed = {
        "kafka-cluster:Connect": exact(MSK_CLUSTER),
        "kafka-cluster:DescribeTopic": exact(topic),
        "kafka-cluster:DescribeGroup": exact(group),
    }
    if not scaler:
        allowed |= {"kafka-cluster:ReadData": exact(topic), "kafka-cluster:AlterGroup": exact(group)}
    return allowed


def test_the_sqs_worker_role_may_consume_exactly_its_queue(small: Any) -> None:
    _, template = small
    granted = grants(template, role_id(template, "queue worker embed"))
    assert scoping_problems(granted, sqs_allowed(QUEUE_ARN, KEY_ARN)) == []
    assert set(granted) == set(sqs_allowed(QUEUE_ARN, KEY_ARN))  # nothing it needs is missing either


def test_the_msk_worker_role_may_read_exactly_its_topic_and_group(small: Any) -> None:
    _, template = small
    granted = grants(template, role_id(template, "queue worker summarize"))
    assert scoping_problems(granted, msk_allowed(scaler=False)) == []
    assert set(granted) == set(msk_allowed(scaler=False))


def test_the_scaler_roles_may_only_read_the_backlog(small: Any) -> None:
    _, template = small
    sqs_scaler = grants(template, role_id(template, "KEDA reads the backlog of queue worker embed"))
    assert sqs_scaler == {"sqs:GetQueueAttributes": exact(QUEUE_ARN)}
    msk_scaler = grants(template, role_id(template, "KEDA reads the backlog of queue worker summarize"))
    assert scoping_problems(msk_scaler, msk_allowed(scaler=True)) == []
    assert "kafka-cluster:ReadData" not in msk_scaler


def test_only_the_keda_operator_may_assume_a_scaler_role_and_it_may_assume_nothing_else(small: Any) -> None:
    _, template = small
    operator = role_id(template, f"KEDA {helm.KEDA.version} operator of serve (EKS Pod Identity)")
    scalers = [role_id(template, f"KEDA reads the backlog of queue worker {name}") for name in ("embed", "summarize")]
    operator_arn = {"Fn::GetAtt": [operator, "Arn"]}
    # EKS Pod Identity's session tags are transitive (Amazon EKS User Guide, "Grant Pods access to AWS resources
    # based on tags", Cross-account tags): the operator's AssumeRole carries them, which needs sts:TagSession
    # from both the caller's policy and the scaler role's trust policy.
    scaler_arns = exact(*({"Fn::GetAtt": [s, "Arn"]} for s in scalers))
    assert grants(template, operator) == {"sts:AssumeRole": scaler_arns, "sts:TagSession": scaler_arns}
    for scaler in scalers:
        (statement,) = template["Resources"][scaler]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert statement["Principal"] == {"AWS": operator_arn}
        assert sorted(statement["Action"]) == ["sts:AssumeRole", "sts:TagSession"]
    (association,) = [
        a["Properties"]
        for a in of_type(template, "AWS::EKS::PodIdentityAssociation").values()
        if a["Properties"]["RoleArn"] == operator_arn
    ]
    assert (association["Namespace"], association["ServiceAccount"]) == ("keda", "keda-operator")


@pytest.mark.parametrize(
    ("broken", "expected"),
    [
        ({"sqs:SendMessage": exact(QUEUE_ARN)}, "sqs:SendMessage is not needed"),
        ({"sqs:ReceiveMessage": exact("arn:aws:sqs:us-west-2:111122223333:*")}, "wildcard"),
        ({"sqs:DeleteMessage": exact(QUEUE_ARN, "arn:aws:sqs:us-west-2:111122223333:other")}, "other"),
        ({"kms:Decrypt": exact("*")}, "kms:Decrypt on"),
    ],
    ids=["extra-action", "wildcard-queue", "second-queue", "any-key"],
)
def test_a_broader_policy_fails_the_scoping_check(broken: dict[str, set[str]], expected: str) -> None:
    allowed = sqs_allowed(QUEUE_ARN, KEY_ARN)
    broader = {action: set(resources) for action, resources in allowed.items()}
    for action, resources in broken.items():
        broader.setdefault(action, set()).update(resources)
    assert any(expected in problem for problem in scoping_problems(broader, allowed))


def test_an_app_queue_s_kms_key_is_granted_to_its_worker() -> None:
    _, stack = library_stack()
    key = kms.Key(stack, "Key", enable_key_rotation=True)
    queue = sqs.Queue(stack, "Jobs", encryption=sqs.QueueEncryption.KMS, encryption_master_key=key, enforce_ssl=True)
    worker = QueueWorkerProps(name="w", image="i:1", source=SqsSource(queue=queue))
    assert worker.source.key_arn() == key.key_arn  # type: ignore[union-attr]
    unencrypted = QueueWorkerProps(name="w", image="i:1", source=SqsSource(queue=sqs.Queue(stack, "Plain")))
    assert unencrypted.source.key_arn() is None  # type: ignore[union-attr]


# --- Objects: scale to zero, triggers, CRDs ---------------------------------------------------------------


def test_workers_scale_to_zero_with_a_cooldown(small: Any) -> None:
    cluster, _ = small
    for name in ("embed", "summarize"):
        objects = worker_objects(cluster, name)
        spec = objects["ScaledObject"]["spec"]
        assert (spec["minReplicaCount"], spec["maxReplicaCount"], spec["cooldownPeriod"]) == (0, 4, 300)
        assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        assert "replicas" not in objects["Deployment"]["spec"]  # KEDA owns the count
        assert spec["triggers"][0]["authenticationRef"] == {"name": name}
        assert objects["TriggerAuthentication"]["spec"]["podIdentity"]["provider"] == "aws"
        assert "identityOwner" not in objects["TriggerAuthentication"]["spec"]["podIdentity"]


def test_the_sqs_trigger_reads_the_queue_url_and_target(small: Any) -> None:
    cluster, _ = small
    (trigger,) = worker_objects(cluster, "embed")["ScaledObject"]["spec"]["triggers"]
    assert trigger["type"] == "aws-sqs-queue"
    assert trigger["metadata"] == {
        "queueURL": "https://sqs.us-west-2.amazonaws.com/111122223333/jobs",
        "queueLength": "5",
        "activationQueueLength": "0",
        "awsRegion": "us-west-2",
    }


def test_the_kafka_trigger_uses_msk_iam_over_tls(small: Any) -> None:
    cluster, _ = small
    (trigger,) = worker_objects(cluster, "summarize")["ScaledObject"]["spec"]["triggers"]
    assert trigger["type"] == "kafka"
    metadata = trigger["metadata"]
    assert (metadata["sasl"], metadata["saslTokenProvider"], metadata["tls"]) == (
        "oauthbearer",
        "aws_msk_iam",
        "enable",
    )
    assert (metadata["topic"], metadata["consumerGroup"], metadata["awsRegion"]) == (
        "documents",
        "summarizers",
        "us-west-2",
    )


def test_a_gpu_worker_is_sized_like_a_model_service(small: Any) -> None:
    cluster, _ = small
    pod = worker_objects(cluster, "embed")["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    # g6.xlarge: 4 vCPUs, 16 GiB, 1 GPU; one GPU is the whole host, of which a pod takes 80%.
    assert container["resources"]["requests"] == {"cpu": "3", "memory": "13107Mi", "nvidia.com/gpu": "1"}
    assert container["resources"]["limits"] == {"memory": "13107Mi", "nvidia.com/gpu": "1"}
    assert pod["nodeSelector"] == {"eks-ml.io/pool": "gpu", "node.kubernetes.io/instance-type": "g6.xlarge"}
    cpu_pod = worker_objects(cluster, "summarize")["Deployment"]["spec"]["template"]["spec"]
    assert cpu_pod["nodeSelector"] == {"eks-ml.io/pool": "cpu"}


def test_the_network_policy_allows_only_the_queue_ports_and_the_pod_identity_agent(small: Any) -> None:
    cluster, _ = small
    egress = worker_objects(cluster, "summarize")["NetworkPolicy"]["spec"]["egress"]
    assert [[p["port"] for p in rule["ports"]] for rule in egress] == [[443, 9098], [80]]
    assert egress[1]["to"] == [{"ipBlock": {"cidr": "169.254.170.23/32"}}]


@requires_chart_cache
def test_worker_objects_validate_against_keda_s_crds_and_a_broken_one_does_not(
    inference_patterns_synth: Synthesis,
) -> None:
    objects = applied_objects(inference_patterns_synth.templates["Patterns"])
    scaled = [o for o in objects if o["kind"] == "ScaledObject"]
    assert len(scaled) == 2
    assert validate_objects([o for o in objects if o["apiVersion"] == "keda.sh/v1alpha1"]) == []
    broken = copy.deepcopy(scaled[0])
    broken["spec"]["minReplicaCount"] = "zero"
    del broken["spec"]["scaleTargetRef"]
    assert validate_objects([broken]) != []


# --- KEDA only where used, on the system nodes -------------------------------------------------------------


def test_keda_is_installed_on_the_system_nodes_only_with_workers(small: Any) -> None:
    _, template = small
    (release,) = [r["Properties"] for r in of_type(template, HELM).values() if r["Properties"]["Chart"] == "keda"]
    values = json.loads(joined(release["Values"]))
    assert values["nodeSelector"] == {"eks-ml.io/node-role": "system"}
    assert (release["Version"], release["Namespace"]) == (helm.KEDA.version, "keda")


def test_the_example_installs_keda_and_the_default_app_does_not(
    inference_patterns_synth: Synthesis, default_synth: Synthesis
) -> None:
    charts = [r["Properties"]["Chart"] for r in inference_patterns_synth.resources("Patterns", HELM).values()]
    assert "keda" in charts
    for stack in default_synth.templates:
        assert "keda" not in [r["Properties"]["Chart"] for r in default_synth.resources(stack, HELM).values()]


# --- Placement proof --------------------------------------------------------------------------------------


def test_workers_and_keda_land_where_they_can_run(small: Any) -> None:
    cluster, _ = small
    lands = {p.workload.name: set(p.landings) for p in cluster.model.placements()}
    assert {where for where, _ in lands["Deployment inference/embed"]} == {"Karpenter NodePool gpu"}
    assert {where for where, _ in lands["Deployment inference/summarize"]} == {"Karpenter NodePool cpu"}
    for name in ("keda-operator", "keda-operator-metrics-apiserver", "keda-admission-webhooks"):
        assert {where for where, _ in lands[f"Deployment keda/{name}"]} == {"managed node group system"}


def test_a_gpu_worker_without_a_device_plugin_does_not_synthesize(monkeypatch: pytest.MonkeyPatch) -> None:
    import eks_ml.inference.cluster

    monkeypatch.setattr(eks_ml.inference.cluster, "install_device_plugins", lambda *args, **kwargs: {})
    # On an AL2023 GPU pool (a Bottlerocket one advertises its GPUs itself: eks_ml.inference.node_os).
    pools = [
        NodePoolProps(name="gpu", kind=PoolKind.NVIDIA, os=NodeOS.AL2023),
        NodePoolProps(name="cpu", kind=PoolKind.CPU),
    ]
    with pytest.raises(
        ValidationError, match=r"Deployment inference/embed.*no device plugin advertises nvidia.com/gpu"
    ):
        synth([sqs_worker()], pools=pools)


# --- Bad input --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("worker", "field"),
    [
        (sqs_worker(source=SqsSource()), "queue_workers[0].source.queue"),
        (sqs_worker(source=SqsSource(queue_arn="https://sqs.us-west-2.amazonaws.com/1/jobs")), "source.queue_arn"),
        (sqs_worker(source=SqsSource(queue_arn=QUEUE_ARN, kms_key_arn="alias/jobs")), "source.kms_key_arn"),
        (sqs_worker(source=SqsSource(queue_arn=QUEUE_ARN, queue_length=0)), "source.queue_length"),
        (sqs_worker(source=MskSource(**{**MSK.__dict__, "topic": "*"})), "source.topic"),
        (sqs_worker(source=MskSource(**{**MSK.__dict__, "consumer_group": "a b"})), "source.consumer_group"),
        (sqs_worker(source=MskSource(**{**MSK.__dict__, "cluster_arn": "events"})), "source.cluster_arn"),
        (sqs_worker(source=MskSource(**{**MSK.__dict__, "bootstrap_servers": ["b-1:9092"]})), "bootstrap_servers"),
        (sqs_worker(source="jobs"), "queue_workers[0].source"),
        (sqs_worker(min_replicas=5, max_replicas=2), "queue_workers[0].replicas"),
        (sqs_worker(min_replicas=-1), "queue_workers[0].min_replicas"),
        (sqs_worker(accelerators=2), "queue_workers[0].accelerators"),
        (sqs_worker(instance_type="p5.48xlarge"), "queue_workers[0].instance_type"),
        (sqs_worker(name="Embed_1"), "queue_workers[0].name"),
        (sqs_worker(polling_interval=Duration.hours(2)), "queue_workers[0].polling_interval"),
    ],
    ids=[
        "no-queue",
        "queue-url-not-arn",
        "key-alias",
        "zero-length",
        "wildcard-topic",
        "bad-group",
        "bad-cluster-arn",
        "plaintext-port",
        "not-a-source",
        "min-above-max",
        "negative-min",
        "too-many-gpus",
        "training-type",
        "bad-name",
        "slow-polling",
    ],
)
def test_bad_worker_input_names_the_field(worker: QueueWorkerProps, field: str) -> None:
    with pytest.raises(ValidationError) as raised:
        synth([worker])
    assert field in str(raised.value)


def test_a_queue_arn_known_only_at_deploy_time_is_refused() -> None:
    _, stack = library_stack()
    token_arn = sqs.Queue(stack, "Jobs").queue_arn
    problems = Problems()
    assert not SqsSource(queue_arn=token_arn).check("source", problems)
    with pytest.raises(ValidationError, match=r"source\.queue_arn.*pass the queue construct itself as queue="):
        problems.raise_if_any()


def test_worker_names_must_be_unique() -> None:
    with pytest.raises(ValidationError, match="queue_workers.name"):
        synth([sqs_worker(), sqs_worker()])


def test_a_cpu_worker_needs_a_cpu_pool() -> None:
    with pytest.raises(ValidationError, match=r"queue_workers\[0\].instance_type.*CPU"):
        synth(
            [sqs_worker(instance_type=None)],
            pools=[NodePoolProps(name="gpu", kind=PoolKind.NVIDIA)],
        )


def test_a_worker_may_not_share_a_name_with_a_triton_service() -> None:
    # Both create a Deployment, ServiceAccount and NetworkPolicy named after themselves in the serving namespace:
    # the second apply would overwrite the first.
    triton = TritonServiceProps(
        name="embed", instance_type="g6.xlarge", model_repository=S3ModelRepository(bucket="models", prefix="embed")
    )
    with pytest.raises(ValidationError, match=r"queue_workers.name='embed'.*triton_services"):
        synth([sqs_worker()], triton_services=[triton])


def test_workers_are_applied_after_their_pod_identity_associations(small: Any) -> None:
    # EKS injects Pod Identity credentials into a pod when it is created, and only if its service account has an
    # association then: a worker pod created first would run without credentials until it is recreated.
    _, template = small
    workloads = template["Resources"][manifest_id(template, "ScaledObject")]
    associations = of_type(template, "AWS::EKS::PodIdentityAssociation")
    for worker in ("embed", "summarize"):
        (association,) = [i for i, r in associations.items() if r["Properties"]["ServiceAccount"] == worker]
        assert association in workloads.get("DependsOn", []), worker


def test_a_bad_triton_services_value_beside_workers_is_a_validation_error() -> None:
    with pytest.raises(ValidationError, match="triton_services"):
        synth([sqs_worker()], triton_services=None)
