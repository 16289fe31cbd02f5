"""TrainingStack and InferenceStack: a training cluster and an inference cluster in the shared VPC.

The training and inference capabilities (node groups, Karpenter, jobs, model services) are added to
these stacks by their own constructs.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from eks_ml import AppConfig, BaseClusterProps, MlVpc, SystemNodesProps
from eks_ml.inference import InferenceCluster, InferenceClusterProps
from eks_ml.network import KARPENTER_DISCOVERY_TAG
from eks_ml.observability import Backend
from eks_ml.training import TrainingCluster, TrainingClusterProps


def base_cluster_props(config: AppConfig, network: MlVpc, cluster_name: str) -> BaseClusterProps:
    return BaseClusterProps(
        vpc=network.vpc,
        cluster_name=cluster_name,
        kubernetes_version=config.kubernetes_version,
        endpoint_access=config.endpoint_access,
        public_access_cidrs=config.public_access_cidrs,
        admin_principal_arns=config.admin_principal_arns,
        auto_mode=config.auto_mode,
        system_nodes=SystemNodesProps(instance_type=ec2.InstanceType(config.system_instance_type)),
    )


class TrainingStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: AppConfig, network: MlVpc, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.training = TrainingCluster(
            self,
            "Cluster",
            TrainingClusterProps(
                base=base_cluster_props(config, network, config.training_cluster_name),
                node_groups=[config.training_node_group()],
                file_system=config.training_file_system(),
                max_restarts=config.training_max_restarts,
            ),
        )
        self.base = self.training.base


class InferenceStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: AppConfig, network: MlVpc, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.inference = InferenceCluster(
            self,
            "Cluster",
            InferenceClusterProps(
                base=base_cluster_props(config, network, config.inference_cluster_name),
                subnet_tags={KARPENTER_DISCOVERY_TAG: network.discovery_tag_value},
                model_services=config.model_services(),
                # The Prometheus backend's managed scraper must get through the serving namespace's policies.
                managed_scraper_access=config.observability_backend is Backend.PROMETHEUS,
            ),
        )
        self.base = self.inference.base
