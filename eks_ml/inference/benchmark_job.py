"""A benchmark Job for a model service: ``vllm bench serve`` (in the server's own vLLM image) sweeps
concurrency levels against the service's OpenAI-compatible endpoint and prints one result per level.

The Job is rendered, never applied by the stack: a sweep loads the service for an hour or more, so it runs
when its owner applies it (``kubectl apply -f inference-benchmarks.yaml`` from ``export-gitops``), with
the service held at ``replicas`` replicas. Its log ends with the result lines after ``RESULTS_MARKER``;
saved to a file beside the app, they are what ``eks_ml.inference.benchmark.load_benchmark`` reads.

Flags of ``vllm bench serve``, from vllm-project/vllm @ v0.11.0, vllm/benchmarks/serve.py ``add_cli_args``
and vllm/benchmarks/datasets.py ``add_dataset_parser``: --base-url, --endpoint (default /v1/completions),
--model, --served-model-name, --tokenizer, --dataset-name random, --random-input-len, --random-output-len,
--ignore-eos, --num-prompts, --max-concurrency, --request-rate (default inf), --percentile-metrics,
--metric-percentiles, --metadata KEY=VALUE..., --save-result, --append-result, --result-dir,
--result-filename, --ready-check-timeout-sec.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field

from aws_cdk import Duration

from ..errors import Problems
from ..guards import expect_duration, expect_int, expect_str
from ..k8s.benchmark_job import RESULTS_DIR, RESULTS_MARKER, SCRATCH_DIR, BenchmarkJobValues
from ..k8s.model_service import APP_LABEL, PORT
from ..kube_names import check_dns_label
from .benchmark import INSTANCE_TYPE_KEY, LATENCY_METRIC, REPLICAS_KEY, TENSOR_PARALLEL_KEY, percentile_key
from .model_service import VLLM_NVIDIA_IMAGE, HubWeights, ModelServiceProps
from .pools import POOL_LABEL, NodePoolProps, PoolKind

# The load generator's share of a CPU node: enough for tokenising prompts and keeping a few hundred
# streams open without becoming the bottleneck it measures.
CLIENT_REQUESTS = {"cpu": "4", "memory": "8Gi"}
MIN_PROMPTS = 40  # fewer completed requests give a 99th percentile of one or two samples
DEFAULT_CONCURRENCY = (1, 2, 4, 8, 16, 32, 64, 128)
JOB_SUFFIX = "-benchmark"


@dataclass(frozen=True, kw_only=True)
class BenchmarkJobProps:
    """A load sweep against one model service of the cluster.

    service: the model service's name.
    concurrency: concurrent requests per level, ascending. Default: 1 to 128 in powers of two.
    input_tokens / output_tokens: random prompts of this length, answered with exactly this many tokens
        (``--ignore-eos``). Default: 1024 in, 256 out; use your traffic's typical lengths.
    prompts_per_stream: requests per level as a multiple of its concurrency (at least 40). Default: 10.
    replicas: the replicas serving during the sweep (set the service's min and max to it while it runs);
        the results are divided by it. Default: 1.
    timeout: the whole sweep's deadline. Default: 4 hours.
    """

    service: str
    concurrency: Sequence[int] = DEFAULT_CONCURRENCY
    input_tokens: int = 1024
    output_tokens: int = 256
    prompts_per_stream: int = 10
    replicas: int = 1
    timeout: Duration = field(default_factory=lambda: Duration.hours(4))

    @property
    def job_name(self) -> str:
        return f"{self.service}{JOB_SUFFIX}"

    def check(
        self, field: str, services: Sequence[ModelServiceProps], pools: Sequence[NodePoolProps], problems: Problems
    ) -> None:
        if not all(
            (
                expect_str(self.service, f"{field}.service", problems),
                expect_int(self.input_tokens, f"{field}.input_tokens", problems, minimum=1),
                expect_int(self.output_tokens, f"{field}.output_tokens", problems, minimum=1),
                expect_int(self.prompts_per_stream, f"{field}.prompts_per_stream", problems, minimum=1),
                expect_int(self.replicas, f"{field}.replicas", problems, minimum=1),
                expect_duration(self.timeout, f"{field}.timeout", problems),
            )
        ):
            return
        levels = list(self.concurrency) if isinstance(self.concurrency, list | tuple) else None
        if (
            not levels
            or any(isinstance(c, bool) or not isinstance(c, int) or c < 1 for c in levels)
            or levels != sorted(set(levels))
        ):
            problems.add(
                f"{field}.concurrency",
                self.concurrency,
                "ascending whole numbers >= 1, each once",
                "use e.g. (1, 2, 4, 8, 16, 32, 64, 128)",
            )
        service = next((s for s in services if s.name == self.service), None)
        if service is None:
            problems.add(
                f"{field}.service",
                self.service,
                f"a model service of this cluster ({', '.join(s.name for s in services) or 'none'})",
                "name one of model_services",
            )
        else:
            check_dns_label(self.job_name, f"{field}.service", problems)
            if self.input_tokens + self.output_tokens > service.max_model_len:
                problems.add(
                    f"{field}.input_tokens",
                    self.input_tokens + self.output_tokens,
                    f"input_tokens + output_tokens within the service's max_model_len ({service.max_model_len})",
                    "shorten the prompts or the answers",
                )
            if self.replicas > service.max_replicas:
                problems.add(
                    f"{field}.replicas",
                    self.replicas,
                    f"at most the service's max_replicas ({service.max_replicas})",
                    "benchmark fewer replicas (one is enough: results are per replica)",
                )
        if cpu_pool(pools) is None:
            problems.add(
                f"{field}.service",
                self.service,
                "a cluster with a CPU node pool for the load generator",
                "add NodePoolProps(name='cpu', kind=PoolKind.CPU) to pools (default_pools() has one)",
            )

    def values(self, service: ModelServiceProps, *, namespace: str, region: str, pool: str) -> BenchmarkJobValues:
        spec = service.spec()
        # The server's weights give the client its tokenizer (random prompts are made of token ids).
        model, volumes, mounts, _, _ = service._weights(region, namespace)
        keep = [v for v in volumes if v["name"] != "cache"]
        keep_mounts = [m for m in mounts if m["name"] != "cache"]
        hub = isinstance(service.weights, HubWeights)
        secret_env = (
            {"HF_TOKEN": (service.weights.token_secret, "token")}
            if isinstance(service.weights, HubWeights) and service.weights.token_secret
            else {}
        )
        return BenchmarkJobValues(
            name=self.job_name,
            namespace=namespace,
            service=service.name,
            server_labels={APP_LABEL: service.name},
            server_port=PORT,
            image=VLLM_NVIDIA_IMAGE,  # the client runs on CPU nodes: the image's bench command needs no GPU
            script=self.script(service, model, spec.name),
            env={"HOME": SCRATCH_DIR, "HF_HOME": f"{SCRATCH_DIR}/huggingface"},
            secret_env=secret_env,
            node_selector={POOL_LABEL: pool},
            requests=dict(CLIENT_REQUESTS),
            volumes=keep,
            volume_mounts=keep_mounts,
            https_egress=hub,
            deadline_seconds=int(self.timeout.to_seconds()),
        )

    def script(self, service: ModelServiceProps, model: str, instance_type: str) -> str:
        percentiles = sorted({50.0, 90.0, 99.0, round(service.slo.latency_target * 100, 6)})
        words = ",".join(str(int(p)) if int(p) == p else str(p) for p in percentiles)
        assert percentile_key(service.slo.latency_target).endswith(f"_{LATENCY_METRIC}_ms")
        tp = service.resolved_tensor_parallel(service.spec())
        result = f"{self.job_name}.jsonl"
        command = [
            "vllm", "bench", "serve",
            "--base-url", f"http://{service.name}:{PORT}",
            "--model", model, "--served-model-name", service.name, "--tokenizer", model,
            "--dataset-name", "random",
            "--random-input-len", str(self.input_tokens), "--random-output-len", str(self.output_tokens),
            "--ignore-eos",
            "--percentile-metrics", f"ttft,tpot,itl,{LATENCY_METRIC}", "--metric-percentiles", words,
            "--metadata", f"{INSTANCE_TYPE_KEY}={instance_type}", f"{TENSOR_PARALLEL_KEY}={tp}",
            f"{REPLICAS_KEY}={self.replicas}",
            "--save-result", "--append-result", "--result-dir", RESULTS_DIR, "--result-filename", result,
            "--ready-check-timeout-sec", "3600",
        ]  # fmt: skip
        levels = " ".join(str(c) for c in self.concurrency)
        per_stream, floor = self.prompts_per_stream, MIN_PROMPTS
        return "\n".join(
            [
                "set -eu",
                f"for c in {levels}; do",
                f"  n=$((c * {per_stream})); [ $n -ge {floor} ] || n={floor}",
                f'  {shlex.join(command)} --max-concurrency "$c" --num-prompts "$n"',
                "done",
                f"echo {shlex.quote(RESULTS_MARKER)}",
                f"cat {RESULTS_DIR}/{result}",
            ]
        )


def cpu_pool(pools: Sequence[NodePoolProps]) -> str | None:
    return next((p.name for p in pools if p.kind is PoolKind.CPU), None)
