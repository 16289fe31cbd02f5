#!/usr/bin/env python3
"""A library user's own app, for the eks-ml plan tests: two teams' clusters in three stacks of one app,
with a minimal cdk.json (no eks-ml context keys, no feature flags)."""

from __future__ import annotations

import eks_ml.bundled_node  # noqa: F401  (first: jsii runs on eks-ml[node]'s Node.js)

# isort: split
from aws_cdk import App, Environment, Stack

from eks_ml import BaseClusterProps, MlVpc, MlVpcProps
from eks_ml.inference import InferenceCluster, InferenceClusterProps
from eks_ml.inference.model_service import HubWeights, ModelServiceProps
from eks_ml.training import TrainingCluster, TrainingClusterProps, TrainingNodeGroupProps

ENV = Environment(region="us-west-2")
ZONES = ("us-west-2a", "us-west-2b")


def build(app: App) -> None:
    network = Stack(app, "Network", env=ENV)
    vpc = MlVpc(network, "Vpc", MlVpcProps(availability_zones=ZONES)).vpc
    research = Stack(app, "Research", env=ENV)
    TrainingCluster(
        research,
        "Pretraining",
        TrainingClusterProps(
            base=BaseClusterProps(vpc=vpc, cluster_name="research-train"),
            # trn2 has no price in the table: the plan must say so, not count it as free.
            node_groups=[TrainingNodeGroupProps(name="trn2", instance_type="trn2.48xlarge", desired_size=4)],
            file_system=None,
        ),
    )
    serving = Stack(app, "Serving", env=ENV)
    for team, model in (("search", "Qwen/Qwen3-8B"), ("chat", "Qwen/Qwen3-8B")):
        InferenceCluster(
            serving,
            f"{team.title()}Inference",
            InferenceClusterProps(
                base=BaseClusterProps(vpc=vpc, cluster_name=f"{team}-serving"),
                model_services=[
                    ModelServiceProps(
                        name=f"{team}-model",
                        instance_type="g6e.xlarge",
                        weights=HubWeights(model_id=model),
                        parameters_billions=8.2,
                    )
                ],
            ),
        )


if __name__ == "__main__":
    application = App()
    build(application)
    application.synth()
