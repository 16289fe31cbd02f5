"""AL2023 node configuration (nodeadm) carried in the launch template's user data."""

from __future__ import annotations

BOUNDARY = "EKSML"

# RAID0 over the instance-store NVMe drives, mounted for containerd and kubelet: image layers and pod
# scratch space land on local NVMe (tens of TB on p5/trn) instead of the EBS root volume.
_NODE_CONFIG = """\
---
apiVersion: node.eks.aws/v1alpha1
kind: NodeConfig
spec:
  instance:
    localStorage:
      strategy: RAID0
"""


def raid0_user_data() -> str:
    """MIME multi-part user data; EKS merges it with the cluster settings it adds for managed nodes."""
    return (
        "MIME-Version: 1.0\n"
        f'Content-Type: multipart/mixed; boundary="{BOUNDARY}"\n\n'
        f"--{BOUNDARY}\n"
        "Content-Type: application/node.eks.aws\n\n"
        f"{_NODE_CONFIG}\n"
        f"--{BOUNDARY}--\n"
    )
