"""NetworkStack: the VPC both clusters share."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from constructs import Construct

from eks_ml import AppConfig, MlVpc, MlVpcProps


class NetworkStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: AppConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.network = MlVpc(
            self,
            "Network",
            MlVpcProps(
                availability_zones=config.availability_zones,
                cidr=config.vpc_cidr,
                nat_gateways=config.nat_gateways,
                discovery_tag_value=config.name,
            ),
        )
