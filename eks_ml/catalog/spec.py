"""What eks-ml knows about one accelerated instance type, and what follows from it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class AcceleratorVendor(Enum):
    NVIDIA = "nvidia"
    AWS_NEURON = "aws-neuron"


# Kubernetes extended resources advertised by the device plugins.
NVIDIA_GPU_RESOURCE = "nvidia.com/gpu"
NEURON_DEVICE_RESOURCE = "aws.amazon.com/neuron"
NEURON_CORE_RESOURCE = "aws.amazon.com/neuroncore"
EFA_RESOURCE = "vpc.amazonaws.com/efa"

# EKS-optimized Amazon Linux 2023 AMI types (CloudFormation AmiType values). Every family in the
# catalog is x86_64, so only the x86_64 variants are needed.
AMI_TYPE_NVIDIA = "AL2023_x86_64_NVIDIA"
AMI_TYPE_NEURON = "AL2023_x86_64_NEURON"


@dataclass(frozen=True)
class InstanceSpec:
    """One accelerated EC2 instance type.

    ``accelerator_count`` counts GPUs for NVIDIA and Neuron devices (chips) for Trainium/Inferentia;
    ``accelerator_memory_mib`` is per GPU or per Neuron device. ``efa_interfaces`` is the maximum number
    of EFA interfaces, which for every multi-card type in the catalog equals its network cards.
    """

    name: str
    vcpus: int
    memory_mib: int
    accelerator_name: str
    vendor: AcceleratorVendor
    accelerator_count: int
    accelerator_memory_mib: int
    neuron_cores: int
    efa_interfaces: int
    network_bandwidth_mbps: int
    local_nvme_gib: int
    max_pods: int

    @property
    def family(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def size(self) -> str:
        return self.name.split(".", 1)[1]

    @property
    def is_nvidia(self) -> bool:
        return self.vendor is AcceleratorVendor.NVIDIA

    @property
    def is_neuron(self) -> bool:
        return self.vendor is AcceleratorVendor.AWS_NEURON

    @property
    def ami_type(self) -> str:
        return AMI_TYPE_NVIDIA if self.is_nvidia else AMI_TYPE_NEURON

    @property
    def accelerator_resource(self) -> str:
        """The extended resource a pod requests to get this type's accelerators."""
        return NVIDIA_GPU_RESOURCE if self.is_nvidia else NEURON_DEVICE_RESOURCE

    @property
    def network_cards(self) -> int:
        # AWS allows one EFA interface per network card; single-card types still have one card.
        return max(self.efa_interfaces, 1)

    @property
    def supports_efa(self) -> bool:
        return self.efa_interfaces > 0

    @property
    def network_bandwidth_gbps(self) -> float:
        return self.network_bandwidth_mbps / 1000

    @property
    def total_accelerator_memory_gib(self) -> float:
        return self.accelerator_count * self.accelerator_memory_mib / 1024

    @property
    def workers_per_node(self) -> int:
        """Processes a distributed job runs per node: one per GPU, or one per NeuronCore."""
        return self.accelerator_count if self.is_nvidia else self.neuron_cores

    def extended_resources(self) -> dict[str, int]:
        """Every extended resource of the whole node, as a pod that takes the node would request."""
        resources = {self.accelerator_resource: self.accelerator_count}
        if self.efa_interfaces:
            resources[EFA_RESOURCE] = self.efa_interfaces
        return resources
