"""The catalog's data: one row per accelerated instance type eks-ml supports.

GPU/Neuron counts, per-GPU memory, physical NeuronCores, EFA interfaces, bandwidth, local NVMe and max
pods come from Karpenter's generated instance-type reference (v1.14 docs); tests/catalog checks every row
against that data. Neuron device memory is not in that reference: it comes from the EC2 instance-type
pages (Inferentia2 and Trainium: 32 GiB per device; Trainium2: 96 GiB per device).
"""

from __future__ import annotations

from .spec import AcceleratorVendor, InstanceSpec

NEURON_DEVICE_MEMORY_MIB = {
    "inferentia2": 32 * 1024,
    "trainium": 32 * 1024,
    "trainium2": 96 * 1024,
}

# Default Logical NeuronCore configuration per accelerator: Trainium2 defaults to LNC=2, two physical
# NeuronCore-v3 per logical core, so a trn2.48xlarge presents 64 NeuronCores; trn1 supports only LNC=1.
# Source: https://awsdocs-neuron.readthedocs-hosted.com/en/latest/general/arch/neuron-features/logical-neuroncore-config.html
# and https://awsdocs-neuron.readthedocs-hosted.com/en/latest/compiler/error-codes/EARG001.html
DEFAULT_LOGICAL_NC_CONFIG = {"trainium2": 2}

# Types whose network card 0 has no EFA: p6-b300.48xlarge has 17 network cards (Karpenter's
# zz_generated.vpclimits.go) but 16 EFA interfaces (the reference), so card 0 carries only the ENA
# primary. The EC2 guide's layout puts efa-only on card 0 only "if the network card index 0 supports EFA".
NO_EFA_ON_CARD_ZERO = frozenset({"p6-b300.48xlarge"})


def _row(
    name: str,
    vcpus: int,
    memory_mib: int,
    accelerator: str,
    count: int,
    gpu_memory_mib: int | None,
    physical_cores: int,
    efa: int,
    bandwidth_mbps: int,
    nvme_gib: int,
    max_pods: int,
) -> InstanceSpec:
    neuron = accelerator in NEURON_DEVICE_MEMORY_MIB
    return InstanceSpec(
        name=name,
        vcpus=vcpus,
        memory_mib=memory_mib,
        accelerator_name=accelerator,
        vendor=AcceleratorVendor.AWS_NEURON if neuron else AcceleratorVendor.NVIDIA,
        accelerator_count=count,
        accelerator_memory_mib=NEURON_DEVICE_MEMORY_MIB[accelerator] if neuron else (gpu_memory_mib or 0),
        physical_neuron_cores=physical_cores,
        logical_nc_config=DEFAULT_LOGICAL_NC_CONFIG.get(accelerator, 1),
        efa_on_card_zero=name not in NO_EFA_ON_CARD_ZERO,
        efa_interfaces=efa,
        network_bandwidth_mbps=bandwidth_mbps,
        local_nvme_gib=nvme_gib,
        max_pods=max_pods,
    )


