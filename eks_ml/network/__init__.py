"""The VPC both clusters run in."""

from .vpc import (
    ELB_ROLE_TAG,
    INTERNAL_ELB_ROLE_TAG,
    KARPENTER_DISCOVERY_TAG,
    MlVpc,
    MlVpcProps,
    NatGateways,
)

__all__ = [
    "ELB_ROLE_TAG",
    "INTERNAL_ELB_ROLE_TAG",
    "KARPENTER_DISCOVERY_TAG",
    "MlVpc",
    "MlVpcProps",
    "NatGateways",
]
