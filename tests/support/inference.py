"""An InferenceCluster as a library user composes it: a two-zone MlVpc and the cluster in one stack."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_cdk import assertions

from eks_ml import BaseClusterProps, MlVpc, MlVpcProps
from eks_ml.inference import InferenceCluster, InferenceClusterProps

from .synth import library_stack


def inference_cluster(base: Mapping[str, Any] | None = None, **props: Any) -> tuple[InferenceCluster, dict[str, Any]]:
    """The cluster (``base``: BaseClusterProps fields beside the VPC; default name "serve") and its stack's
    template; ``props``: further InferenceClusterProps."""
    _, stack = library_stack()
    network = MlVpc(
        stack, "Network", MlVpcProps(availability_zones=("us-west-2a", "us-west-2b"), discovery_tag_value="ml")
    )
    cluster = InferenceCluster(
        stack,
        "Inference",
        InferenceClusterProps(
            base=BaseClusterProps(vpc=network.vpc, **{"cluster_name": "serve", **(base or {})}),
            subnet_tags={"karpenter.sh/discovery": "ml"},
            **props,
        ),
    )
    return cluster, assertions.Template.from_stack(stack).to_json()
