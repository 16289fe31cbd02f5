"""Offline batch inference: one shard of JSONL prompt files in, JSONL completions out (S3 or a local directory).

Run by every pod of an Indexed Job (eks_ml.k8s.batch_inference): pod i takes the input files at positions
i, i + shards, i + 2*shards, ... of the sorted listing, and answers their prompts in chunks with vLLM's offline
API (``LLM.generate``), writing one output object per chunk under ``shard-<i>/``. It is safe to run again:

- a shard whose ``_SUCCESS`` marker exists exits 0 at once, before loading the model (a retried or re-queued
  index that had finished costs nothing);
- a chunk whose output object exists is skipped, so a pod killed mid-shard (Spot reclaim, eviction, crash)
  resumes at the first missing chunk. Each output object is written whole (an S3 PUT, or an atomic rename
  locally), so a present object is a complete one.

Input lines: JSON objects with a string ``prompt`` and an optional ``id``. Output lines: ``id``, ``input`` (the
input key), ``line`` (its 1-based line), ``text``, ``finish_reason``, ``prompt_tokens``, ``completion_tokens``.

Exit codes: 0 done (or already done); 2 bad arguments (argparse); 3 bad input data. The Job fails the index
at once for 2 and 3 (retrying cannot help) and retries anything else (eks_ml.k8s.batch_inference).

The engine is pluggable (``--engine module:factory``) so the same script runs on a CPU with a stand-in model.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

SUCCESS_MARKER = "_SUCCESS"
INPUT_SUFFIX = ".jsonl"
BAD_INPUT_EXIT = 3
VLLM_ENGINE = "vllm"


class BadInput(Exception):
    """Input data the script cannot use: retrying will not help."""


class Store(Protocol):
    """Objects under one root, by key relative to it ("a/b.jsonl")."""

    def list_keys(self, prefix: str = "") -> list[str]: ...
    def read(self, key: str) -> bytes: ...
    def write(self, key: str, data: bytes) -> None: ...
    def copy_to(self, key: str, target: Path) -> None:
        """Stream one object to a local file (model weights are too large to hold in memory)."""
        ...


class LocalStore:
    """A directory standing in for an S3 prefix (tests, or a mounted volume)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def list_keys(self, prefix: str = "") -> list[str]:
        if not self.root.is_dir():
            return []
        found = (p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file())
        return sorted(k for k in found if k.startswith(prefix) and not Path(k).name.startswith(".tmp-"))

    def read(self, key: str) -> bytes:
        return (self.root / key).read_bytes()

    def write(self, key: str, data: bytes) -> None:
        target = self.root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        # Whole or absent: a reader never sees half an object, as with an S3 PUT.
        handle, temporary = tempfile.mkstemp(prefix=".tmp-", dir=target.parent)
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, target)

    def copy_to(self, key: str, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.root / key, target)


