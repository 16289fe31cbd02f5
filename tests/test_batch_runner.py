"""The batch inference runner (eks_ml/inference/workloads/batch_inference.py) run for real, as the Job's pods run
it: a subprocess per index, a local directory standing in for S3, and a stand-in engine on the CPU (the script's
--engine hook). Proves shard selection, the output format, skip-on-marker, resume after a kill and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from eks_ml.inference.workloads import batch_inference as runner
from eks_ml.k8s.batch_inference import NO_RETRY_EXIT_CODES

SCRIPT = Path(runner.__file__)
FAKE_ENGINE = """
import json, os

class Fake:
    def __init__(self, *, model, tensor_parallel, max_model_len):
        if os.environ.get("FAKE_FAIL_ON_LOAD"):
            raise SystemExit("the model was loaded although nothing was left to do")
        self._log({"load": model, "tp": tensor_parallel})

    def _log(self, entry):
        with open(os.environ["FAKE_LOG"], "a") as out:
            out.write(json.dumps(entry) + "\\n")

    def generate(self, prompts, *, max_tokens, temperature):
        self._log({"generate": list(prompts)})
        if os.environ.get("FAKE_DIE_AT") in prompts:
            os._exit(137)  # killed mid-shard, as by the OOM killer or a Spot reclaim
        return [
            {"text": p.upper(), "finish_reason": "stop", "prompt_tokens": len(p), "completion_tokens": len(p)}
            for p in prompts
        ]
"""


def write_inputs(root: Path, files: dict[str, list[Any]]) -> None:
    for name, lines in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join((json.dumps(line) if not isinstance(line, str) else line) + "\n" for line in lines))


def prompts(name: str, count: int) -> list[dict[str, str]]:
    return [{"prompt": f"{name} prompt {i}"} for i in range(count)]


class Runner:
    def __init__(self, tmp: Path) -> None:
        self.input, self.output, self.log = tmp / "in", tmp / "out", tmp / "engine.log"
        (tmp / "engines").mkdir(parents=True)
        (tmp / "engines" / "fake_engine.py").write_text(FAKE_ENGINE)
        self.engines = tmp / "engines"

    def __call__(self, shard: int, shards: int, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-S",  # the script needs only the standard library (boto3 and vllm are imported when used)
                str(SCRIPT),
                f"--input={self.input}",
                f"--output={self.output}",
                f"--shards={shards}",
                "--model=org/model",
                "--engine=fake_engine:Fake",
                *args,
            ],
            env={
                **os.environ,
                "PYTHONPATH": str(self.engines),
                "FAKE_LOG": str(self.log),
                "JOB_COMPLETION_INDEX": str(shard),  # what Kubernetes sets in an Indexed Job's pods
                **env,
            },
            capture_output=True,
            text=True,
            timeout=60,
        )

    def calls(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.read_text().splitlines()] if self.log.exists() else []

    def outputs(self) -> dict[str, str]:
        return {
            p.relative_to(self.output).as_posix(): p.read_text() for p in sorted(self.output.rglob("*")) if p.is_file()
        }


@pytest.fixture
def run(tmp_path: Path) -> Runner:
    return Runner(tmp_path)


def test_shards_split_the_inputs_round_robin_and_write_jsonl(run: Runner) -> None:
    files = {f"{name}.jsonl": prompts(name, 3) for name in "abcde"}
    files["nested/f.jsonl"] = [{"prompt": "with id", "id": "req-7"}]
    write_inputs(run.input, files)
    (run.input / "README.txt").write_text("not an input\n")
    for shard in (0, 1):
        result = run(shard, 2)
        assert result.returncode == 0, result.stderr
    outputs = run.outputs()
    # Sorted keys a, b, c, d, e, nested/f: shard 0 takes positions 0, 2, 4 and shard 1 positions 1, 3, 5.
    summaries = {s: json.loads(outputs[f"shard-0000{s}/_SUCCESS"]) for s in (0, 1)}
    assert summaries[0]["inputs"] == ["a.jsonl", "c.jsonl", "e.jsonl"]
    assert summaries[1]["inputs"] == ["b.jsonl", "d.jsonl", "nested/f.jsonl"]
    assert "shard-00001/nested__f-00000.jsonl" in outputs
    lines = [json.loads(line) for key, text in outputs.items() if key.endswith(".jsonl") for line in text.splitlines()]
    assert len(lines) == 16  # every prompt answered exactly once across the shards
    assert {line["id"] for line in lines} >= {"a.jsonl#1", "e.jsonl#3", "req-7"}
    first = next(line for line in lines if line["id"] == "a.jsonl#1")
    assert first == {
        "id": "a.jsonl#1",
        "input": "a.jsonl",
        "line": 1,
        "text": "A PROMPT 0",
        "finish_reason": "stop",
        "prompt_tokens": 10,
        "completion_tokens": 10,
    }


def test_a_finished_shard_exits_at_once_without_loading_the_model(run: Runner) -> None:
    write_inputs(run.input, {"a.jsonl": prompts("a", 2), "b.jsonl": prompts("b", 2)})
    assert run(0, 2).returncode == 0
    calls = run.calls()
    again = run(0, 2, FAKE_FAIL_ON_LOAD="1")
    assert again.returncode == 0 and "_SUCCESS exists, nothing to do" in again.stdout
    assert run.calls() == calls
    # The marker is per shard: shard 1 has none yet, so it must load the model (and here fails to).
    assert run(1, 2, FAKE_FAIL_ON_LOAD="1").returncode != 0
    assert "shard-00001/_SUCCESS" not in run.outputs()


def test_a_killed_shard_resumes_at_the_first_missing_chunk(run: Runner, tmp_path: Path) -> None:
    write_inputs(run.input, {"a.jsonl": prompts("a", 7)})
    killed = run(0, 1, "--chunk-size=2", FAKE_DIE_AT="a prompt 5")
    assert killed.returncode == 137
    after_kill = run.outputs()
    assert sorted(after_kill) == ["shard-00000/a-00000.jsonl", "shard-00000/a-00001.jsonl"]  # whole chunks, no marker
    assert run(0, 1, "--chunk-size=2").returncode == 0
    resumed = [c["generate"] for c in run.calls() if "generate" in c][3:]  # after the three calls before the kill
    assert resumed == [["a prompt 4", "a prompt 5"], ["a prompt 6"]]  # chunks 0 and 1 were not redone
    outputs = run.outputs()
    assert {k: outputs[k] for k in after_kill} == after_kill
    # The same as an unbroken run.
    unbroken = Runner(tmp_path / "unbroken")
    unbroken.input = run.input
    assert unbroken(0, 1, "--chunk-size=2").returncode == 0
    assert {k: v for k, v in unbroken.outputs().items() if k.endswith(".jsonl")} == {
        k: v for k, v in outputs.items() if k.endswith(".jsonl")
    }


@pytest.mark.parametrize(
    "line", ["not json", json.dumps({"text": "no prompt"}), json.dumps(["a list"]), json.dumps({"prompt": 3})]
)
def test_bad_input_fails_the_index_without_retry(run: Runner, line: str) -> None:
    write_inputs(run.input, {"a.jsonl": [{"prompt": "fine"}, line]})
    result = run(0, 1)
    assert result.returncode == runner.BAD_INPUT_EXIT and "a.jsonl line 2" in result.stderr
    assert "shard-00000/_SUCCESS" not in run.outputs()


def test_a_shard_outside_the_job_is_refused(run: Runner) -> None:
    write_inputs(run.input, {"a.jsonl": prompts("a", 1)})
    assert run(2, 2).returncode == 2
    assert run(0, 2).returncode == 0  # a shard inside runs


def test_the_jobs_no_retry_exit_codes_are_the_scripts() -> None:
    assert NO_RETRY_EXIT_CODES == (2, runner.BAD_INPUT_EXIT)  # argparse's usage error, then bad data


FAKE_VLLM = '''
"""Stand-in for vllm's offline API surface the runner uses (v0.11.0: LLM, SamplingParams, RequestOutput)."""
import json, os
from types import SimpleNamespace

