"""Quantized models: the fit check and the vLLM flags agree on the bytes per weight."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from eks_ml import ValidationError, catalog
from eks_ml.errors import Problems
from eks_ml.inference.model_service import HubWeights, ModelServiceProps
from eks_ml.inference.quantization import Quantization, fp8_compute_note

# A 30.5B model: 56.8 GiB at bf16, 28.4 GiB at fp8/int8, 14.2 GiB at int4. One L40S (44.7 GiB) leaves 30.2 GiB
# for weights, one L4 or A10G (22.4 GiB) 15.1 GiB.
BF16 = ModelServiceProps(
    name="qwen30",
    instance_type="g6e.xlarge",
    weights=HubWeights(model_id="Qwen/Qwen3-30B-A3B"),
    parameters_billions=30.5,
)


def check(service: ModelServiceProps) -> None:
    problems = Problems()
    service.check("service", problems)
    problems.raise_if_any()


def server_args(service: ModelServiceProps) -> list[str]:
    return service.values(namespace="models", region="us-west-2", load_balancer_cidrs=["10.0.0.0/16"]).args


def test_bf16_model_that_does_not_fit_is_told_which_quantized_types_would() -> None:
    # The fix names the bf16 types (four GPUs) and, at fewer bytes, the single-GPU types that would hold the
    # same model quantized.
    with pytest.raises(ValidationError) as error:
        check(BF16)
    (problem,) = error.value
    assert problem.field == "service.instance_type"
    assert problem.fix.startswith("use g5.12xlarge, g6.12xlarge")
    assert "or quantize to fp8 or int8 (Quantization.FP8, FP8_DYNAMIC, INT8_W8A8): fits g6e.xlarge" in problem.fix
    assert "or quantize to int4 (INT4_AWQ, INT4_GPTQ): fits g5.xlarge, g6.xlarge" in problem.fix


@pytest.mark.parametrize(
    ("quantization", "instance_type"),
    [
        (Quantization.FP8, "g6e.xlarge"),
        (Quantization.INT8_W8A8, "g6e.xlarge"),
        (Quantization.INT4_AWQ, "g6.xlarge"),
        (Quantization.INT4_GPTQ, "g5.xlarge"),
    ],
)
def test_a_quantized_model_gets_the_smaller_type_the_check_allows(
    quantization: Quantization, instance_type: str
) -> None:
    service = replace(BF16, instance_type=instance_type, quantization=quantization)
    check(service)
    assert service.resolved_bytes_per_parameter == quantization.bytes_per_parameter
    # The same model unquantized does not fit there: the quantization is what made the difference.
    with pytest.raises(ValidationError, match="service.instance_type"):
        check(replace(service, quantization=None))


def test_pre_quantized_checkpoints_get_no_flag_and_dynamic_fp8_asks_vllm_to_quantize() -> None:
    for quantization in (Quantization.FP8, Quantization.INT8_W8A8, Quantization.INT4_AWQ, Quantization.INT4_GPTQ):
        args = server_args(replace(BF16, quantization=quantization))
        assert "--quantization" not in args, quantization  # vLLM reads the method from the checkpoint's config
    args = server_args(replace(BF16, quantization=Quantization.FP8_DYNAMIC))
    assert args[args.index("--quantization") + 1] == "fp8"
    assert "--quantization" not in server_args(BF16)


BAD: list[Any] = [
    pytest.param(
        {"quantization": Quantization.INT4_AWQ, "bytes_per_parameter": 2.0},
        r"bytes_per_parameter=2.0: allowed 0.5 \(the size of a int4-awq weight\) or unset",
        id="bytes-disagree",
    ),
    pytest.param(
        {"quantization": "fp8"}, r"quantization='fp8'.*Fix: use Quantization.FP8, not the string", id="string"
    ),
    pytest.param(
        {"instance_type": "inf2.48xlarge", "quantization": Quantization.FP8},
        r"quantization=<Quantization.FP8: 'fp8'>: allowed no quantization on Neuron",
        id="neuron",
    ),
    pytest.param(
        {"quantization": Quantization.FP8, "extra_args": ["--quantization=awq"]},
        r"extra_args='--quantization=awq'.*Fix: set the prop quantization instead",
        id="flag-in-extra-args",
    ),
    pytest.param(
        {"quantization": Quantization.FP8, "extra_args": ["-q", "fp8"]},
        r"extra_args='-q'.*Fix: set the prop quantization instead",
        id="short-flag-in-extra-args",
    ),
]


@pytest.mark.parametrize(("changes", "message"), BAD)
def test_contradictions_are_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        check(replace(BF16, **changes))


def test_bytes_per_parameter_that_agrees_with_the_quantization_is_accepted() -> None:
    check(replace(BF16, quantization=Quantization.FP8, bytes_per_parameter=1.0))


def test_fp8_on_a10g_runs_weight_only() -> None:
    # vLLM v0.11.0 runs FP8 weights on the A10G (compute capability 8.6) through FP8 Marlin: the fit check
    # accepts it at one byte per weight and the plan says that the FP8 speed-up is missing.
    note = fp8_compute_note(catalog.lookup("g5.12xlarge"))
    assert note is not None and "weight-only" in note
    assert fp8_compute_note(catalog.lookup("g6e.xlarge")) is None
    assert fp8_compute_note(catalog.lookup("g6.xlarge")) is None
    check(replace(BF16, instance_type="g5.12xlarge", quantization=Quantization.FP8))
