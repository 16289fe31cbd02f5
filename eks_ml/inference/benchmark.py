"""What a model service sustains per replica, read from ``vllm bench serve`` results.

The benchmark Job (eks_ml.inference.benchmark_job) runs ``vllm bench serve`` once per concurrency level with
``--save-result --append-result``, so its result file holds one JSON object per line, one per run. This
module reads that file (committed beside the app) and derives, per replica, against the service's SLO:

- the sustainable load: the run with the most output tokens per second whose end-to-end latency at the
  SLO's percentile stays under the SLO's latency and whose share of completed requests meets the
  availability target;
- the HPA's ``queue_target`` (waiting requests per replica), by Little's law: a replica finishes
  ``request_throughput`` requests a second at that load, so a request that arrives behind ``n`` waiting ones
  waits about ``n / request_throughput`` seconds more. The target is the queue that still leaves it inside
  the latency left over at the sustainable load: ``floor(request_throughput * (latency_seconds - latency))``;
- the cost per million output tokens, from the catalog's On-Demand price of the replica's share of a node.

Result fields, from vllm-project/vllm @ v0.11.0, vllm/benchmarks/serve.py: ``benchmark()`` returns
``duration``, ``completed``, ``total_input_tokens``, ``total_output_tokens``, ``request_throughput``,
``request_goodput``, ``output_throughput``, ``total_token_throughput``, ``max_output_tokens_per_s``,
``max_concurrent_requests`` and, per metric chosen with ``--percentile-metrics`` (ttft, tpot, itl, e2el),
``mean_<m>_ms``, ``median_<m>_ms``, ``std_<m>_ms`` and ``p<P>_<m>_ms`` for each ``--metric-percentiles`` P
(written ``99`` or ``99.5``); ``main()`` adds ``date``, ``endpoint_type``, ``backend``, ``label``,
``model_id``, ``tokenizer_id``, ``num_prompts``, every ``--metadata KEY=VALUE`` as a string,
``request_rate`` (a number or ``"inf"``), ``burstiness`` and ``max_concurrency``. With ``--append-result``
each run is appended to the file after a newline.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..catalog import lookup
from ..catalog.prices import on_demand_price
from ..errors import Problems, ValidationError
from .fit import devices_for
from .slo import ServiceLevelObjective

LATENCY_METRIC = "e2el"  # vLLM's end-to-end latency, the quantity the SLO's latency objective is about
# The --metadata keys the benchmark Job writes, so a result file says what it measured.
INSTANCE_TYPE_KEY = "instance_type"
TENSOR_PARALLEL_KEY = "tensor_parallel"
REPLICAS_KEY = "replicas"
REQUIRED_FIELDS = ("completed", "num_prompts", "max_concurrency", "request_throughput", "output_throughput")
FIX_RUN = (
    "run vllm bench serve with --save-result --percentile-metrics ttft,tpot,itl,e2el, --metric-percentiles "
    "covering the SLO's percentile and --metadata instance_type=<type> (the eks-ml benchmark Job does)"
)


def percentile_key(latency_target: float) -> str:
    """The result field of the SLO's percentile, spelt as vLLM spells it (``p99_e2el_ms``, ``p99.5_e2el_ms``)."""
    percentile = round(latency_target * 100, 6)
    word = str(int(percentile)) if int(percentile) == percentile else str(percentile)
    return f"p{word}_{LATENCY_METRIC}_ms"


@dataclass(frozen=True)
class BenchmarkRun:
    """One ``vllm bench serve`` run at one concurrency level, against all the replicas measured."""

    max_concurrency: int
    num_prompts: int
    completed: int
    request_throughput: float  # completed requests per second
    output_throughput: float  # generated tokens per second
    latency_ms: tuple[tuple[str, float], ...]  # every p<P>_e2el_ms field of the run

    def latency_seconds(self, key: str) -> float | None:
        return next((ms / 1000 for name, ms in self.latency_ms if name == key), None)


