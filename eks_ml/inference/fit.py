"""Does a model fit an instance type? Weights plus KV-cache headroom against accelerator memory."""

from __future__ import annotations

import math

from ..catalog import AcceleratorVendor, InstanceSpec, all_instance_types
from .pools import INFERENCE_FAMILIES

GIB = 2**30
# vLLM's default --gpu-memory-utilization: the share of accelerator memory the server may use.
MEMORY_UTILIZATION = 0.9
# Share of that usable memory kept for the KV cache and activations, so the server can batch requests.
KV_CACHE_HEADROOM = 0.25


def weight_gib(parameters_billions: float, bytes_per_parameter: float) -> float:
    return parameters_billions * 1e9 * bytes_per_parameter / GIB


def devices_for(spec: InstanceSpec, tensor_parallel: int) -> int:
    """Accelerators one replica requests: a GPU per rank, or enough Neuron devices for its NeuronCores."""
    if spec.is_nvidia:
        return tensor_parallel
    cores_per_device = spec.neuron_cores // spec.accelerator_count
    return math.ceil(tensor_parallel / cores_per_device)


def usable_gib(spec: InstanceSpec, devices: int) -> float:
    return devices * spec.accelerator_memory_mib / 1024 * MEMORY_UTILIZATION


def fits(spec: InstanceSpec, devices: int, weights_gib: float) -> bool:
    return weights_gib <= usable_gib(spec, devices) * (1 - KV_CACHE_HEADROOM)


def types_that_fit(vendor: AcceleratorVendor, weights_gib: float, limit: int = 5) -> list[str]:
    """Inference types of ``vendor`` whose whole accelerator memory holds the model, smallest first."""
    candidates = [
        s
        for s in all_instance_types()
        if s.family in INFERENCE_FAMILIES[vendor] and fits(s, s.accelerator_count, weights_gib)
    ]
    candidates.sort(key=lambda s: (s.total_accelerator_memory_gib, s.vcpus))
    return [s.name for s in candidates[:limit]]


# What a checkpoint quantized to fewer bytes per weight would fit: the names of the Quantization members
# that produce it (eks_ml.inference.quantization) go with each size.
QUANTIZED_SIZES = ((1.0, "fp8 or int8 (Quantization.FP8, FP8_DYNAMIC, INT8_W8A8)"), (0.5, "int4 (INT4_AWQ, INT4_GPTQ)"))


def quantized_fits(parameters_billions: float, bytes_per_parameter: float) -> list[str]:
    """The smallest NVIDIA types that would hold the model at fewer bytes per weight, one line per size."""
    fixes = []
    for size, kinds in QUANTIZED_SIZES:
        if size >= bytes_per_parameter:
            continue
        types = types_that_fit(AcceleratorVendor.NVIDIA, weight_gib(parameters_billions, size), limit=3)
        if types:
            fixes.append(f"or quantize to {kinds}: fits {', '.join(types)}")
    return fixes
