"""ObservabilityAddon (CloudWatch backend): add-on, log retention, ML alarms to SNS, and its rules."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import Fn, Stack, assertions
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns

from eks_ml import BaseClusterProps, MlVpc, MlVpcProps, ValidationError
from eks_ml.inference import InferenceCluster, InferenceClusterProps
from eks_ml.observability import CLOUDWATCH_ALERTS, ObservabilityAddon, ObservabilityAddonProps
from eks_ml.observability.cloudwatch import ADDON_CONFIGURATION, log_group_name

from .support.synth import Synthesis, imported_training_cluster, joined, library_stack, of_type

TRAINING_ALARMS = {
    "unhealthy-nodes",
    "gpu-hot",
    "gpus-idle-while-requested",
    "efa-receive-drops",
    "workload-pods-restarting",
}
INFERENCE_ALARMS = {
    "unhealthy-nodes",
    "gpu-hot",
    "neuron-execution-errors",
    "neuron-ecc-events",
    "workload-pods-restarting",
}


def alarms(synth: Synthesis, stack: str) -> dict[str, dict[str, Any]]:
    return {
        r["Properties"]["AlarmName"]: r["Properties"] for r in synth.resources(stack, "AWS::CloudWatch::Alarm").values()
    }


@pytest.mark.parametrize(
    ("stack", "cluster", "expected"),
    [
        ("TrainingObservability", "eks-ml-training", TRAINING_ALARMS),
        ("InferenceObservability", "eks-ml-inference", INFERENCE_ALARMS),
    ],
)
def test_alarms_follow_the_clusters_hardware(
    default_synth: Synthesis, stack: str, cluster: str, expected: set[str]
) -> None:
    # p5 training nodes: NVIDIA and EFA, no Neuron. Inference pools: NVIDIA and Inferentia2, no EFA.
    found = alarms(default_synth, stack)
    assert set(found) == {f"{cluster}-{key}" for key in expected}
    for alarm in found.values():
        topic = alarm["AlarmActions"]
        assert topic == alarm["OKActions"] and len(topic) == 1 and "Ref" in topic[0]
        assert alarm["TreatMissingData"] == "notBreaching"


def test_alarms_watch_container_insights_for_their_cluster(default_synth: Synthesis) -> None:
    found = alarms(default_synth, "TrainingObservability")
    hot = found["eks-ml-training-gpu-hot"]
    assert (hot["Namespace"], hot["MetricName"], hot["Threshold"]) == ("ContainerInsights", "node_gpu_temperature", 85)
    assert hot["Dimensions"] == [{"Name": "ClusterName", "Value": "eks-ml-training"}]
    assert hot["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    nodes = found["eks-ml-training-unhealthy-nodes"]
    assert (nodes["MetricName"], nodes["Threshold"], nodes["Statistic"]) == ("cluster_failed_node_count", 0, "Maximum")
    # Idle GPUs count only while pods request GPUs, for 30 minutes of 5-minute periods.
    idle = found["eks-ml-training-gpus-idle-while-requested"]
    expression = next(m["Expression"] for m in idle["Metrics"] if "Expression" in m)
    assert expression.startswith("IF(requested > 0 AND utilization < 5")
    assert idle["EvaluationPeriods"] == 6
    # Restarts are read per pod of the jobs' namespace with a Metrics Insights query.
    restarts = found["eks-ml-training-workload-pods-restarting"]
    query = restarts["Metrics"][0]["Expression"]
    assert "pod_number_of_container_restarts" in query
    assert "ClusterName = 'eks-ml-training' AND Namespace = 'training'" in query
    inference = alarms(default_synth, "InferenceObservability")
    assert (
        "Namespace = 'inference'" in inference["eks-ml-inference-workload-pods-restarting"]["Metrics"][0]["Expression"]
    )


def test_the_addon_enables_accelerator_metrics_with_a_pod_identity_role(default_synth: Synthesis) -> None:
    (addon,) = default_synth.resources("TrainingObservability", "AWS::EKS::Addon").values()
    props = addon["Properties"]
    assert props["AddonName"] == "amazon-cloudwatch-observability"
    assert json.loads(props["ConfigurationValues"]) == ADDON_CONFIGURATION
    kubernetes = ADDON_CONFIGURATION["agent"]["config"]["logs"]["metrics_collected"]["kubernetes"]
    assert kubernetes == {"enhanced_container_insights": True, "accelerated_compute_metrics": True}
    (association,) = props["PodIdentityAssociations"]
    assert association["ServiceAccount"] == "cloudwatch-agent"
    (role,) = default_synth.resources("TrainingObservability", "AWS::IAM::Role").values()
    trust = role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]
    assert trust["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    assert sorted(trust["Action"]) == ["sts:AssumeRole", "sts:TagSession"]
    policies = " ".join(joined(arn) for arn in role["Properties"]["ManagedPolicyArns"])
    assert "CloudWatchAgentServerPolicy" in policies and "AWSXrayWriteOnlyAccess" in policies


def test_log_groups_exist_first_with_retention(default_synth: Synthesis) -> None:
    groups = default_synth.resources("InferenceObservability", "AWS::Logs::LogGroup")
    names = {g["Properties"]["LogGroupName"]: g for g in groups.values()}
    assert set(names) == {
        log_group_name("eks-ml-inference", kind) for kind in ("application", "dataplane", "host", "performance")
    }
    assert {g["Properties"]["RetentionInDays"] for g in names.values()} == {30}
    (addon,) = default_synth.resources("InferenceObservability", "AWS::EKS::Addon").values()
    assert set(addon["DependsOn"]) >= set(groups)


def test_the_alert_topic_is_encrypted_tls_only_and_open_to_cloudwatch(default_synth: Synthesis) -> None:
    template = default_synth.templates["TrainingObservability"]
    (topic,) = of_type(template, "AWS::SNS::Topic").values()
    assert topic["Properties"]["TopicName"] == "eks-ml-training-alerts"
    assert "KmsMasterKeyId" in topic["Properties"]
    (policy,) = of_type(template, "AWS::SNS::TopicPolicy").values()
    deny = policy["Properties"]["PolicyDocument"]["Statement"][0]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    (key,) = [k for lid, k in of_type(template, "AWS::KMS::Key").items() if lid.startswith("ObservabilityAlertsKey")]
    assert key["Properties"]["EnableKeyRotation"] is True
    grants = [
        s
        for s in key["Properties"]["KeyPolicy"]["Statement"]
        if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert len(grants) == 1 and set(grants[0]["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}


def test_every_alert_has_a_unique_key_and_a_summary() -> None:
    keys = [alert.key for alert in CLOUDWATCH_ALERTS]
    assert len(keys) == len(set(keys))
    assert all(len(alert.summary) > 30 for alert in CLOUDWATCH_ALERTS)


# --- Library use and bad input ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def inference_cluster() -> InferenceCluster:
    _, stack = library_stack()
    network = MlVpc(stack, "Network", MlVpcProps(availability_zones=("us-west-2a", "us-west-2b")))
    return InferenceCluster(
        stack,
        "Inference",
        InferenceClusterProps(base=BaseClusterProps(vpc=network.vpc, cluster_name="serve")),
    )


def test_your_own_topic_and_emails_get_the_alarms(inference_cluster: InferenceCluster) -> None:
    stack = Stack(Stack.of(inference_cluster).node.scope, "Mine")  # type: ignore[arg-type]
    topic = sns.Topic.from_topic_arn(stack, "Pager", "arn:aws:sns:us-west-2:111122223333:pager")
    addon = ObservabilityAddon(
        stack,
        "Observability",
        ObservabilityAddonProps(
            cluster=inference_cluster,
            alarm_topic=topic,
            alarm_emails=["oncall@example.com"],
            log_retention=logs.RetentionDays.ONE_WEEK,
            cloudwatch_addon_version="v4.5.0-eksbuild.1",
        ),
    )
    assert addon.topic_key is None
    template = assertions.Template.from_stack(stack)
    template.resource_count_is("AWS::SNS::Topic", 0)
    template.resource_count_is("AWS::KMS::Key", 1)  # the log groups' key; no topic key
    template.has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "oncall@example.com", "TopicArn": topic.topic_arn}
    )
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm", {"AlarmName": "serve-unhealthy-nodes", "AlarmActions": [topic.topic_arn]}
    )
    template.has_resource_properties("AWS::EKS::Addon", {"AddonVersion": "v4.5.0-eksbuild.1"})
    template.all_resources_properties("AWS::Logs::LogGroup", {"RetentionInDays": 7})


@pytest.mark.parametrize(
    ("props", "message"),
    [
        ({"alarm_emails": ["oncall"]}, r"alarm_emails\[0\]='oncall': allowed an e-mail address"),
        (
            {"alarm_emails": ["a@example.com", "a@example.com"]},
            r"alarm_emails='a@example.com': allowed each address once",
        ),
        ({"log_retention": logs.RetentionDays.INFINITE}, r"log_retention='INFINITE': allowed a finite retention"),
        ({"cloudwatch_addon_version": "4.5.0"}, r"cloudwatch_addon_version='4.5.0': allowed an EKS add-on version"),
        ({"cloudwatch_addon_version": "v1.5.1-eksbuild.1"}, r"v1.5.2-eksbuild.1 or newer"),
        ({"backend": "prometheus"}, r"backend='prometheus': allowed one of Backend.CLOUDWATCH"),
    ],
)
def test_bad_input_is_a_validation_error(
    inference_cluster: InferenceCluster, props: dict[str, Any], message: str
) -> None:
    stack = Stack(Stack.of(inference_cluster).node.scope, f"Bad{abs(hash(message))}")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match=message):
        ObservabilityAddon(stack, "Observability", ObservabilityAddonProps(cluster=inference_cluster, **props))


def test_the_cluster_must_be_an_eks_ml_cluster(inference_cluster: InferenceCluster) -> None:
    stack = Stack(Stack.of(inference_cluster).node.scope, "NotACluster")  # type: ignore[arg-type]
    with pytest.raises(
        ValidationError, match=r"cluster='BaseCluster': allowed a TrainingCluster or an InferenceCluster"
    ):
        ObservabilityAddon(stack, "Observability", ObservabilityAddonProps(cluster=inference_cluster.base))  # type: ignore[arg-type]


def test_every_problem_is_reported_at_once(inference_cluster: InferenceCluster) -> None:
    stack = Stack(Stack.of(inference_cluster).node.scope, "Many")  # type: ignore[arg-type]
    with pytest.raises(ValidationError) as error:
        ObservabilityAddon(
            stack,
            "Observability",
            ObservabilityAddonProps(
                cluster=inference_cluster, alarm_emails=["x"], log_retention=logs.RetentionDays.INFINITE
            ),
        )
    assert [p.field for p in error.value.problems] == ["alarm_emails[0]", "log_retention"]


def test_a_cluster_named_only_at_deploy_time_is_refused() -> None:
    _, stack = library_stack()
    training = imported_training_cluster(stack, cluster_name=Fn.import_value("training-cluster-name"))
    with pytest.raises(ValidationError, match=r"cluster='a cluster whose name is only known at deploy time'"):
        ObservabilityAddon(stack, "Observability", ObservabilityAddonProps(cluster=training))