@dataclass(frozen=True)
class SustainableLoad:
    """What one replica sustains within the SLO, and what it costs."""

    output_tokens_per_second: float
    requests_per_second: float
    concurrency: float
    latency_seconds: float  # at the SLO's percentile
    queue_target: int
    usd_per_million_output_tokens: float | None


@dataclass(frozen=True)
class BenchmarkResult:
    """The runs of one benchmark of one model on one instance type (see :func:`load_benchmark`)."""

    source: str
    model_id: str
    instance_type: str
    tensor_parallel: int | None
    replicas: int
    runs: tuple[BenchmarkRun, ...]

    def sustainable(self, slo: ServiceLevelObjective) -> SustainableLoad:
        """The busiest run within ``slo``, per replica; ValidationError when no run met it."""
        key = percentile_key(slo.latency_target)
        measured = [(run, run.latency_seconds(key)) for run in self.runs]
        missing = [run.max_concurrency for run, latency in measured if latency is None]
        if missing:
            raise ValidationError.single(
                "benchmark", self.source, f"runs with {key} (the SLO's percentile of e2e latency)", FIX_RUN
            )
        within = [
            (run, latency)
            for run, latency in measured
            if latency is not None
            and latency <= slo.latency_seconds
            and run.completed >= run.num_prompts * slo.availability_target
        ]
        if not within:
            fastest = min(measured, key=lambda pair: pair[1] or math.inf)
            raise ValidationError.single(
                "benchmark",
                self.source,
                f"a run within the SLO ({key} <= {slo.latency_seconds:g} s, "
                f">= {slo.availability_target:.1%} of requests completed); the lowest was "
                f"{fastest[1]:.1f} s at concurrency {fastest[0].max_concurrency}",
                "benchmark lower concurrency levels, use a larger instance type or relax slo.latency_seconds",
            )
        run, latency = max(within, key=lambda pair: pair[0].output_throughput)
        assert latency is not None
        tokens = run.output_throughput / self.replicas
        requests = run.request_throughput / self.replicas
        return SustainableLoad(
            output_tokens_per_second=round(tokens, 1),
            requests_per_second=round(requests, 3),
            concurrency=run.max_concurrency / self.replicas,
            latency_seconds=round(latency, 3),
            queue_target=max(1, math.floor(requests * (slo.latency_seconds - latency))),
            usd_per_million_output_tokens=self._usd_per_million(tokens),
        )

    def _usd_per_million(self, tokens_per_second: float) -> float | None:
        spec = lookup(self.instance_type, field="benchmark.instance_type")
        price = on_demand_price(spec.name)
        if price is None or tokens_per_second <= 0:
            return None
        tensor_parallel = self.tensor_parallel or (spec.accelerator_count if spec.is_nvidia else spec.neuron_cores)
        share = devices_for(spec, tensor_parallel) / spec.accelerator_count  # a replica's part of the node
        return round(price * share / (tokens_per_second * 3600) * 1e6, 3)


