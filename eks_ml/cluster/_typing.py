"""Typing shim for aws_eks_v2's jsii stubs."""

from __future__ import annotations

from typing import cast

from aws_cdk import aws_eks_v2 as eks


def as_icluster(cluster: eks.Cluster) -> eks.ICluster:
    # The generated stubs declare ICluster.kubectl_provider_options, which Cluster does not re-declare,
    # so mypy rejects a Cluster where jsii (correctly) accepts it.
    return cast(eks.ICluster, cluster)
