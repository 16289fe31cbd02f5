"""Launch templates that keep instance metadata and root volumes locked down."""

from __future__ import annotations

from aws_cdk import aws_ec2 as ec2
from constructs import Construct

# Hop limit 2 lets pods on the host network path reach IMDSv2 through one extra hop (the EKS
# managed node group default); anything higher exposes credentials to more network paths.
IMDS_HOP_LIMIT = 2
ROOT_DEVICE = "/dev/xvda"  # root device of the EKS-optimized AL2023 AMIs


def secure_launch_template(scope: Construct, construct_id: str, *, root_volume_gib: int) -> ec2.LaunchTemplate:
    """IMDSv2 required, hop limit 2, encrypted gp3 root volume. No instance type or AMI: the node
    group sets those, so EKS keeps managing the AMI and its bootstrap."""
    return ec2.LaunchTemplate(
        scope,
        construct_id,
        require_imdsv2=True,
        http_put_response_hop_limit=IMDS_HOP_LIMIT,
        block_devices=[
            ec2.BlockDevice(
                device_name=ROOT_DEVICE,
                volume=ec2.BlockDeviceVolume.ebs(
                    root_volume_gib,
                    encrypted=True,
                    volume_type=ec2.EbsDeviceVolumeType.GP3,
                    delete_on_termination=True,
                ),
            )
        ],
    )