class S3Store:
    """Objects under s3://bucket/prefix. Needs only s3:ListBucket on the prefix, plus s3:GetObject to read
    (input) or s3:PutObject to write (output): existence is checked by listing, never by reading."""

    def __init__(self, bucket: str, prefix: str) -> None:
        import boto3  # in the vLLM image (vllm-project/vllm @ v0.11.0, docker/Dockerfile, vllm-openai-base)

        self.bucket = bucket
        self.prefix = prefix
        self.client: Any = boto3.client("s3")

    def list_keys(self, prefix: str = "") -> list[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        found = []
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
            found += [item["Key"][len(self.prefix) :] for item in page.get("Contents", [])]
        return sorted(found)

    def read(self, key: str) -> bytes:
        body: bytes = self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)["Body"].read()
        return body

    def write(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self.prefix + key, Body=data)

    def copy_to(self, key: str, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        self.client.download_file(self.bucket, self.prefix + key, str(target))


def open_store(location: str) -> Store:
    """s3://bucket/prefix/ or a local path (file:// or plain)."""
    if location.startswith("s3://"):
        bucket, _, prefix = location[len("s3://") :].partition("/")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        return S3Store(bucket, prefix)
    return LocalStore(Path(location.removeprefix("file://")))


class Engine(Protocol):
    def generate(self, prompts: Sequence[str], *, max_tokens: int, temperature: float) -> list[dict[str, Any]]:
        """One result per prompt, in order: text, finish_reason, prompt_tokens, completion_tokens."""
        ...


class VllmEngine:
    """vLLM's offline API (vllm-project/vllm @ v0.11.0: vllm/entrypoints/llm.py LLM and LLM.generate, which
    returns one RequestOutput per prompt in input order; vllm/outputs.py RequestOutput.prompt_token_ids and
    .outputs[0], a CompletionOutput with text, token_ids and finish_reason). The engine batches the prompts of a
    chunk itself (continuous batching): throughput, not latency."""

    def __init__(self, *, model: str, tensor_parallel: int, max_model_len: int) -> None:
        from vllm import LLM, SamplingParams

        self._sampling = SamplingParams
        self._llm = LLM(model=model, tensor_parallel_size=tensor_parallel, max_model_len=max_model_len)

    def generate(self, prompts: Sequence[str], *, max_tokens: int, temperature: float) -> list[dict[str, Any]]:
        params = self._sampling(max_tokens=max_tokens, temperature=temperature)
        return [
            {
                "text": output.outputs[0].text,
                "finish_reason": output.outputs[0].finish_reason,
                "prompt_tokens": len(output.prompt_token_ids or []),
                "completion_tokens": len(output.outputs[0].token_ids),
            }
            for output in self._llm.generate(list(prompts), params)
        ]


EngineFactory = Callable[..., Engine]


def engine_factory(name: str) -> EngineFactory:
    """``vllm``, or ``module:callable`` taking the same keyword arguments as VllmEngine."""
    if name == VLLM_ENGINE:
        return VllmEngine
    module, _, attribute = name.partition(":")
    factory: EngineFactory = getattr(importlib.import_module(module), attribute)
    return factory


@dataclass(frozen=True)
class Record:
    id: str
    input: str
    line: int
    prompt: str


def parse_records(key: str, data: bytes) -> list[Record]:
    records = []
    for number, raw in enumerate(data.decode("utf-8").splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            item = json.loads(raw)
        except json.JSONDecodeError as error:
            raise BadInput(f"{key} line {number}: not JSON ({error.msg})") from error
        if not isinstance(item, dict) or not isinstance(item.get("prompt"), str):
            raise BadInput(f'{key} line {number}: expected an object with a string "prompt"')
        records.append(Record(str(item.get("id", f"{key}#{number}")), key, number, item["prompt"]))
    return records


def shard_inputs(keys: Sequence[str], shard: int, shards: int) -> list[str]:
    """This shard's input files: every ``shards``-th of the sorted JSONL keys, from position ``shard``."""
    inputs = sorted(key for key in keys if key.endswith(INPUT_SUFFIX))
    return inputs[shard::shards]


def shard_prefix(shard: int) -> str:
    return f"shard-{shard:05d}/"


def chunk_key(shard: int, input_key: str, chunk: int) -> str:
    # The input's path flattened, so inputs in different folders never share an output name.
    stem = input_key[: -len(INPUT_SUFFIX)].replace("/", "__")
    return f"{shard_prefix(shard)}{stem}-{chunk:05d}{INPUT_SUFFIX}"


@dataclass
class Settings:
    shard: int
    shards: int
    model: str
    tensor_parallel: int
    max_model_len: int
    max_tokens: int
    temperature: float
    chunk_size: int
    cache_dir: Path


def local_model(model: str, cache_dir: Path) -> str:
    """A model in S3 is copied to node-local storage first (the role may read its prefix); anything else (a Hub
    id, a local path) goes to vLLM as given."""
    if not model.startswith("s3://"):
        return model
    source = open_store(model)
    target = cache_dir / "model"
    for key in source.list_keys():
        source.copy_to(key, target / key)
    return str(target)


def run(source: Store, sink: Store, settings: Settings, factory: EngineFactory) -> dict[str, int]:
    """Answer this shard's prompts; returns counts (chunks written and skipped, prompts answered)."""
    marker = shard_prefix(settings.shard) + SUCCESS_MARKER
    done = set(sink.list_keys(shard_prefix(settings.shard)))
    counts = {"written": 0, "skipped": 0, "prompts": 0}
    if marker in done:
        print(f"shard {settings.shard}: {marker} exists, nothing to do", flush=True)
        return counts
    inputs = shard_inputs(source.list_keys(), settings.shard, settings.shards)
    engine: Engine | None = None
    for input_key in inputs:
        records = parse_records(input_key, source.read(input_key))
        for number, start in enumerate(range(0, len(records), settings.chunk_size)):
            key = chunk_key(settings.shard, input_key, number)
            if key in done:
                counts["skipped"] += 1
                continue
            if engine is None:  # loaded only when there is work: a finished shard never loads the model
                engine = factory(
                    model=local_model(settings.model, settings.cache_dir),
                    tensor_parallel=settings.tensor_parallel,
                    max_model_len=settings.max_model_len,
                )
            chunk = records[start : start + settings.chunk_size]
            results = engine.generate(
                [r.prompt for r in chunk], max_tokens=settings.max_tokens, temperature=settings.temperature
            )
            if len(results) != len(chunk):
                raise RuntimeError(f"engine answered {len(results)} of {len(chunk)} prompts")
            lines = [
                json.dumps({"id": r.id, "input": r.input, "line": r.line, **result}, sort_keys=True)
                for r, result in zip(chunk, results, strict=True)
            ]
            sink.write(key, ("\n".join(lines) + "\n").encode("utf-8"))
            counts["written"] += 1
            counts["prompts"] += len(chunk)
            print(f"shard {settings.shard}: wrote {key} ({len(chunk)} prompts)", flush=True)
    summary = {"inputs": inputs, **counts}
    sink.write(marker, (json.dumps(summary, sort_keys=True) + "\n").encode("utf-8"))
    print(f"shard {settings.shard}: done, {json.dumps(counts, sort_keys=True)}", flush=True)
    return counts


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not positive")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--input", required=True, help="s3://bucket/prefix/ or a directory of .jsonl files")
    p.add_argument("--output", required=True, help="s3://bucket/prefix/ or a directory")
    p.add_argument("--shards", type=positive, required=True)
    p.add_argument(
        "--shard", type=int, default=None, help="Default: JOB_COMPLETION_INDEX (set by Kubernetes on Indexed Jobs)"
    )
    p.add_argument("--model", required=True, help="a Hugging Face id, a local path or s3://bucket/prefix/")
    p.add_argument("--tensor-parallel", type=positive, default=1)
    p.add_argument("--max-model-len", type=positive, default=8192)
    p.add_argument("--max-tokens", type=positive, default=512)
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--chunk-size", type=positive, default=256, help="prompts per output object (the resume unit)")
    p.add_argument("--cache-dir", type=Path, default=Path("/cache"))
    p.add_argument("--engine", default=VLLM_ENGINE, help="vllm, or module:factory")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    shard = args.shard if args.shard is not None else int(os.environ.get("JOB_COMPLETION_INDEX", "-1"))
    if not 0 <= shard < args.shards:
        parser().error(f"shard {shard} is not in 0..{args.shards - 1} (set --shard or JOB_COMPLETION_INDEX)")
    settings = Settings(
        shard=shard,
        shards=args.shards,
        model=args.model,
        tensor_parallel=args.tensor_parallel,
        max_model_len=args.max_model_len,
        max_tokens=args.max_tokens,
        temperature=args.temperature,
        chunk_size=args.chunk_size,
        cache_dir=args.cache_dir,
    )
    try:
        run(open_store(args.input), open_store(args.output), settings, engine_factory(args.engine))
    except BadInput as error:
        print(f"bad input: {error}", file=sys.stderr, flush=True)
        return BAD_INPUT_EXIT
    return 0


if __name__ == "__main__":
    sys.exit(main())
