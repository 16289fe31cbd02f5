"""Every app the whole-cluster gates run over, in one table: the default app's variants and each examples/
app. The gates (real charts, CRDs with CEL, pod security, CRD upgrades, checkov and cdk-nag) parametrize over
GATED_APPS, so an app added here is gated everywhere at once; test_gated_apps fails when an examples/ app is
missing here or a gate's per-app expectations miss an app."""

from __future__ import annotations

from pathlib import Path

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"

# variant -> the session fixture (tests/conftest.py) that synthesizes it, with cdk-nag.
DEFAULT_VARIANTS = {
    "default": "default_synth",
    "prometheus": "prometheus_synth",
    "trainium": "trainium_synth",
    "auto-mode": "auto_mode_synth",
}
# examples/<folder>/app.py -> its variant name; the fixture is "<folder>_synth".
EXAMPLE_APPS = {
    "existing_vpc_inference": "example",
    "karpenter_training": "karpenter-training",
    "inference_patterns": "inference-patterns",
}
GATED_APPS = {**DEFAULT_VARIANTS, **{variant: f"{folder}_synth" for folder, variant in EXAMPLE_APPS.items()}}


def example_app(folder: str) -> Path:
    return EXAMPLES_DIR / folder / "app.py"


def example_folders() -> list[str]:
    """The examples/ apps on disk."""
    return sorted(p.parent.name for p in EXAMPLES_DIR.glob("*/app.py"))
