"""Quality gates over the whole default app: cfn-lint, cdk-nag, our EKS checks, determinism, snapshots."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from aws_cdk import App, Stack

from eks_ml import AppConfig, load_app_config
from eks_ml.nag import acknowledge
from stacks import build_default_app, stack_names

from .support import cel_rules, eks_checks
from .support.manifests import applied_objects, requires_chart_cache, validate_objects
from .support.synth import CDK_CONTEXT, Synthesis, error_findings, make_app, normalize, synthesize

STACKS = ("Network", "Training", "Inference", "TrainingObservability", "InferenceObservability")


def test_stack_ids_and_names_are_stable(default_synth: Synthesis, default_config: AppConfig) -> None:
    assert tuple(default_synth.templates) == tuple(sorted(STACKS))
    manifest = json.loads((default_synth.outdir / "manifest.json").read_text())
    names = {
        k: a["properties"]["stackName"]
        for k, a in manifest["artifacts"].items()
        if a["type"] == "aws:cloudformation:stack"
    }
    assert names == {
        "Network": "eks-ml-network",
        "Training": "eks-ml-training",
        "Inference": "eks-ml-inference",
        "TrainingObservability": "eks-ml-training-observability",
        "InferenceObservability": "eks-ml-inference-observability",
    }
    assert stack_names(default_config) == {
        "network": "eks-ml-network",
        "training": "eks-ml-training",
        "inference": "eks-ml-inference",
        "training-observability": "eks-ml-training-observability",
        "inference-observability": "eks-ml-inference-observability",
    }


def test_an_acknowledgement_needs_a_specific_reason() -> None:
    with pytest.raises(ValueError, match="needs a specific reason"):
        acknowledge(Stack(App(), "S"), "AwsSolutions-IAM4", "ok")


@pytest.mark.parametrize("stack", STACKS)
def test_our_eks_checks_pass(default_synth: Synthesis, stack: str) -> None:
    assert eks_checks.all_findings(default_synth.templates[stack]) == []


def test_synthesis_is_deterministic(default_synth: Synthesis, default_config: AppConfig, tmp_path: Path) -> None:
    again = synthesize(make_app(tmp_path), lambda a: build_default_app(a, default_config, bootstrap_version_rule=False))
    assert again.templates == default_synth.templates


def test_resource_counts_state_the_shape_of_the_default_app(default_synth: Synthesis) -> None:
    counts = {
        stack: Counter(r["Type"] for r in t["Resources"].values()) for stack, t in default_synth.templates.items()
    }
    assert counts["Network"]["AWS::EC2::Subnet"] == 6
    assert counts["Network"]["AWS::EC2::NatGateway"] == 3
    for stack in ("Training", "Inference"):
        assert counts[stack]["AWS::EKS::Cluster"] == 1
        # Only the kubectl provider is Lambda-backed; add-ons and access entries are native resources.
        assert counts[stack]["AWS::Lambda::Function"] == 2
    assert counts["Inference"]["AWS::EKS::Addon"] == 6
    assert counts["Training"]["AWS::EKS::Addon"] == 8  # plus aws-fsx-csi-driver and aws-ebs-csi-driver
    assert counts["Training"]["AWS::FSx::FileSystem"] == 1
    # In-cluster software goes through the one kubectl provider: NVIDIA and EFA device plugins, Kueue,
    # Kubeflow Trainer (Helm); two manifests (eks_ml.manifest_bundle): the prelude before the releases (their
    # labelled namespaces, the burn-in DaemonSets, the Job that upgrades JobSet's CRD) and the workloads after them (queues, file-system
    # volume, runtimes); and the wait for that Job, which the trainer chart needs.
    assert counts["Training"]["Custom::AWSCDK-EKS-HelmChart"] == 4
    assert counts["Training"]["Custom::AWSCDK-EKS-KubernetesResource"] == 2
    assert counts["Training"]["Custom::AWSCDK-EKS-KubernetesObjectValue"] == 1
    # Training: the system nodes plus one p5.48xlarge group in a cluster placement group.
    assert counts["Training"]["AWS::EKS::Nodegroup"] == 2
    assert counts["Training"]["AWS::EC2::PlacementGroup"] == 1
    assert counts["Inference"]["AWS::EKS::Nodegroup"] == 1  # system nodes; Karpenter launches the rest
    # Karpenter, AWS Load Balancer Controller, Prometheus, prometheus-adapter, and the Neuron device plugin the
    # Inferentia pool needs; the GPU pool runs Bottlerocket, whose NVIDIA variant ships its own device plugin.
    assert counts["Inference"]["Custom::AWSCDK-EKS-HelmChart"] == 5
    # The prelude (the inference and monitoring namespaces, the deploy-time values of the Karpenter and load
    # balancer releases, the one Job that upgrades both charts' CRDs) and the workloads (NodePools, the two sample
    # model services); and the wait for that Job.
    assert counts["Inference"]["Custom::AWSCDK-EKS-KubernetesResource"] == 2
    assert counts["Inference"]["Custom::AWSCDK-EKS-KubernetesObjectValue"] == 1
    # Issue 10's budget of Lambda-backed custom resources (bench/run.py counts them the same way).
    for stack, budget in (("Inference", 8), ("Training", 7)):
        assert sum(n for kind, n in counts[stack].items() if kind.startswith("Custom::")) <= budget
    assert counts["Inference"]["AWS::Events::Rule"] == 4  # interruption events into the Karpenter queue
    # Observability: one native add-on each, no Lambda, no Helm, no manifests.
    for stack in ("TrainingObservability", "InferenceObservability"):
        assert counts[stack]["AWS::EKS::Addon"] == 1
        assert counts[stack]["AWS::Logs::LogGroup"] == 4
        assert counts[stack]["AWS::SNS::Topic"] == 1
        assert counts[stack]["AWS::Lambda::Function"] == 0
        assert counts[stack]["Custom::AWSCDK-EKS-HelmChart"] == 0
    # The VPC's restrict-default-security-group custom resource is the only Lambda in the network stack.
    assert counts["Network"]["AWS::Lambda::Function"] == 1


@pytest.mark.parametrize("stack", STACKS)
def test_stack_snapshot(default_synth: Synthesis, stack: str, json_snapshot) -> None:  # type: ignore[no-untyped-def]
    assert normalize(default_synth.templates[stack]) == json_snapshot


@requires_chart_cache
def test_every_applied_kubernetes_object_passes_the_validator(default_synth: Synthesis) -> None:
    objects = [obj for template in default_synth.templates.values() for obj in applied_objects(template)]
    kinds = {obj["kind"] for obj in objects}
    assert {
        "Namespace",
        "ResourceFlavor",
        "ClusterQueue",
        "LocalQueue",
        "PersistentVolume",
        "PersistentVolumeClaim",
        "ConfigMap",
        "ClusterTrainingRuntime",
        "NodePool",
        "EC2NodeClass",
    } <= kinds
    stats = cel_rules.CelStats()
    assert validate_objects(objects, stats) == []
    # The CEL rules really ran over our custom objects; none was skipped as unsupported.
    assert stats.evaluated > 100 and stats.failed == 0 and stats.unsupported == {}, stats.summary()
    assert stats.transition and all(cel_rules.is_transition(rule) for rule in stats.transition)


def test_an_account_needs_no_credentials_to_synthesize(default_config: AppConfig, tmp_path: Path) -> None:
    # With an account, ec2.Vpc checks the configured AZs against the account's: a context lookup that the
    # CLI can only do with credentials. The app answers it from eks-ml:availabilityZones instead.
    context = {**CDK_CONTEXT, "eks-ml:account": "123456789012"}
    app = make_app(tmp_path, context)
    build_default_app(app, load_app_config(context), bootstrap_version_rule=False)
    app.synth()
    assert "missing" not in json.loads((tmp_path / "manifest.json").read_text())
    assert app.node.try_get_context("availability-zones:account=123456789012:region=us-west-2") == list(
        default_config.availability_zones
    )


def test_an_acknowledgement_names_a_gated_pack() -> None:
    acknowledge(Stack(App(), "N"), "NIST.800.53.R5-LambdaDLQ", "a specific reason of sufficient length")
    with pytest.raises(ValueError, match="must start with one of"):
        acknowledge(Stack(App(), "S"), "HIPAA.Security-LambdaDLQ", "a specific reason of sufficient length")


def test_the_nist_pack_runs_in_the_nag_gate(tmp_path: Path) -> None:
    """An unencrypted log group without acknowledgement is a NIST 800-53 R5 finding; acknowledged, it is not."""
    from aws_cdk import aws_logs as logs

    from eks_ml.nag import nist

    def build(app: App, acknowledged: bool) -> None:
        group = logs.LogGroup(Stack(app, "S"), "Logs", retention=logs.RetentionDays.ONE_WEEK)
        if acknowledged:
            acknowledge(group.node.default_child, nist("CloudWatchLogGroupEncrypted"), "a reason of sufficient length")

    bare = synthesize(make_app(tmp_path / "bare", nag=True), lambda a: build(a, False))
    assert "NIST.800.53.R5-CloudWatchLogGroupEncrypted @ S/Logs/Resource" in error_findings(bare.validation_report)
    acknowledged = synthesize(make_app(tmp_path / "ack", nag=True), lambda a: build(a, True))
    assert not [f for f in error_findings(acknowledged.validation_report) if f.startswith("NIST")]
