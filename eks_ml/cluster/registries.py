"""The Amazon ECR registry that serves Amazon EKS add-on images (such as the EFA device plugin) in each
region. Pulling from the node's own region avoids cross-region transfer and works in regions whose
nodes cannot reach us-west-2's registry (opt-in regions, China, GovCloud).

Source: Amazon EKS User Guide, "View Amazon container image registries for Amazon EKS add-ons"
(add-ons-images.html), read 2026-11.
"""

from __future__ import annotations

from .._tokens import is_unresolved
from ..errors import ValidationError

DEFAULT_ACCOUNT = "602401143452"  # every commercial region not listed below
# Regions whose EKS images live in an account of their own.
ACCOUNTS = {
    "af-south-1": "877085696533",
    "ap-east-1": "800184023465",
    "ap-east-2": "533267051163",
    "ap-south-2": "900889452093",
    "ap-southeast-3": "296578399912",
    "ap-southeast-4": "491585149902",
    "ap-southeast-5": "151610086707",
    "ap-southeast-6": "333609536671",
    "ap-southeast-7": "121268973566",
    "ca-west-1": "761377655185",
    "cn-north-1": "918309763551",
    "cn-northwest-1": "961992271922",
    "eu-central-2": "900612956339",
    "eu-south-1": "590381155156",
    "eu-south-2": "455263428931",
    "il-central-1": "066635153087",
    "me-central-1": "759879836304",
    "me-south-1": "558608220178",
    "mx-central-1": "730335286997",
    "us-gov-east-1": "151742754352",
    "us-gov-west-1": "013241004608",
}


def eks_image_registry(region: str) -> str:
    """``<account>.dkr.ecr.<region>.amazonaws.com`` (``.com.cn`` in China) for ``region``."""
    if is_unresolved(region):
        raise ValidationError.single(
            "region",
            "an environment-agnostic stack (region unknown at synth)",
            "a stack with an explicit region",
            "give the stack env=Environment(region=...): EKS add-on images are pulled from the region's registry",
        )
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"{ACCOUNTS.get(region, DEFAULT_ACCOUNT)}.dkr.ecr.{region}.{suffix}"