class SamplingParams:
    def __init__(self, *, max_tokens, temperature):
        self.max_tokens, self.temperature = max_tokens, temperature

class LLM:
    def __init__(self, *, model, tensor_parallel_size, max_model_len):
        with open(os.environ["FAKE_LOG"], "a") as out:
            out.write(json.dumps({"model": model, "tp": tensor_parallel_size, "len": max_model_len}) + "\\n")

    def generate(self, prompts, sampling_params):
        return [
            SimpleNamespace(
                prompt=p,
                prompt_token_ids=list(range(len(p.split()))),
                outputs=[SimpleNamespace(text=p[::-1], token_ids=[1] * sampling_params.max_tokens, finish_reason="length")],
            )
            for p in prompts
        ]
'''


def test_the_vllm_engine_maps_request_outputs(run: Runner) -> None:
    (run.engines / "vllm.py").write_text(FAKE_VLLM)
    write_inputs(run.input, {"a.jsonl": [{"prompt": "one two three"}]})
    result = run(0, 1, "--engine=vllm", "--tensor-parallel=2", "--max-model-len=4096", "--max-tokens=5")
    assert result.returncode == 0, result.stderr
    assert run.calls() == [{"model": "org/model", "tp": 2, "len": 4096}]
    (line,) = run.outputs()["shard-00000/a-00000.jsonl"].splitlines()
    assert json.loads(line) == {
        "id": "a.jsonl#1",
        "input": "a.jsonl",
        "line": 1,
        "text": "eerht owt eno",
        "finish_reason": "length",
        "prompt_tokens": 3,
        "completion_tokens": 5,
    }


def test_a_model_in_s3_is_copied_to_local_storage_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    weights = tmp_path / "bucket" / "qwen"
    write_inputs(weights, {"config.json": [{"a": 1}], "shards/model-1.safetensors": ["x"]})
    monkeypatch.setattr(runner, "open_store", lambda url: runner.LocalStore(weights))
    local = runner.local_model("s3://bucket/qwen/", tmp_path / "cache")
    assert local == str(tmp_path / "cache" / "model")
    assert sorted(runner.LocalStore(Path(local)).list_keys()) == ["config.json", "shards/model-1.safetensors"]
    assert runner.local_model("Qwen/Qwen3-8B", tmp_path / "cache") == "Qwen/Qwen3-8B"  # Hub ids go to vLLM as given
