"""Does a model fit an instance type? Weights plus KV-cache headroom against accelerator memory."""

from __future__ import annotations

import math

from ..catalog import AcceleratorVendor, InstanceSpec, all_instance_types
from ..errors import Problems
from .pools import INFERENCE_FAMILIES

GIB = 2**30
# vLLM's default --gpu-memory-utilization: the share of accelerator memory the server may use.
MEMORY_UTILIZATION = 0.9
# Share of that usable memory kept for the KV cache and activations, so the server can batch requests.
KV_CACHE_HEADROOM = 0.25
# A pod takes this share of the CPU and memory that come with the accelerators it uses.
HOST_SHARE = 0.8
NVIDIA_TP_SIZES = (1, 2, 4, 8)


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


def default_tensor_parallel(spec: InstanceSpec) -> int:
    """Every GPU of the instance, or every NeuronCore."""
    return spec.accelerator_count if spec.is_nvidia else spec.neuron_cores


def check_fit(
    spec: InstanceSpec,
    tensor_parallel: int,
    parameters_billions: float,
    bytes_per_parameter: float,
    field: str,
    problems: Problems,
) -> None:
    """The tensor-parallel degree must fit the instance, and the weights (with KV-cache headroom) its memory.
    Shared by every vLLM pod eks-ml sizes (model services, batch jobs); ``field`` is the props' path. A model
    that does not fit is told the types that hold it, and on NVIDIA those that would hold it quantized."""
    weights_gib = weight_gib(parameters_billions, bytes_per_parameter)
    limit = spec.accelerator_count if spec.is_nvidia else spec.neuron_cores
    allowed_sizes = NVIDIA_TP_SIZES if spec.is_nvidia else tuple(range(1, limit + 1))
    if tensor_parallel not in allowed_sizes or tensor_parallel > limit:
        unit = "GPUs" if spec.is_nvidia else "NeuronCores"
        problems.add(
            f"{field}.tensor_parallel",
            tensor_parallel,
            f"1 to {limit} ({unit} of {spec.name}){', a power of two' if spec.is_nvidia else ''}",
            "pick a degree the instance can hold, or a larger instance type",
        )
        return
    devices = devices_for(spec, tensor_parallel)
    if not fits(spec, devices, weights_gib):
        suggestions = types_that_fit(spec.vendor, weights_gib)
        fixes = [f"use {', '.join(suggestions)}"] if suggestions else []
        if spec.is_nvidia:
            fixes += quantized_fits(parameters_billions, bytes_per_parameter)
        problems.add(
            f"{field}.instance_type",
            spec.name,
            f"accelerator memory for {weights_gib:.1f} GiB of weights plus KV-cache headroom "
            f"({usable_gib(spec, devices):.1f} GiB usable on {devices} device(s) at tensor_parallel={tensor_parallel})",
            "; ".join(fixes) or "split the model further",
        )


def pod_requests(spec: InstanceSpec, devices: int) -> dict[str, str]:
    """Requests of one vLLM pod on ``devices`` accelerators: those devices and their share of the host."""
    share = devices / spec.accelerator_count
    return {
        "cpu": str(max(1, math.floor(spec.vcpus * share * HOST_SHARE))),
        "memory": f"{math.floor(spec.memory_mib * share * HOST_SHARE)}Mi",
        spec.accelerator_resource: str(devices),
    }


def shm_size(spec: InstanceSpec, devices: int) -> str:
    """/dev/shm for one vLLM pod: an eighth of its share of host memory (tensor-parallel ranks exchange through it)."""
    return f"{max(1, math.floor(spec.memory_mib * devices / spec.accelerator_count / 1024 / 8))}Gi"
