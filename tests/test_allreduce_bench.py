"""The fabric acceptance test's timing, run for real against a simulated device.

torch (and torch-xla, and a GPU or Trainium) are not available here, so the script's real code paths
(main -> _run -> the timing loop) run against small fakes of torch, torch.distributed and torch_xla that
model what matters for timing: XLA compiles a graph the first time it sees it, at mark_step
(https://docs.pytorch.org/xla/release/r2.8/learn/trace-vs-execution-time.html), and NCCL sets up its
communicator on the first collective. Time is a simulated clock, so the expected numbers are exact.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass, field
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from .support.synth import ROOT

COMPILE_SECONDS = 30.0  # a Neuron graph compile takes tens of seconds
NCCL_SETUP_SECONDS = 5.0
BYTES_PER_SECOND = 100e9  # the simulated fabric's all-reduce time: bytes / 100 GB/s
WORLD_SIZE = 16


def _bench() -> ModuleType:
    path = ROOT / "eks_ml" / "training" / "workloads" / "allreduce_bench.py"
    spec = importlib.util.spec_from_file_location("allreduce_bench", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Tensor:
    numel: int  # float32 elements


@dataclass
class Device:
    """A simulated clock and accelerator: lazy XLA graphs or an asynchronous CUDA stream."""

    bytes_per_second: float = BYTES_PER_SECOND
    backend: str = ""
    now: float = 0.0
    pending: list[Tensor] = field(default_factory=list)  # traced, not yet run (XLA) or queued (CUDA)
    compiled: set[tuple[int, ...]] = field(default_factory=set)
    compiles: int = 0
    connected: bool = False

    def all_reduce(self, tensor: Tensor) -> None:
        self.pending.append(tensor)

    def mark_step(self) -> None:
        graph = tuple(t.numel for t in self.pending)
        if graph and graph not in self.compiled:
            self.now += COMPILE_SECONDS
            self.compiled.add(graph)
            self.compiles += 1
        self._execute()

    def synchronize(self) -> None:
        if self.pending and not self.connected:
            self.now += NCCL_SETUP_SECONDS
            self.connected = True
        self._execute()

    def _execute(self) -> None:
        self.now += sum(t.numel * 4 / self.bytes_per_second for t in self.pending)
        self.pending.clear()


def _install_fakes(monkeypatch: pytest.MonkeyPatch, device: Device, bench: ModuleType) -> None:
    def init_process_group(backend: str, **_: Any) -> None:
        device.backend = backend

    dist = ModuleType("torch.distributed")
    dist.init_process_group = init_process_group  # type: ignore[attr-defined]
    dist.all_reduce = device.all_reduce  # type: ignore[attr-defined]
    dist.destroy_process_group = lambda: None  # type: ignore[attr-defined]
    torch = ModuleType("torch")
    torch.float32 = "float32"  # type: ignore[attr-defined]
    torch.ones = lambda numel, dtype, device: Tensor(numel)  # type: ignore[attr-defined]
    torch.device = lambda name: name  # type: ignore[attr-defined]
    torch.cuda = SimpleNamespace(set_device=lambda index: None, synchronize=device.synchronize)  # type: ignore[attr-defined]
    torch.distributed = dist  # type: ignore[attr-defined]
    xm = ModuleType("torch_xla.core.xla_model")
    xm.xla_device = lambda: "xla:0"  # type: ignore[attr-defined]
    xm.mark_step = device.mark_step  # type: ignore[attr-defined]
    xm.wait_device_ops = lambda: None  # execution is accounted at mark_step  # type: ignore[attr-defined]
    core = ModuleType("torch_xla.core")
    core.xla_model = xm  # type: ignore[attr-defined]
    torch_xla = ModuleType("torch_xla")
    torch_xla.core = core  # type: ignore[attr-defined]
    for name, module in {
        "torch": torch,
        "torch.distributed": dist,
        "torch_xla": torch_xla,
        "torch_xla.core": core,
        "torch_xla.core.xla_model": xm,
    }.items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(bench, "time", SimpleNamespace(perf_counter=lambda: device.now))
    monkeypatch.setenv("WORLD_SIZE", str(WORLD_SIZE))
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("EKS_ML_EFA_GBPS", "3200")


@pytest.mark.parametrize("backend", ["xla", "nccl"])
def test_only_the_collective_is_timed_not_compilation_or_set_up(monkeypatch: pytest.MonkeyPatch, backend: str) -> None:
    bench, device = _bench(), Device()
    _install_fakes(monkeypatch, device, bench)
    results = bench._run(backend, iterations=20, warmup=5)
    assert [size for size, _ in results] == bench.MESSAGE_SIZES
    for size, seconds in results:
        assert seconds == pytest.approx(size / BYTES_PER_SECOND, rel=1e-9), f"{size} B timed with overhead"
    if backend == "xla":
        assert device.compiles == len(bench.MESSAGE_SIZES)  # one graph per size, compiled during warm-up


def test_a_healthy_xla_fabric_passes(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # 220 GB/s algorithm bandwidth on 16 ranks is 206.25 GB/s bus bandwidth, above the bar of half the
    # 3200 Gbps (400 GB/s) line rate; a 30 s compile inside the timed 20 steps would sink it to ~0.7 GB/s.
    bench, device = _bench(), Device(bytes_per_second=220e9)
    _install_fakes(monkeypatch, device, bench)
    assert bench.main(["--backend", "xla"]) == 0
    assert "PASS" in capsys.readouterr().out


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_warm_up_iterations_are_excluded_from_the_measurement() -> None:
    bench, clock, calls = _bench(), FakeClock(), []

    def step() -> None:
        # The first call is the expensive one (compilation); every later one costs 1 s.
        clock.now += 100.0 if not calls else 1.0
        calls.append("step")

    def sync() -> None:
        calls.append("sync")

    seconds = bench.seconds_per_iteration(step, sync, iterations=10, warmup=3, clock=clock)
    assert seconds == 1.0
    # Warm-up, a sync before the clock starts, the timed steps, a sync before it stops.
    assert calls == ["step"] * 3 + ["sync"] + ["step"] * 10 + ["sync"]


@pytest.mark.parametrize(("iterations", "warmup"), [(10, 0), (0, 5)])
def test_timing_without_warm_up_or_iterations_is_refused(iterations: int, warmup: int) -> None:
    bench = _bench()
    with pytest.raises(ValueError, match="warmup >= 1 and iterations >= 1"):
        bench.seconds_per_iteration(lambda: None, lambda: None, iterations=iterations, warmup=warmup)


def test_the_command_line_refuses_no_warm_up() -> None:
    with pytest.raises(SystemExit) as raised:
        _bench().main(["--warmup", "0"])
    assert raised.value.code == 2
