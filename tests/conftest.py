"""Session-wide synths: the default app is synthesized once (with cdk-nag) and shared by all tests."""

from __future__ import annotations

import eks_ml.bundled_node  # noqa: F401  (first: the tests, like app.py, run jsii on eks-ml[node]'s Node.js)

# isort: split
import gc
import importlib.util
import os
from pathlib import Path

import pytest
from syrupy.extensions.json import JSONSnapshotExtension

from eks_ml import AppConfig, load_app_config
from stacks import build_default_app

from .support import charts
from .support.gated_apps import example_app
from .support.synth import CDK_CONTEXT, Synthesis, make_app, set_scratch_root, shared_synthesis, synthesize

# Each worker builds hundreds of apps over the ~175,000 long-lived objects aws-cdk-lib's and eks-ml's imports
# made (as eks_ml.startup explains for app.py): freeze those out of collections, and collect the young
# generation less often (each app build allocates tens of thousands of short-lived objects). ~10% less CPU
# for build-heavy test files (test_bad_input_properties + test_inference_cluster: 21.0 -> 18.7 user seconds).
gc.freeze()
gc.set_threshold(50_000, 50, 100)


@pytest.fixture(scope="session", autouse=True)
def _assemblies_in_pytest_temp(tmp_path_factory: pytest.TempPathFactory) -> None:
    set_scratch_root(tmp_path_factory.getbasetemp() / "assemblies")


@pytest.fixture(scope="session", autouse=True)
def _helm_renders_shared_by_the_run(run_dir: Path | None, tmp_path_factory: pytest.TempPathFactory) -> None:
    """helm template runs once per chart, values and flags per test run, whichever worker asks first."""
    charts.set_render_cache((run_dir or tmp_path_factory.getbasetemp()) / "helm-renders")


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path | None:
    """A directory shared by this run's pytest-xdist workers (None without xdist): the session synths below
    are made once per run, not once per worker."""
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    return tmp_path_factory.getbasetemp().parent / f"shared-{run}" if run else None


@pytest.fixture(scope="session")
def default_config() -> AppConfig:
    return load_app_config(CDK_CONTEXT)


@pytest.fixture(scope="session")
def default_synth(run_dir: Path | None, default_config: AppConfig) -> Synthesis:
    def make(outdir: Path) -> Synthesis:
        app = make_app(outdir, nag=True)
        return synthesize(app, lambda a: build_default_app(a, default_config, bootstrap_version_rule=False))

    return shared_synthesis(run_dir, "default-app", make)


@pytest.fixture
def json_snapshot(snapshot):  # type: ignore[no-untyped-def]
    return snapshot.use_extension(JSONSnapshotExtension)


def _variant(run_dir: Path | None, name: str, overrides: dict[str, object], *, nag: bool = False) -> Synthesis:
    """The default app with context overrides (the chart-rendering gates use these without cdk-nag)."""
    context = {**CDK_CONTEXT, **overrides}

    def make(outdir: Path) -> Synthesis:
        app = make_app(outdir, context, nag=nag)
        return synthesize(app, lambda a: build_default_app(a, load_app_config(context), bootstrap_version_rule=False))

    return shared_synthesis(run_dir, name, make)


@pytest.fixture(scope="session")
def prometheus_synth(run_dir: Path | None) -> Synthesis:
    """The default app with the Prometheus observability backend (eks-ml:observabilityBackend), with cdk-nag."""
    return _variant(run_dir, "prometheus-app", {"eks-ml:observabilityBackend": "prometheus"}, nag=True)


@pytest.fixture(scope="session")
def trainium_synth(run_dir: Path | None) -> Synthesis:
    """The default app training on Trainium (Neuron device plugin instead of NVIDIA's), from a Capacity Block
    with a known window (so the gates also see the Capacity Block watch)."""
    return _variant(run_dir, "trainium-app", {"eks-ml:trainingInstanceType": "trn1.32xlarge", **CAPACITY_BLOCK})


# A Capacity Block for the trainium variant: two days, ending at 11:30 UTC as every block does.
CAPACITY_BLOCK = {
    "eks-ml:trainingCapacity": "capacityBlock",
    "eks-ml:trainingReservationId": "cr-0123456789abcdef0",
    "eks-ml:trainingCapacityBlockStart": "2026-12-01T11:30:00Z",
    "eks-ml:trainingCapacityBlockEnd": "2026-12-03T11:30:00Z",
    "eks-ml:trainingCapacityBlockUpfrontUsd": 1500.0,
}


@pytest.fixture(scope="session")
def auto_mode_synth(run_dir: Path | None) -> Synthesis:
    """The default app on EKS Auto Mode (no Karpenter chart, system pods placed for Auto Mode nodes)."""
    return _variant(run_dir, "auto-mode-app", {"eks-ml:autoMode": True})


def _example(run_dir: Path | None, folder: str) -> Synthesis:
    """examples/<folder>/app.py, built by its own ``build(app)`` as its users run it, with cdk-nag."""

    def make(outdir: Path) -> Synthesis:
        spec = importlib.util.spec_from_file_location(f"example_{folder}", example_app(folder))
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return synthesize(make_app(outdir, nag=True), module.build)

    return shared_synthesis(run_dir, f"example-{folder}", make)


@pytest.fixture(scope="session")
def existing_vpc_inference_synth(run_dir: Path | None) -> Synthesis:
    """examples/existing_vpc_inference (one cluster in an imported VPC serving one model), with cdk-nag."""
    return _example(run_dir, "existing_vpc_inference")


@pytest.fixture(scope="session")
def karpenter_training_synth(run_dir: Path | None) -> Synthesis:
    """examples/karpenter_training (a node group and two Karpenter training pools), with cdk-nag."""
    return _example(run_dir, "karpenter_training")


@pytest.fixture(scope="session")
def inference_patterns_synth(run_dir: Path | None) -> Synthesis:
    """examples/inference_patterns (batch, queue-driven, CPU, Triton and multi-node serving), with cdk-nag."""
    return _example(run_dir, "inference_patterns")

