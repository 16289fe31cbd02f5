#!/usr/bin/env python3
"""Library use: training capacity from Karpenter beside a managed node group.

One TrainingCluster in a VPC it creates: a managed node group of Trainium nodes, and two Karpenter pools of
p5.48xlarge, one On-Demand in a cluster placement group, one from an EC2 Capacity Block (replace the
reservation id with yours). Karpenter launches a pool's nodes only while Kueue has admitted jobs for them;
each node joins with the burn-in taint and takes jobs once its burn-in passed. ``cdk synth`` from here.
"""

from __future__ import annotations

import eks_ml.bundled_node  # noqa: F401  (optional, first: jsii runs on eks-ml[node]'s Node.js)

# isort: split
from aws_cdk import App, Environment, Stack
from constructs import Construct

import eks_ml
from eks_ml.training import (
    Capacity,
    TrainingCluster,
    TrainingClusterProps,
    TrainingKarpenterPoolProps,
    TrainingNodeGroupProps,
)

ENV = Environment(account="111122223333", region="us-west-2")  # yours
CAPACITY_BLOCK = "cr-0123456789abcdef0"  # yours: the Capacity Block's reservation id


class KarpenterTrainingStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, **kwargs: object) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        network = eks_ml.MlVpc(self, "Network", eks_ml.MlVpcProps(availability_zones=("us-west-2a", "us-west-2b")))
        self.training = TrainingCluster(
            self,
            "Training",
            TrainingClusterProps(
                base=eks_ml.BaseClusterProps(vpc=network.vpc, cluster_name="karpenter-training"),
                node_groups=[TrainingNodeGroupProps(name="trn1", instance_type="trn1.32xlarge", desired_size=1)],
                karpenter_pools=[
                    TrainingKarpenterPoolProps(name="p5-on-demand", instance_type="p5.48xlarge", max_nodes=2),
                    TrainingKarpenterPoolProps(
                        name="p5-block",
                        instance_type="p5.48xlarge",
                        max_nodes=2,
                        capacity=Capacity.capacity_block(CAPACITY_BLOCK),
                    ),
                ],
            ),
        )


def build(app: App) -> tuple[KarpenterTrainingStack]:
    return (KarpenterTrainingStack(app, "KarpenterTraining", env=ENV),)


if __name__ == "__main__":
    app = App()
    build(app)
    app.synth()
