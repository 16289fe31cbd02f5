"""The default app's stacks, composed from eks_ml constructs."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk import App, DefaultStackSynthesizer, Environment

from eks_ml import AppConfig, gitops

from .clusters import InferenceStack, TrainingStack
from .network import NetworkStack
from .observability import ObservabilityStack


@dataclass(frozen=True)
class DefaultStacks:
    network: NetworkStack
    training: TrainingStack
    inference: InferenceStack
    training_observability: ObservabilityStack
    inference_observability: ObservabilityStack


def stack_names(config: AppConfig) -> dict[str, str]:
    """CloudFormation stack names, stable for a given ``eks-ml:name``."""
    parts = ("network", "training", "inference", "training-observability", "inference-observability")
    return {part: f"{config.name}-{part}" for part in parts}


def placement(app: App, config: AppConfig, *, bootstrap_version_rule: bool = True) -> Callable[[str], dict[str, Any]]:
    """Name, environment and synthesizer of each default stack, by part (bench/phases.py builds them one by one)."""
    # The account comes from config or the CLI's credentials; without either the stacks are
    # account-agnostic, which is enough to synthesize (the region and AZs are fixed by config).
    env = Environment(account=config.account or os.environ.get("CDK_DEFAULT_ACCOUNT"), region=config.region)
    names = stack_names(config)
    if env.account and not app.node.children:
        # With an account, ec2.Vpc checks the configured AZs against the account's, which is a context
        # lookup needing credentials. The AZs come from configuration by design (eks-ml:availabilityZones),
        # so give CDK that answer instead of letting synthesis fail without credentials.
        lookup = f"availability-zones:account={env.account}:region={env.region}"
        if app.node.try_get_context(lookup) is None:
            app.node.set_context(lookup, list(config.availability_zones))

    def placed(part: str) -> dict[str, Any]:
        """Name, environment and synthesizer of one stack (a synthesizer binds to a single stack)."""
        synthesizer = DefaultStackSynthesizer(generate_bootstrap_version_rule=bootstrap_version_rule)
        return {"stack_name": names[part], "env": env, "synthesizer": synthesizer}

    return placed


def build_default_app(app: App, config: AppConfig, *, bootstrap_version_rule: bool = True) -> DefaultStacks:
    """Add the default stacks to ``app``. Tests pass ``bootstrap_version_rule=False`` so snapshots
    do not carry the CDK bootstrap SSM parameter rule."""
    placed = placement(app, config, bootstrap_version_rule=bootstrap_version_rule)
    network = NetworkStack(app, "Network", config=config, **placed("network"))
    training = TrainingStack(app, "Training", config=config, network=network.network, **placed("training"))
    inference = InferenceStack(app, "Inference", config=config, network=network.network, **placed("inference"))
    training_observability = ObservabilityStack(
        app, "TrainingObservability", config=config, cluster=training.training, **placed("training-observability")
    )
    inference_observability = ObservabilityStack(
        app, "InferenceObservability", config=config, cluster=inference.inference, **placed("inference-observability")
    )
    return DefaultStacks(network, training, inference, training_observability, inference_observability)


def write_gitops(stacks: DefaultStacks, directory: Path) -> list[Path]:
    """Write each cluster's in-cluster objects under ``directory/<cluster name>/`` for kubectl or Argo CD,
    its Grafana dashboard under ``dashboards/``, and the training cluster's example and fabric-test
    TrainJobs and the inference cluster's benchmark Jobs (which no stack applies)."""
    training = stacks.training.training
    inference = stacks.inference.inference
    written: list[Path] = []
    pairs = (
        (training, training.base_cluster_name, stacks.training_observability.observability),
        (inference, inference.base.cluster_name, stacks.inference_observability.observability),
    )
    for cluster, name, addon in pairs:
        # The cluster's charts first; then what its observability add-on applies (neuron-monitor).
        charts = [*cluster.applied_charts, *(addon.prometheus.applied_charts if addon.prometheus else [])]
        releases = gitops.helm_releases(cluster) + gitops.helm_releases(addon)
        exported = gitops.export_charts(directory / name, charts, releases)
        written += [*exported.files, exported.directory / gitops.KUSTOMIZATION]
        written.append(gitops.write_dashboard(directory / name, name, addon.dashboard))
    jobs = directory / training.base_cluster_name / "training-jobs.yaml"
    jobs.write_text(training.jobs_yaml())
    written.append(jobs)
    if training.sweeps_yaml():  # only when the training cluster has sweeps (the default app has none)
        trials = directory / training.base_cluster_name / "sweep-trials.yaml"
        trials.write_text(training.sweeps_yaml())
        written.append(trials)
    if inference.benchmarks_yaml():  # only when the inference cluster has benchmarks (the default app has none)
        benchmarks = directory / inference.base.cluster_name / "inference-benchmarks.yaml"
        benchmarks.write_text(inference.benchmarks_yaml())
        written.append(benchmarks)
    return written
