"""What eks-ml knows about one accelerated instance type, and what follows from it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class AcceleratorVendor(Enum):
    NVIDIA = "nvidia"
    AWS_NEURON = "aws-neuron"


# Kubernetes extended resources advertised by the device plugins. The Neuron device plugin counts
# neuroncore in logical cores of the node's LNC, which is set on the node (launch template), not per pod:
# https://docs.aws.amazon.com/eks/latest/userguide/device-management-neuron.html
NVIDIA_GPU_RESOURCE = "nvidia.com/gpu"
NEURON_DEVICE_RESOURCE = "aws.amazon.com/neuron"
NEURON_CORE_RESOURCE = "aws.amazon.com/neuroncore"
EFA_RESOURCE = "vpc.amazonaws.com/efa"

# Launch-template InterfaceType values. "efa" (EFA with ENA) is valid too, but the current EC2 guidance
# ("Maximize network bandwidth on instances with multiple network cards",
# https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/efa-acc-inst-types.html) uses only these two.
INTERFACE_ENA = "interface"
INTERFACE_EFA_ONLY = "efa-only"
INTERFACE_EFA = "efa"
EFA_INTERFACE_TYPES = frozenset({INTERFACE_EFA, INTERFACE_EFA_ONLY})

# EKS-optimized Amazon Linux 2023 AMI types (CloudFormation AmiType values). Every family in the
# catalog is x86_64, so only the x86_64 variants are needed.
AMI_TYPE_NVIDIA = "AL2023_x86_64_NVIDIA"
AMI_TYPE_NEURON = "AL2023_x86_64_NEURON"


@dataclass(frozen=True)
class NetworkInterfaceSlot:
    """One launch-template network interface: where it attaches and what it is."""

    network_card_index: int
    device_index: int
    interface_type: str

    @property
    def has_efa(self) -> bool:
        return self.interface_type in EFA_INTERFACE_TYPES


@dataclass(frozen=True)
class InstanceSpec:
    """One accelerated EC2 instance type.

    ``accelerator_count`` counts GPUs for NVIDIA and Neuron devices (chips) for Trainium/Inferentia;
    ``accelerator_memory_mib`` is per GPU or per Neuron device. ``physical_neuron_cores`` counts the
    hardware NeuronCores; ``logical_nc_config`` is the default Logical NeuronCore configuration (how many
    physical cores the Neuron runtime and device plugin present as one). ``efa_interfaces`` is the
    maximum number of EFA interfaces, one per EFA-capable network card; ``efa_on_card_zero`` is False for
    types whose network card 0 has no EFA (it then carries only the primary ENA interface).
    """

    name: str
    vcpus: int
    memory_mib: int
    accelerator_name: str
    vendor: AcceleratorVendor
    accelerator_count: int
    accelerator_memory_mib: int
    physical_neuron_cores: int
    efa_interfaces: int
    network_bandwidth_mbps: int
    local_nvme_gib: int
    max_pods: int
    logical_nc_config: int = 1
    efa_on_card_zero: bool = True

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
    def neuron_cores(self) -> int:
        """Logical NeuronCores under the default LNC: what the Neuron device plugin advertises as
        ``aws.amazon.com/neuroncore`` and how many ranks one node runs (trn2.48xlarge: 128 / 2 = 64)."""
        return self.physical_neuron_cores // self.logical_nc_config

    @property
    def network_cards(self) -> int:
        # One EFA interface per EFA-capable card, plus card 0 where it has no EFA; every type has a card 0.
        return max(self.efa_interfaces + (0 if self.efa_on_card_zero else 1), 1)

    @property
    def efa_cards(self) -> tuple[int, ...]:
        """Indices of the network cards that support EFA."""
        first = 0 if self.efa_on_card_zero else 1
        return tuple(range(first, first + self.efa_interfaces))

    def network_interface_layout(self, *, ena_on_every_card: bool = False) -> tuple[NetworkInterfaceSlot, ...]:
        """The EC2 user guide's recommended interfaces for this type, sorted by card then device.

        An ENA ``interface`` is the primary (card 0, device 0; an EFA-only interface cannot be primary);
        ``efa-only`` at card 0 device 1 where card 0 supports EFA; ``efa-only`` at device 0 on every other
        card. With ``ena_on_every_card`` each other card also gets an ENA ``interface`` at device 1 (an IP
        address per card, for IP bandwidth). Source: "Maximize network bandwidth on Amazon EC2 instances
        with multiple network cards", https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/efa-acc-inst-types.html
        """
        slots = [NetworkInterfaceSlot(0, 0, INTERFACE_ENA)]
        efa_cards = set(self.efa_cards)
        if 0 in efa_cards:
            slots.append(NetworkInterfaceSlot(0, 1, INTERFACE_EFA_ONLY))
        for card in range(1, self.network_cards):
            if card in efa_cards:
                slots.append(NetworkInterfaceSlot(card, 0, INTERFACE_EFA_ONLY))
            if ena_on_every_card:
                slots.append(NetworkInterfaceSlot(card, 1, INTERFACE_ENA))
        return tuple(slots)

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
        """Processes a distributed job runs per node: one per GPU, or one per logical NeuronCore."""
        return self.accelerator_count if self.is_nvidia else self.neuron_cores

    def extended_resources(self) -> dict[str, int]:
        """Every extended resource of the whole node, as a pod that takes the node would request.

        Neuron pods take whole devices (``aws.amazon.com/neuron``), which brings every core of each device;
        they never also request ``aws.amazon.com/neuroncore`` for the same cores.
        """
        resources = {self.accelerator_resource: self.accelerator_count}
        if self.efa_interfaces:
            resources[EFA_RESOURCE] = self.efa_interfaces
        return resources

    def advertised_resources(self) -> dict[str, int]:
        """What the device plugins advertise on one node: accelerators, logical NeuronCores, EFA devices."""
        resources = self.extended_resources()
        if self.is_neuron:
            resources[NEURON_CORE_RESOURCE] = self.neuron_cores
        return resources
