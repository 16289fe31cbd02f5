"""Mountpoint for Amazon S3 CSI driver (EKS add-on, Pod Identity) for models served straight from S3."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Aws
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from constructs import Construct

from ..cluster.pod_identity import addon_with_role, pod_identity_role
from ..nag import PACK, acknowledge
from .model_service import S3Weights

MOUNTPOINT_ADDON = "aws-mountpoint-s3-csi-driver"
MOUNTPOINT_SERVICE_ACCOUNT = "s3-csi-driver-sa"


class S3WeightsDriver(Construct):
    """The add-on and a role that can only list and read the given buckets' prefixes.

    Attributes: ``addon``, ``role``.
    """

    def __init__(self, scope: Construct, construct_id: str, *, cluster: eks.ICluster, sources: Sequence[S3Weights]):
        super().__init__(scope, construct_id)
        self.role = pod_identity_role(
            self, "Role", description="Mountpoint for Amazon S3 CSI driver: read-only access to model weights"
        )
        for bucket in sorted({source.bucket for source in sources}):
            prefixes = sorted({source.prefix for source in sources if source.bucket == bucket})
            bucket_arn = f"arn:{Aws.PARTITION}:s3:::{bucket}"
            self.role.add_to_policy(iam.PolicyStatement(actions=["s3:ListBucket"], resources=[bucket_arn]))
            self.role.add_to_policy(
                iam.PolicyStatement(
                    actions=["s3:GetObject"], resources=[f"{bucket_arn}/{prefix}*" for prefix in prefixes]
                )
            )
            for prefix in prefixes:
                acknowledge(
                    self.role,
                    f"{PACK}-IAM5[Resource::arn:<AWS::Partition>:s3:::{bucket}/{prefix}*]",
                    "Read-only access to the objects under one model's weight prefix; object keys are not known in "
                    "advance.",
                )
        self.addon = addon_with_role(
            self,
            "Addon",
            cluster=cluster,
            addon_name=MOUNTPOINT_ADDON,
            service_account=MOUNTPOINT_SERVICE_ACCOUNT,
            role=self.role,
        )
