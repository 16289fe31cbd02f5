"""ObservabilityAddon, Prometheus backend: AMP workspace, managed scraper, exporters, rules, alerts to SNS."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from aws_cdk import Stack
from aws_cdk import aws_ec2 as ec2

from eks_ml import BaseClusterProps, EndpointAccessMode, ValidationError, helm
from eks_ml.inference import InferenceCluster, InferenceClusterProps
from eks_ml.observability import Backend, ObservabilityAddon, ObservabilityAddonProps, Thresholds

from .support.synth import Synthesis, library_stack, normalize, of_type

STACKS = ("TrainingObservability", "InferenceObservability")
HELM = "Custom::AWSCDK-EKS-HelmChart"
TRAINING_ALERTS = [
    "NodeNotReady",
    "GpuXidError",
    "GpuMemoryRowRemapping",
    "GpuThermalThrottling",
    "GpuClocksThrottled",
    "GpuEccDoubleBitErrors",
    "GpusIdleInTrainingJob",
    "EfaReceiveDrops",
    "WorkloadPodRestarting",
]
INFERENCE_ALERTS = [
    "NodeNotReady",
    "GpuXidError",
    "GpuMemoryRowRemapping",
    "GpuThermalThrottling",
    "GpuClocksThrottled",
    "GpuEccDoubleBitErrors",
    "NeuronExecutionErrors",
    "NeuronEccEvents",
    "WorkloadPodRestarting",
    "ModelLatencyHigh",
    "ModelQueueDeep",
    "AutoscalerAtMaximum",
]


def only(template: dict[str, Any], resource_type: str) -> dict[str, Any]:
    (resource,) = of_type(template, resource_type).values()
    return resource["Properties"]


def rules(template: dict[str, Any]) -> list[dict[str, Any]]:
    """The ML alerts (the idle-cost and SLO groups are tested in test_prometheus_rules.py)."""
    groups = yaml.safe_load(only(template, "AWS::APS::RuleGroupsNamespace")["Data"])["groups"]
    return next(group for group in groups if group["name"].endswith("-ml"))["rules"]


@pytest.mark.parametrize(("stack", "expected"), [(STACKS[0], TRAINING_ALERTS), (STACKS[1], INFERENCE_ALERTS)])
def test_alert_rules_follow_the_cluster(prometheus_synth: Synthesis, stack: str, expected: list[str]) -> None:
    found = rules(prometheus_synth.templates[stack])
    assert [rule["alert"] for rule in found] == expected
    namespace = "training" if stack == STACKS[0] else "inference"
    for rule in found:
        assert rule["labels"]["severity"] in {"critical", "warning"}
        if "namespace=" in rule["expr"]:
            assert f'namespace="{namespace}"' in rule["expr"]
    by_name = {rule["alert"]: rule for rule in found}
    if stack == STACKS[1]:
        assert by_name["ModelLatencyHigh"]["expr"].endswith("> 30") and by_name["ModelLatencyHigh"]["for"] == "10m"
        assert by_name["ModelQueueDeep"]["expr"].endswith("> 16")
        assert "kube_horizontalpodautoscaler_spec_max_replicas" in by_name["AutoscalerAtMaximum"]["expr"]


@pytest.mark.parametrize("stack", STACKS)
def test_the_managed_scraper_reads_annotated_pods_into_the_workspace(prometheus_synth: Synthesis, stack: str) -> None:
    template = prometheus_synth.templates[stack]
    scraper = only(template, "AWS::APS::Scraper")
    workspace_id = next(iter(of_type(template, "AWS::APS::Workspace")))
    assert scraper["Destination"]["AmpConfiguration"]["WorkspaceArn"] == {"Fn::GetAtt": [workspace_id, "Arn"]}
    eks_source = scraper["Source"]["EksConfiguration"]
    assert len(eks_source["SubnetIds"]) == 3 and len(eks_source["SecurityGroupIds"]) == 1
    config = yaml.safe_load(scraper["ScrapeConfiguration"]["ConfigurationBlob"]["Fn::Base64"])
    assert config["global"]["scrape_interval"] == "30s"  # the managed scraper's minimum
    (job,) = config["scrape_configs"]
    keep = job["relabel_configs"][0]
    assert (keep["action"], keep["regex"]) == ("keep", "true")
    assert job["honor_labels"] is True  # dcgm-exporter's pod/namespace labels name the GPU's user


def test_alerts_go_to_the_topic_which_lets_the_workspace_publish(prometheus_synth: Synthesis) -> None:
    template = prometheus_synth.templates["InferenceObservability"]
    definition = only(template, "AWS::APS::Workspace")["AlertManagerDefinition"]["Fn::Sub"]
    topic_id = next(iter(of_type(template, "AWS::SNS::Topic")))
    assert definition[1] == {"TopicArn": {"Ref": topic_id}}
    alertmanager = yaml.safe_load(yaml.safe_load(definition[0])["alertmanager_config"])
    (receiver,) = alertmanager["receivers"]
    assert receiver["sns_configs"][0]["topic_arn"] == "${TopicArn}"
    assert receiver["sns_configs"][0]["sigv4"] == {"region": "us-west-2"}
    statements = only(template, "AWS::SNS::TopicPolicy")["PolicyDocument"]["Statement"]
    publish = next(s for s in statements if s.get("Principal") == {"Service": "aps.amazonaws.com"})
    assert set(publish["Action"]) == {"sns:Publish", "sns:GetTopicAttributes"}
    assert "aws:SourceArn" in publish["Condition"]["ArnEquals"]
    (alerts_key,) = [k for lid, k in of_type(template, "AWS::KMS::Key").items() if "AlertsKey" in lid]
    key_statements = alerts_key["Properties"]["KeyPolicy"]["Statement"]

    def services(statement: dict[str, Any]) -> list[str]:
        service = statement["Principal"].get("Service", [])
        return service if isinstance(service, list) else [service]

    grant = next(s for s in key_statements if "aps.amazonaws.com" in services(s))
    assert set(grant["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}


def helm_values(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    import json

    from .support.synth import joined

    return {
        r["Properties"]["Chart"]: {
            "version": r["Properties"]["Version"],
            "values": json.loads(joined(r["Properties"]["Values"])),
        }
        for r in of_type(template, HELM).values()
    }


def test_exporters_are_pinned_annotated_and_placed(prometheus_synth: Synthesis) -> None:
    charts = helm_values(prometheus_synth.templates["TrainingObservability"])
    assert {chart: c["version"] for chart, c in charts.items()} == {
        "prometheus-node-exporter": helm.NODE_EXPORTER.version,
        "kube-state-metrics": helm.KUBE_STATE_METRICS.version,
        "dcgm-exporter": helm.DCGM_EXPORTER.version,
    }
    for chart in charts.values():
        assert chart["values"]["podAnnotations"]["prometheus.io/scrape"] == "true"
    dcgm = charts["dcgm-exporter"]["values"]
    assert dcgm["serviceMonitor"] == {"enabled": False}  # no Prometheus Operator CRDs in the cluster
    types = dcgm["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]
    assert "p5.48xlarge" in types["matchExpressions"][0]["values"]
    assert "inf2.8xlarge" not in types["matchExpressions"][0]["values"]
    assert charts["prometheus-node-exporter"]["values"]["tolerations"] == [{"operator": "Exists"}]
    # dcgm-exporter reads eks-ml's counter list (defaults plus throttling and ECC) from a ConfigMap.
    assert dcgm["arguments"] == ["-f", "/etc/dcgm-exporter/eks-ml/counters.csv"]
    assert dcgm["extraConfigMapVolumes"] == [
        {"name": "eks-ml-counters", "configMap": {"name": "dcgm-exporter-counters"}}
    ]
    assert dcgm["extraVolumeMounts"][0]["mountPath"] == "/etc/dcgm-exporter/eks-ml"


def test_the_efa_sidecar_writes_hardware_counters_as_a_textfile(tmp_path: Path) -> None:
    from eks_ml.observability.prometheus import EFA_TEXTFILE_SCRIPT, node_exporter_values

    counters = tmp_path / "sys" / "class" / "infiniband" / "rdmap0s31" / "ports" / "1" / "hw_counters"
    counters.mkdir(parents=True)
    (counters / "rx_bytes").write_text("123456\n")
    (counters / "rx_drops").write_text("7\n")
    out = tmp_path / "out"
    out.mkdir()
    env = {"PATH": "/usr/bin:/bin", "SYS": str(tmp_path / "sys"), "OUT": str(out), "ONCE": "1"}
    subprocess.run(["/bin/sh", "-c", EFA_TEXTFILE_SCRIPT], env=env, check=True, timeout=10)
    assert (out / "efa.prom").read_text().splitlines() == [
        "# TYPE eksml_efa_hw_counter counter",
        'eksml_efa_hw_counter{device="rdmap0s31",port="1",counter="rx_bytes"} 123456',
        'eksml_efa_hw_counter{device="rdmap0s31",port="1",counter="rx_drops"} 7',
    ]
    values = node_exporter_values()
    assert values["extraArgs"] == ["--collector.textfile.directory=/run/prometheus"]
    assert values["sidecarHostVolumeMounts"][0]["hostPath"] == "/sys"
    # A node without EFA devices gets a file with no samples, not an error.
    empty = tmp_path / "empty"
    (empty / "out").mkdir(parents=True)
    env.update(SYS=str(empty / "sys"), OUT=str(empty / "out"))
    subprocess.run(["/bin/sh", "-c", EFA_TEXTFILE_SCRIPT], env=env, check=True, timeout=10)
    assert (empty / "out" / "efa.prom").read_text().splitlines() == ["# TYPE eksml_efa_hw_counter counter"]


def test_the_counter_config_map_is_applied_before_dcgm_exporter(prometheus_synth: Synthesis) -> None:
    import json

    from eks_ml.k8s.dcgm_counters import COUNTERS

    from .support.manifests import validate_objects
    from .support.synth import joined

    template = prometheus_synth.templates["TrainingObservability"]
    manifests = {
        logical_id: json.loads(joined(resource["Properties"]["Manifest"]))
        for logical_id, resource in of_type(template, "Custom::AWSCDK-EKS-KubernetesResource").items()
    }
    # One prelude: the namespace (with its Pod Security labels) and then the ConfigMap in it.
    ((manifest_id, objects),) = manifests.items()
    kinds = [obj["kind"] for obj in objects]
    assert kinds[:2] == ["Namespace", "ConfigMap"]
    assert validate_objects(objects) == []
    config_map = objects[1]
    assert objects[0]["metadata"]["name"] == config_map["metadata"]["namespace"]
    lines = config_map["data"]["counters.csv"].splitlines()
    assert len(lines) == len(COUNTERS)
    fields = {line.split(",")[0] for line in lines}
    # Every series the rules and dashboards read is exported.
    rules_text = " ".join(rule["expr"] for rule in rules(template))
    used = {word for word in rules_text.replace("(", " ").replace(")", " ").split() if word.startswith("DCGM_FI_")}
    assert {name.split("[")[0].split("{")[0] for name in used} <= fields
    dcgm = next(k for k, r in of_type(template, HELM).items() if r["Properties"]["Chart"] == "dcgm-exporter")
    assert manifest_id in template["Resources"][dcgm]["DependsOn"]


def test_prometheus_is_not_installed_twice(prometheus_synth: Synthesis) -> None:
    # The inference cluster's own Prometheus (for its HPAs) is the only Prometheus server in the app;
    # the observability stacks use the managed scraper.
    servers = [
        stack
        for stack, template in prometheus_synth.templates.items()
        for chart in of_type(template, HELM).values()
        if chart["Properties"]["Chart"] == helm.PROMETHEUS.chart
    ]
    assert servers == ["Inference"]
    for stack in STACKS:
        assert of_type(prometheus_synth.templates[stack], "AWS::EKS::Addon") == {}


@pytest.mark.parametrize("stack", STACKS)
def test_prometheus_stack_snapshot(prometheus_synth: Synthesis, stack: str, json_snapshot) -> None:  # type: ignore[no-untyped-def]
    assert normalize(prometheus_synth.templates[stack]) == json_snapshot


def test_neuron_monitor_runs_on_neuron_nodes_of_the_inference_cluster(prometheus_synth: Synthesis) -> None:
    import json

    from .support.manifests import validate_objects
    from .support.synth import joined

    inference = prometheus_synth.templates["InferenceObservability"]
    manifests = [
        json.loads(joined(r["Properties"]["Manifest"]))
        for r in of_type(inference, "Custom::AWSCDK-EKS-KubernetesResource").values()
    ]
    objects = next(m for m in manifests if any(obj["kind"] == "DaemonSet" for obj in m))
    kinds = [obj["kind"] for obj in objects]
    assert kinds.index("Namespace") < kinds.index("DaemonSet")
    assert validate_objects(objects) == []
    (daemon_set,) = [obj for obj in objects if obj["kind"] == "DaemonSet"]
    pod = daemon_set["spec"]["template"]
    assert pod["metadata"]["annotations"] == {"prometheus.io/scrape": "true", "prometheus.io/port": "8000"}
    (term,) = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    types = term["matchExpressions"][0]["values"]
    assert "inf2.8xlarge" in types and "trn2.48xlarge" in types and "g6e.xlarge" not in types
    # Neuron nodes, and training nodes before their burn-in has passed (a node is watched from the start).
    assert pod["spec"]["tolerations"] == [
        {"key": "aws.amazon.com/neuron", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "eks-ml.io/burn-in", "operator": "Exists", "effect": "NoSchedule"},
    ]
    # The p5 training cluster has no Neuron nodes and gets no neuron-monitor.
    training = of_type(prometheus_synth.templates["TrainingObservability"], "Custom::AWSCDK-EKS-KubernetesResource")
    assert all("neuron-monitor" not in json.dumps(r) for r in training.values())


# --- Bad input ----------------------------------------------------------------------------------------


def test_the_scraper_needs_a_private_endpoint() -> None:
    from eks_ml import MlVpc, MlVpcProps

    _, stack = library_stack()
    network = MlVpc(stack, "Network", MlVpcProps(availability_zones=("us-west-2a", "us-west-2b")))
    cluster = InferenceCluster(
        stack,
        "Serving",
        InferenceClusterProps(
            base=BaseClusterProps(vpc=network.vpc, cluster_name="serving", endpoint_access=EndpointAccessMode.PUBLIC)
        ),
    )
    with pytest.raises(ValidationError) as error:
        ObservabilityAddon(stack, "Observability", ObservabilityAddonProps(cluster=cluster, backend=Backend.PROMETHEUS))
    assert [p.field for p in error.value.problems] == ["cluster.endpoint_access"]


def test_the_scraper_needs_two_zones() -> None:
    # eks-ml creates no cluster in a one-zone VPC (EKS needs two AZs), but an imported cluster may sit in one.
    from aws_cdk import aws_eks_v2 as eks
    from aws_cdk import aws_iam as iam

    from eks_ml.training import TrainingCluster, TrainingClusterProps, TrainingNodeGroupProps

    _, stack = library_stack()
    vpc = ec2.Vpc.from_vpc_attributes(
        stack, "OneZone", vpc_id="vpc-0123", availability_zones=["us-west-2a"], private_subnet_ids=["subnet-0a"]
    )
    with pytest.raises(ValidationError, match="base.vpc=.*at least two AZs"):
        InferenceCluster(stack, "Refused", InferenceClusterProps(base=BaseClusterProps(vpc=vpc, cluster_name="s")))
    provider = eks.KubectlProvider.from_kubectl_provider_attributes(
        stack,
        "Kubectl",
        service_token="arn:aws:lambda:us-west-2:111122223333:function:kubectl",
        role=iam.Role.from_role_arn(stack, "KubectlRole", "arn:aws:iam::111122223333:role/kubectl"),
    )
    imported = eks.Cluster.from_cluster_attributes(
        stack,
        "Existing",
        cluster_name="existing",
        vpc=vpc,
        cluster_security_group_id="sg-0123456789abcdef0",
        kubectl_provider=provider,
    )
    training = TrainingCluster(
        stack,
        "Training",
        TrainingClusterProps(cluster=imported, node_groups=[TrainingNodeGroupProps(name="p5")], file_system=None),
    )
    with pytest.raises(ValidationError) as error:
        ObservabilityAddon(
            stack, "Observability", ObservabilityAddonProps(cluster=training, backend=Backend.PROMETHEUS)
        )
    assert [p.field for p in error.value.problems] == ["cluster.vpc"]
    assert "at least 2 AZs" in str(error.value)


@pytest.fixture(scope="module")
def inference_cluster() -> InferenceCluster:
    from eks_ml import MlVpc, MlVpcProps

    _, stack = library_stack()
    network = MlVpc(stack, "Network", MlVpcProps(availability_zones=("us-west-2a", "us-west-2b")))
    return InferenceCluster(
        stack, "Inference", InferenceClusterProps(base=BaseClusterProps(vpc=network.vpc, cluster_name="serve"))
    )


@pytest.mark.parametrize(
    ("props", "message"),
    [
        ({"cloudwatch_addon_version": "v4.5.0-eksbuild.1"}, r"allowed a version only with Backend.CLOUDWATCH"),
        ({"thresholds": Thresholds(latency_p95_seconds=0)}, r"latency_p95_seconds > 0 and queue_depth >= 1"),
        ({"thresholds": Thresholds(queue_depth=0)}, r"latency_p95_seconds > 0 and queue_depth >= 1"),
    ],
)
def test_bad_prometheus_input_is_a_validation_error(
    inference_cluster: InferenceCluster, props: dict[str, Any], message: str
) -> None:
    stack = Stack(Stack.of(inference_cluster).node.scope, f"Bad{abs(hash(str(props)))}")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match=message):
        ObservabilityAddon(
            stack,
            "Observability",
            ObservabilityAddonProps(cluster=inference_cluster, backend=Backend.PROMETHEUS, **props),
        )
