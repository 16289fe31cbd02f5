#!/usr/bin/env python3
"""Library use: your own CDK app composing eks_ml constructs in your own stacks.

One InferenceCluster in a VPC you already have, serving one model, and an ObservabilityAddon in a stack
of its own. Replace the VPC and subnet ids with yours, then ``cdk synth`` / ``cdk deploy`` from this
directory. The private subnets must carry the tag in ``SUBNET_TAGS`` (Karpenter finds them by it) and
``kubernetes.io/role/internal-elb=1`` (the load balancer controller does); CDK cannot tag subnets it
did not create, which is what its clusterMustManuallyTagSubnet warning says.
"""

from __future__ import annotations

import eks_ml.bundled_node  # noqa: F401  (optional, first: jsii runs on eks-ml[node]'s Node.js)

# isort: split
from aws_cdk import App, Environment, Stack
from aws_cdk import aws_ec2 as ec2
from constructs import Construct

import eks_ml
from eks_ml.inference import InferenceCluster, InferenceClusterProps, NodePoolProps, PoolKind
from eks_ml.inference.model_service import HubWeights, ModelServiceProps
from eks_ml.observability import ObservabilityAddon, ObservabilityAddonProps

ENV = Environment(account="111122223333", region="us-east-1")  # yours
SUBNET_TAGS = {"karpenter.sh/discovery": "serving"}


class ServingStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, **kwargs: object) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        vpc = ec2.Vpc.from_vpc_attributes(
            self,
            "ExistingVpc",
            vpc_id="vpc-0a1b2c3d4e5f67890",
            availability_zones=["us-east-1a", "us-east-1b"],
            private_subnet_ids=["subnet-0aaaaaaaaaaaaaaa1", "subnet-0bbbbbbbbbbbbbbb2"],
            # The blocks are needed: the serving namespace's NetworkPolicies admit the internal ALB by address.
            vpc_cidr_block="10.20.0.0/16",
            private_subnet_ipv4_cidr_blocks=["10.20.0.0/18", "10.20.64.0/18"],
        )
        self.inference = InferenceCluster(
            self,
            "Serving",
            InferenceClusterProps(
                base=eks_ml.BaseClusterProps(
                    vpc=vpc,
                    cluster_name="serving",
                    endpoint_access=eks_ml.EndpointAccessMode.PRIVATE,
                ),
                # Only the GPU pool: this team serves on NVIDIA L4 and L40S.
                pools=[NodePoolProps(name="gpu", kind=PoolKind.NVIDIA, instance_types=["g6.xlarge", "g6e.xlarge"])],
                subnet_tags=SUBNET_TAGS,
                model_services=[
                    ModelServiceProps(
                        name="qwen3-8b",
                        instance_type="g6e.xlarge",
                        weights=HubWeights(model_id="Qwen/Qwen3-8B"),
                        parameters_billions=8.2,
                        max_replicas=8,
                    )
                ],
            ),
        )


class MonitoringStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, serving: InferenceCluster, **kwargs: object) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        self.observability = ObservabilityAddon(
            self,
            "Observability",
            ObservabilityAddonProps(cluster=serving, alarm_emails=["ml-oncall@example.com"]),
        )


def build(app: App) -> tuple[ServingStack, MonitoringStack]:
    serving = ServingStack(app, "Serving", env=ENV)
    monitoring = MonitoringStack(app, "ServingMonitoring", serving=serving.inference, env=ENV)
    return serving, monitoring


if __name__ == "__main__":
    app = App()
    build(app)
    app.synth()
