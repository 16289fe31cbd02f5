"""Gates every app in tests/support/gated_apps.GATED_APPS passes (the default app's variants and each
examples/ app): cfn-lint on every stack, cdk-nag's packs with no unacknowledged finding, and every object
the app applies accepted by kubernetes-validate and by the pinned charts' CRDs with their CEL rules. The
other gates (real charts, pod security, CRD upgrades, checkov) parametrize over the same table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cfnlint.config import ConfigMixIn
from cfnlint.runner import Runner

from . import test_compliance, test_crd_upgrade, test_pod_security, test_real_charts
from .support.gated_apps import EXAMPLE_APPS, GATED_APPS, example_folders
from .support.manifests import applied_objects, requires_chart_cache, validate_objects
from .support.synth import Synthesis, error_findings

APPS = list(GATED_APPS)


def _synth(request: pytest.FixtureRequest, variant: str) -> Synthesis:
    synth: Synthesis = request.getfixturevalue(GATED_APPS[variant])
    return synth


def test_every_example_app_is_gated() -> None:
    assert example_folders() == sorted(EXAMPLE_APPS), "add the new examples/ app to tests/support/gated_apps.py"


def test_every_gate_covers_every_app() -> None:
    assert set(test_real_charts.EXPECTED) == set(GATED_APPS)
    assert set(test_pod_security.EXPECTED) == set(GATED_APPS)
    assert test_compliance.VARIANTS == GATED_APPS
    assert list(GATED_APPS.values()) == test_crd_upgrade.VARIANTS


def _region(synth: Synthesis, stack: str) -> str:
    manifest = json.loads((synth.outdir / "manifest.json").read_text())
    environment: str = manifest["artifacts"][stack]["environment"]  # aws://<account>/<region>
    region = environment.rsplit("/", 1)[-1]
    return region if region != "unknown-region" else "us-west-2"


def cfn_lint_errors(templates: dict[str, tuple[Path, str]]) -> dict[str, list[str]]:
    """cfn-lint's errors (rules E*) per stack, for templates given as stack -> (file, region). One cfn-lint
    run per region over all of that region's files, as `cfn-lint a.json b.json` does: building the runner and
    its rules costs ~0.3 s, paid once per app instead of once per stack (the matches are the same)."""
    by_region: dict[str, list[Path]] = {}
    for path, region in templates.values():
        by_region.setdefault(region, []).append(path)
    stack_of = {str(path): stack for stack, (path, _) in templates.items()}
    errors: dict[str, list[str]] = {stack: [] for stack in templates}
    for region, paths in by_region.items():
        for match in Runner(ConfigMixIn(["--template", *map(str, paths)], regions=[region])).run():
            if match.rule.id.startswith("E"):
                errors[stack_of[str(match.filename)]].append(str(match))
    return errors


@pytest.mark.parametrize("variant", APPS)
def test_cfn_lint_reports_no_errors(request: pytest.FixtureRequest, variant: str) -> None:
    synth = _synth(request, variant)
    templates = {stack: (synth.outdir / f"{stack}.template.json", _region(synth, stack)) for stack in synth.templates}
    errors = cfn_lint_errors(templates)
    assert set(errors) == set(synth.templates)
    assert {stack: found for stack, found in errors.items() if found} == {}


def test_cfn_lint_reports_an_error_on_the_stack_that_has_it(tmp_path: Path) -> None:
    queue = {"Type": "AWS::SQS::Queue", "Properties": {"MessageRetentionPeriod": 300}}
    broken = {"Type": "AWS::SQS::Queue", "Properties": {"MessageRetentionPeriod": "five minutes"}}
    files = {}
    for stack, resource in {"Good": queue, "Broken": broken, "AlsoGood": queue}.items():
        files[stack] = tmp_path / f"{stack}.template.json"
        files[stack].write_text(json.dumps({"Resources": {"Queue": resource}}))
    errors = cfn_lint_errors({stack: (path, "us-west-2") for stack, path in files.items()})
    assert errors["Good"] == errors["AlsoGood"] == []
    assert [e for e in errors["Broken"] if "E3012" in e and "five minutes" in e], errors


@pytest.mark.parametrize("variant", APPS)
def test_cdk_nag_has_no_unacknowledged_findings(request: pytest.FixtureRequest, variant: str) -> None:
    synth = _synth(request, variant)
    assert synth.error is None
    assert synth.validation_report is not None, "cdk-nag did not run"
    assert error_findings(synth.validation_report) == []


@requires_chart_cache
@pytest.mark.parametrize("variant", APPS)
def test_every_applied_object_passes_the_validator_and_the_pinned_crds(
    request: pytest.FixtureRequest, variant: str
) -> None:
    synth = _synth(request, variant)
    objects = [obj for template in synth.templates.values() for obj in applied_objects(template)]
    assert objects
    assert validate_objects(objects) == []