# name, vCPUs, memory MiB, accelerator, count, GPU memory MiB, physical NeuronCores, EFA, Mbps, NVMe GiB, max pods
INSTANCE_TYPES: tuple[InstanceSpec, ...] = (
    _row("p4d.24xlarge", 96, 1179648, "a100", 8, 40960, 0, 4, 400000, 8000, 737),
    _row("p4de.24xlarge", 96, 1179648, "a100", 8, 81920, 0, 4, 400000, 8000, 737),
    _row("p5.4xlarge", 16, 262144, "h100", 1, 81920, 0, 1, 100000, 3800, 118),
    _row("p5.48xlarge", 192, 2097152, "h100", 8, 81920, 0, 32, 3200000, 30400, 100),
    _row("p5e.48xlarge", 192, 2097152, "h200", 8, 144384, 0, 32, 3200000, 30400, 100),
    _row("p5en.48xlarge", 192, 2097152, "h200", 8, 144384, 0, 16, 3200000, 30400, 198),
    _row("p6-b200.48xlarge", 192, 2097152, "b200", 8, 183359, 0, 8, 3200000, 30400, 198),
    _row("p6-b300.48xlarge", 192, 4194304, "b300", 8, 275040, 0, 16, 6400000, 30400, 198),
    _row("trn1.2xlarge", 8, 32768, "trainium", 1, None, 2, 0, 3125, 474, 58),
    _row("trn1.32xlarge", 128, 524288, "trainium", 16, None, 32, 8, 800000, 7600, 247),
    _row("trn1n.32xlarge", 128, 524288, "trainium", 16, None, 32, 16, 1600000, 7600, 247),
    _row("trn2.48xlarge", 192, 2097152, "trainium2", 16, None, 128, 16, 3200000, 7600, 100),
    _row("g5.xlarge", 4, 16384, "a10g", 1, 22888, 0, 0, 2500, 250, 58),
    _row("g5.2xlarge", 8, 32768, "a10g", 1, 22888, 0, 0, 5000, 450, 58),
    _row("g5.4xlarge", 16, 65536, "a10g", 1, 22888, 0, 0, 10000, 600, 234),
    _row("g5.8xlarge", 32, 131072, "a10g", 1, 22888, 0, 1, 25000, 900, 234),
    _row("g5.12xlarge", 48, 196608, "a10g", 4, 22888, 0, 1, 40000, 3800, 737),
    _row("g5.16xlarge", 64, 262144, "a10g", 1, 22888, 0, 1, 25000, 1900, 234),
    _row("g5.24xlarge", 96, 393216, "a10g", 4, 22888, 0, 1, 50000, 3800, 737),
    _row("g5.48xlarge", 192, 786432, "a10g", 8, 22888, 0, 1, 100000, 7600, 345),
    _row("g6.xlarge", 4, 16384, "l4", 1, 22888, 0, 0, 2500, 250, 58),
    _row("g6.2xlarge", 8, 32768, "l4", 1, 22888, 0, 0, 5000, 450, 58),
    _row("g6.4xlarge", 16, 65536, "l4", 1, 22888, 0, 0, 10000, 600, 234),
    _row("g6.8xlarge", 32, 131072, "l4", 1, 22888, 0, 1, 25000, 900, 234),
    _row("g6.12xlarge", 48, 196608, "l4", 4, 22888, 0, 1, 40000, 3760, 234),
    _row("g6.16xlarge", 64, 262144, "l4", 1, 22888, 0, 1, 25000, 1880, 737),
    _row("g6.24xlarge", 96, 393216, "l4", 4, 22888, 0, 1, 50000, 3760, 737),
    _row("g6.48xlarge", 192, 786432, "l4", 8, 22888, 0, 1, 100000, 7520, 737),
    _row("g6e.xlarge", 4, 32768, "l40s", 1, 45776, 0, 0, 2500, 250, 58),
    _row("g6e.2xlarge", 8, 65536, "l40s", 1, 45776, 0, 0, 5000, 450, 58),
    _row("g6e.4xlarge", 16, 131072, "l40s", 1, 45776, 0, 0, 20000, 600, 234),
    _row("g6e.8xlarge", 32, 262144, "l40s", 1, 45776, 0, 1, 25000, 900, 234),
    _row("g6e.12xlarge", 48, 393216, "l40s", 4, 45776, 0, 1, 100000, 3800, 292),
    _row("g6e.16xlarge", 64, 524288, "l40s", 1, 45776, 0, 1, 35000, 1900, 737),
    _row("g6e.24xlarge", 96, 786432, "l40s", 4, 45776, 0, 2, 200000, 3800, 492),
    _row("g6e.48xlarge", 192, 1572864, "l40s", 8, 45776, 0, 4, 400000, 7600, 492),
    _row("inf2.xlarge", 4, 16384, "inferentia2", 1, None, 2, 0, 2083, 0, 58),
    _row("inf2.8xlarge", 32, 131072, "inferentia2", 1, None, 2, 0, 16667, 0, 234),
    _row("inf2.24xlarge", 96, 393216, "inferentia2", 6, None, 12, 0, 50000, 0, 737),
    _row("inf2.48xlarge", 192, 786432, "inferentia2", 12, None, 24, 0, 100000, 0, 737),
)
