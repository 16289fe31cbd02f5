"""Quantized weights: how many bytes a weight takes, and what the vLLM server must be told about it.

Facts from vllm-project/vllm @ v0.11.0 (the pinned VLLM_NVIDIA_IMAGE):

- vllm/config/model.py ``_verify_quantization``: a checkpoint whose config.json has a
  ``quantization_config`` is detected by its ``quant_method`` (awq, gptq, fp8, compressed-tensors). A
  ``--quantization`` that differs from it stops the server ("does not match the quantization method
  specified in the model config"), and for AWQ and GPTQ checkpoints vLLM upgrades to the faster Marlin
  kernels (awq_marlin, gptq_marlin) only when no method is forced
  (vllm/model_executor/layers/quantization/awq_marlin.py ``override_quantization_method``). So a
  pre-quantized checkpoint is served without the flag.
- Only a bf16/fp16 checkpoint quantized while loading needs ``--quantization fp8`` (Fp8Config, dynamic
  per-tensor scales; docs/features/quantization/fp8.md "Quick Start with Online Dynamic Quantization").
- FP8 compute (W8A8) needs compute capability 8.9 (L4 on g6, L40S on g6e); on the A10G of g5 (8.6) vLLM runs
  FP8 weights as weight-only W8A16 with FP8 Marlin kernels (fp8.py ``use_marlin``; the docs' fp8 note),
  so the weights still take one byte each (mixture-of-experts layers too, fp8.py ``Fp8MoEMethod``, except
  with expert-parallel all-to-all, which eks-ml does not set up).
- W8A8 INT8 (compressed-tensors, compressed_tensors_w8a8_int8.py: capability 7.5) and 4-bit AWQ/GPTQ
  (awq_marlin.py, gptq_marlin.py: 8.0) run on every GPU eks-ml serves on (A10G 8.6, L4 and L40S 8.9).
- vLLM's ``--quantization`` does not apply on Neuron: the Neuron plugin quantizes through NxD Inference's
  own configuration (AWS Neuron docs, "vLLM User Guide for NxD Inference", quantization), so eks-ml refuses
  a quantization on inf2 rather than pass a flag the server ignores.
"""

from __future__ import annotations

from enum import Enum

from ..catalog import InstanceSpec
from ..errors import Problems

# Compute capability of the GPUs of the inference families (developer.nvidia.com/cuda-gpus: A10G is an A10).
COMPUTE_CAPABILITY = {"a10g": 8.6, "l4": 8.9, "l40s": 8.9}
FP8_COMPUTE_CAPABILITY = 8.9


class Quantization(Enum):
    """How the served model's weights are stored.

    FP8: a pre-quantized FP8 checkpoint (e.g. made with llm-compressor, or an ``-FP8`` model on the Hub).
    FP8_DYNAMIC: a bf16/fp16 checkpoint that vLLM quantizes to FP8 while loading (``--quantization fp8``).
    INT8_W8A8: a pre-quantized INT8 weight-and-activation checkpoint (compressed-tensors).
    INT4_AWQ / INT4_GPTQ: a pre-quantized 4-bit AWQ or GPTQ checkpoint.
    """

    FP8 = "fp8"
    FP8_DYNAMIC = "fp8-dynamic"
    INT8_W8A8 = "int8-w8a8"
    INT4_AWQ = "int4-awq"
    INT4_GPTQ = "int4-gptq"

    @property
    def bytes_per_parameter(self) -> float:
        # 4-bit checkpoints add a scale (and a zero point) per group of 128 weights, under 3% more; the fit
        # check's KV-cache headroom absorbs it, as it absorbs unquantized embeddings.
        return 0.5 if self in (Quantization.INT4_AWQ, Quantization.INT4_GPTQ) else 1.0

    @property
    def server_args(self) -> list[str]:
        """vLLM flags for this quantization: none for a checkpoint whose config names its method."""
        return ["--quantization", "fp8"] if self is Quantization.FP8_DYNAMIC else []

    @property
    def is_fp8(self) -> bool:
        return self in (Quantization.FP8, Quantization.FP8_DYNAMIC)

    def check(self, spec: InstanceSpec, bytes_per_parameter: float | None, field: str, problems: Problems) -> None:
        """Refuse a quantization the instance's server cannot honour, or a size that contradicts it."""
        if bytes_per_parameter is not None and bytes_per_parameter != self.bytes_per_parameter:
            problems.add(
                f"{field}.bytes_per_parameter",
                bytes_per_parameter,
                f"{self.bytes_per_parameter:g} (the size of a {self.value} weight) or unset",
                "leave bytes_per_parameter unset: the quantization sets it",
            )
        if spec.is_neuron:
            problems.add(
                f"{field}.quantization",
                self,
                "no quantization on Neuron (inf2): vLLM's --quantization does not apply to the Neuron plugin",
                "serve the bf16 checkpoint on inf2, or a quantized one on g5, g6 or g6e",
            )


def fp8_compute_note(spec: InstanceSpec) -> str | None:
    """Why FP8 weights run weight-only on ``spec`` (its GPU lacks FP8 compute), or None."""
    capability = COMPUTE_CAPABILITY.get(spec.accelerator_name)
    if capability is None or capability >= FP8_COMPUTE_CAPABILITY:
        return None
    return (
        f"{spec.accelerator_name} (compute capability {capability}) has no FP8 compute: vLLM runs FP8 weights "
        "weight-only (W8A16, FP8 Marlin): the memory saving without the FP8 speed-up"
    )
