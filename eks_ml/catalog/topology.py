"""Which instance types EKS labels with their place in the EC2 network, and how many network layers they have.

EKS puts ``topology.k8s.aws/network-node-layer-1`` (top) .. ``-3`` (bottom) on nodes of the types the EC2
instance topology API supports, and a fourth, ``-4``, below those on the types whose topology has four layers.
Sources (read 2026-11-28): EC2 User Guide, "Prerequisites for Amazon EC2 topology", section Instance types
(https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ec2-instance-topology-prerequisites.html) for the types and
their 3 or 4 network nodes; EKS User Guide, "Place distributed AI/ML workloads with network topology labels"
(https://docs.aws.amazon.com/eks/latest/userguide/ml-workload-topology.html) for the label keys.
"""

from __future__ import annotations

NETWORK_NODE_LABEL_PREFIX = "topology.k8s.aws/network-node-layer-"

_THREE_LAYERS = [
    "g6e.xlarge",
    "g6e.2xlarge",
    "g6e.4xlarge",
    "g6e.8xlarge",
    "g6e.12xlarge",
    "g6e.16xlarge",
    "g6e.24xlarge",
    "g6e.48xlarge",
    "g7e.2xlarge",
    "g7e.4xlarge",
    "g7e.8xlarge",
    "g7e.12xlarge",
    "g7e.24xlarge",
    "g7e.48xlarge",
    "hpc6a.48xlarge",
    "hpc6id.32xlarge",
    "hpc7g.4xlarge",
    "hpc7g.8xlarge",
    "hpc7g.16xlarge",
    "hpc7a.12xlarge",
    "hpc7a.24xlarge",
    "hpc7a.48xlarge",
    "hpc7a.96xlarge",
    "p3dn.24xlarge",
    "p4d.24xlarge",
    "p4de.24xlarge",
    "p5.48xlarge",
    "p5e.48xlarge",
    "p5en.48xlarge",
    "p6e-gb200.36xlarge",
    "trn1.2xlarge",
    "trn1.32xlarge",
    "trn1n.32xlarge",
    "trn2.48xlarge",
    "trn2u.48xlarge",
]
_FOUR_LAYERS = ("p6-b200.48xlarge", "p6-b300.48xlarge")

NETWORK_LAYERS: dict[str, int] = {**dict.fromkeys(_THREE_LAYERS, 3), **dict.fromkeys(_FOUR_LAYERS, 4)}


def network_layers(instance_type: str) -> int:
    """How many ``network-node-layer-N`` labels nodes of this type carry; 0 when EKS does not label them."""
    return NETWORK_LAYERS.get(instance_type, 0)


def network_node_labels(layers: int) -> list[str]:
    """The label keys from the top of the network (layer 1, broadest) to the bottom (closest to the node)."""
    return [f"{NETWORK_NODE_LABEL_PREFIX}{layer}" for layer in range(1, layers + 1)]
