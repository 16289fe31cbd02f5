"""Session-wide synths: the default app is synthesized once (with cdk-nag) and shared by all tests."""

from __future__ import annotations

import eks_ml.bundled_node  # noqa: F401  (first: the tests, like app.py, run jsii on eks-ml[node]'s Node.js)

# isort: split
import pytest
from syrupy.extensions.json import JSONSnapshotExtension

from eks_ml import AppConfig, load_app_config
from stacks import build_default_app

from .support.synth import CDK_CONTEXT, Synthesis, make_app, synthesize


@pytest.fixture(scope="session")
def default_config() -> AppConfig:
    return load_app_config(CDK_CONTEXT)


@pytest.fixture(scope="session")
def default_synth(tmp_path_factory: pytest.TempPathFactory, default_config: AppConfig) -> Synthesis:
    app = make_app(tmp_path_factory.mktemp("default-app"), nag=True)
    return synthesize(app, lambda a: build_default_app(a, default_config, bootstrap_version_rule=False))


@pytest.fixture
def json_snapshot(snapshot):  # type: ignore[no-untyped-def]
    return snapshot.use_extension(JSONSnapshotExtension)


@pytest.fixture(scope="session")
def prometheus_synth(tmp_path_factory: pytest.TempPathFactory) -> Synthesis:
    """The default app with the Prometheus observability backend (eks-ml:observabilityBackend)."""
    context = {**CDK_CONTEXT, "eks-ml:observabilityBackend": "prometheus"}
    app = make_app(tmp_path_factory.mktemp("prometheus-app"), context, nag=True)
    return synthesize(app, lambda a: build_default_app(a, load_app_config(context), bootstrap_version_rule=False))


def _variant(tmp_path_factory: pytest.TempPathFactory, name: str, overrides: dict[str, object]) -> Synthesis:
    """The default app with context overrides, without cdk-nag (the gates that use these render charts)."""
    context = {**CDK_CONTEXT, **overrides}
    app = make_app(tmp_path_factory.mktemp(name), context)
    return synthesize(app, lambda a: build_default_app(a, load_app_config(context), bootstrap_version_rule=False))


@pytest.fixture(scope="session")
def trainium_synth(tmp_path_factory: pytest.TempPathFactory) -> Synthesis:
    """The default app training on Trainium (Neuron device plugin instead of NVIDIA's)."""
    return _variant(tmp_path_factory, "trainium-app", {"eks-ml:trainingInstanceType": "trn1.32xlarge"})


@pytest.fixture(scope="session")
def auto_mode_synth(tmp_path_factory: pytest.TempPathFactory) -> Synthesis:
    """The default app on EKS Auto Mode (no Karpenter chart, system pods placed for Auto Mode nodes)."""
    return _variant(tmp_path_factory, "auto-mode-app", {"eks-ml:autoMode": True})