def load_benchmark(path: str | Path) -> BenchmarkResult:
    """Read a ``vllm bench serve`` result file: one JSON object, or one per line (``--append-result``)."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ValidationError.single(
            "benchmark", source, "a readable vllm bench serve result file", f"check the path ({error.strerror})"
        ) from None
    objects = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            objects.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise ValidationError.single(
                "benchmark", source, "JSON objects, one per line", f"line {number}: {error.msg}"
            ) from None
    if not objects or not all(isinstance(o, dict) for o in objects):
        raise ValidationError.single("benchmark", source, "at least one JSON object per line", FIX_RUN)
    return _result(source, objects)


def _result(source: str, objects: list[dict[str, Any]]) -> BenchmarkResult:
    for field in (*REQUIRED_FIELDS, "model_id", INSTANCE_TYPE_KEY):
        lacking = [i + 1 for i, o in enumerate(objects) if o.get(field) is None]
        if lacking:
            raise ValidationError.single(
                f"benchmark.{field}", source, f"a {field} in every run (missing on line {lacking[0]})", FIX_RUN
            )
    for field in ("model_id", INSTANCE_TYPE_KEY, TENSOR_PARALLEL_KEY, REPLICAS_KEY):
        values = {str(o.get(field)) for o in objects}
        if len(values) > 1:
            raise ValidationError.single(
                f"benchmark.{field}", sorted(values), "one value for the whole file", "keep one benchmark per file"
            )
    first = objects[0]
    instance_type = str(first[INSTANCE_TYPE_KEY])
    lookup(instance_type, field="benchmark.instance_type")
    return BenchmarkResult(
        source=source,
        model_id=str(first["model_id"]),
        instance_type=instance_type,
        tensor_parallel=_whole(first.get(TENSOR_PARALLEL_KEY), TENSOR_PARALLEL_KEY, source),
        replicas=_whole(first.get(REPLICAS_KEY, 1), REPLICAS_KEY, source) or 1,
        runs=tuple(_run(o, source) for o in objects),
    )


def _run(data: dict[str, Any], source: str) -> BenchmarkRun:
    numbers = {name: data[name] for name in REQUIRED_FIELDS}
    if any(isinstance(v, bool) or not isinstance(v, int | float) or v < 0 for v in numbers.values()):
        raise ValidationError.single(
            "benchmark", source, f"non-negative numbers for {', '.join(REQUIRED_FIELDS)}", FIX_RUN
        )
    suffix = f"_{LATENCY_METRIC}_ms"
    return BenchmarkRun(
        max_concurrency=int(numbers["max_concurrency"]),
        num_prompts=int(numbers["num_prompts"]),
        completed=int(numbers["completed"]),
        request_throughput=float(numbers["request_throughput"]),
        output_throughput=float(numbers["output_throughput"]),
        latency_ms=tuple(
            sorted(
                (name, float(value))
                for name, value in data.items()
                if name.startswith("p") and name.endswith(suffix) and isinstance(value, int | float)
            )
        ),
    )


def _whole(value: Any, field: str, source: str) -> int | None:
    """A --metadata value (vLLM writes them as strings) as a positive whole number."""
    if value is None:
        return None
    text = str(value)
    if not text.isdigit() or int(text) < 1:
        raise ValidationError.single(f"benchmark.{field}", value, "a positive whole number", f"fix {source}")
    return int(text)


DEFAULT_QUEUE_TARGET = 4  # ModelServiceProps.queue_target's default, which a benchmark replaces


def check_service_benchmark(
    result: BenchmarkResult,
    *,
    field: str,
    instance_type: str,
    tensor_parallel: int,
    queue_target: int,
    slo: ServiceLevelObjective,
    problems: Problems,
) -> None:
    """Refuse a benchmark of other hardware, a queue_target that contradicts it, or one no run of which met
    the service's SLO. Problems are named under ``field`` (the service's ``benchmark``)."""
    if result.instance_type != instance_type:
        problems.add(
            f"{field}.instance_type",
            result.instance_type,
            f"the service's instance type, {instance_type}",
            "benchmark the service on its own instance type (the throughput of another one does not carry over)",
        )
    if result.tensor_parallel is not None and result.tensor_parallel != tensor_parallel:
        problems.add(
            f"{field}.tensor_parallel",
            result.tensor_parallel,
            f"the service's tensor_parallel, {tensor_parallel}",
            "benchmark the service as it is configured",
        )
    if queue_target != DEFAULT_QUEUE_TARGET:
        problems.add(
            f"{field.rsplit('.', 1)[0]}.queue_target",
            queue_target,
            f"the default ({DEFAULT_QUEUE_TARGET}) when a benchmark sets it",
            "drop queue_target or the benchmark",
        )
    try:
        result.sustainable(slo)
    except ValidationError as error:
        for problem in error:
            problems.add(
                f"{field}{problem.field.removeprefix('benchmark')}", problem.value, problem.allowed, problem.fix
            )
