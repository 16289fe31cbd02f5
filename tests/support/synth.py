"""Synthesis helpers shared by the tests: one App factory, template loading, snapshot normalisation."""

from __future__ import annotations

import fcntl
import json
import re
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import eks_ml.bundled_node  # noqa: F401  (before aws_cdk: the tests run jsii on eks-ml[node]'s Node.js)

# isort: split
from aws_cdk import App, Validations
from cdk_nag import AwsSolutionsChecks, NIST80053R5Checks

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"
# CDK's debugging metadata off in the tests' apps: a JavaScript stack trace captured for every CloudFormation
# element and annotation was ~13% of jsii's Node.js CPU per app build. It goes only into the cloud assembly's
# manifest (aws:cdk:creationStack, the trace of a metadata entry), which no test reads; the templates are the same.
NO_STACK_TRACES: Mapping[str, Any] = {"aws:cdk:disable-stack-trace": True, "aws:cdk:disable-creation-stack-traces": True}
# cdk.json's context, as the tests' apps get it.
CDK_CONTEXT: Mapping[str, Any] = {**json.loads((ROOT / "cdk.json").read_text())["context"], **NO_STACK_TRACES}
_ASSET_HASH = re.compile(r"\b[0-9a-f]{64}\b")
# Where assemblies go when a test names no outdir. An App without one writes a new /tmp/cdk.out* folder that
# nothing deletes (thousands per day of test runs filled this machine's disk); conftest points this at pytest's
# temporary directory, which pytest prunes to the last three runs.
_scratch_root: list[Path] = []


def set_scratch_root(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    _scratch_root[:] = [root]


def scratch_dir(prefix: str) -> Path:
    """A new, empty directory for one assembly (see _scratch_root)."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir=_scratch_root[0] if _scratch_root else None))


def make_app(outdir: Path, context: Mapping[str, Any] | None = None, *, nag: bool = False) -> App:
    """An App with the project's feature flags; the CloudFormation validator is off (it is run by
    `cdk synth`, and costs seconds per synth)."""
    app = App(
        context={**CDK_CONTEXT, **(context or {})},
        outdir=str(outdir),
        analytics_reporting=False,
        builtin_cloud_formation_validation=False,
    )
    if nag:
        # Both packs the project gates on; eks_ml.nag holds the acknowledgement helpers for each.
        Validations.of(app).add_plugins(AwsSolutionsChecks(app), NIST80053R5Checks(app))
    return app


def of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    """Resources of one CloudFormation type, by logical id."""
    return {k: r for k, r in template["Resources"].items() if r["Type"] == resource_type}


def joined(value: Any) -> str:
    """A CloudFormation string that may be an Fn::Join with references; each reference becomes "TOKEN"."""
    if isinstance(value, str):
        return value
    return "".join(part if isinstance(part, str) else "TOKEN" for part in value["Fn::Join"][1])


def resource_id(template: dict[str, Any], resource_type: str, **properties: Any) -> str:
    """The logical id of the one resource of a type whose properties include ``properties``."""
    (found,) = [
        logical_id
        for logical_id, resource in of_type(template, resource_type).items()
        if all(resource["Properties"].get(key) == value for key, value in properties.items())
    ]
    return found


def manifest_id(template: dict[str, Any], kind: str) -> str:
    """The logical id of the one kubectl-provider manifest that applies an object of ``kind``."""
    marker = f'"kind":"{kind}"'
    (found,) = [
        logical_id
        for logical_id, resource in of_type(template, "Custom::AWSCDK-EKS-KubernetesResource").items()
        if marker in json.dumps(resource["Properties"]["Manifest"]).replace('\\"', '"').replace(" ", "")
    ]
    return found


def manifest_kinds(template: dict[str, Any], logical_id: str) -> list[str]:
    """The kinds of the objects a kubectl-provider manifest applies, in apply order."""
    return [obj["kind"] for obj in json.loads(joined(template["Resources"][logical_id]["Properties"]["Manifest"]))]


@dataclass(frozen=True)
class Synthesis:
    """What one synth produced: templates by stack id, and the validation (cdk-nag) report if any."""

    outdir: Path
    templates: dict[str, dict[str, Any]]
    validation_report: dict[str, Any] | None
    error: str | None

    def resources(self, stack: str, resource_type: str) -> dict[str, dict[str, Any]]:
        return of_type(self.templates[stack], resource_type)


def synthesize(app: App, build: Callable[[App], object]) -> Synthesis:
    build(app)
    error = None
    try:
        app.synth()
    except RuntimeError as exc:  # a failed validation plugin still writes the templates and its report
        error = str(exc)
    return load_synthesis(Path(app.outdir), error)


def load_synthesis(outdir: Path, error: str | None = None) -> Synthesis:
    """A Synthesis read back from the cloud assembly at ``outdir``."""
    templates = {
        path.name.removesuffix(".template.json"): json.loads(path.read_text())
        for path in sorted(outdir.glob("*.template.json"))
    }
    report_path = outdir / "validation-report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else None
    return Synthesis(outdir, templates, report, error)


def shared_synthesis(run_dir: Path | None, name: str, make: Callable[[Path], Synthesis]) -> Synthesis:
    """``make(outdir)`` once per test run: with pytest-xdist (``run_dir`` set) the first worker synthesizes
    into ``run_dir/name`` under a file lock and the others read that assembly instead of synthesizing again."""
    if run_dir is None:
        return make(scratch_dir(f"{name}-"))
    run_dir.mkdir(exist_ok=True)
    outdir, done = run_dir / name, run_dir / f"{name}.done"
    with (run_dir / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not done.exists():
            synthesis = make(outdir)
            done.write_text(json.dumps({"error": synthesis.error}))
            return synthesis
    return load_synthesis(outdir, json.loads(done.read_text())["error"])


def error_findings(report: dict[str, Any] | None) -> list[str]:
    """Unacknowledged error findings of every validation plugin, as 'rule @ path' lines."""
    if report is None:
        return []
    return [
        f"{violation['ruleName']} @ {construct['constructPath']}"
        for plugin in report["pluginReports"]
        for violation in plugin["violations"]
        if violation.get("severity") == "error"
        for construct in violation["violatingConstructs"]
    ]


def normalize(template: dict[str, Any]) -> dict[str, Any]:
    """Template for snapshots: asset hashes (which change with every aws-cdk-lib release) replaced."""
    return json.loads(_ASSET_HASH.sub("<asset-hash>", json.dumps(template)))


def library_stack(region: str = "us-west-2") -> tuple[App, Any]:
    """A fresh App and Stack for testing one construct the way a library user composes it."""
    from aws_cdk import Environment, Stack

    app = App(
        context=dict(CDK_CONTEXT),
        outdir=str(scratch_dir("library-")),
        analytics_reporting=False,
        builtin_cloud_formation_validation=False,
    )
    return app, Stack(app, "Lib", env=Environment(region=region))


def imported_training_cluster(stack: Any, *, cluster_name: str, **attributes: Any) -> Any:
    """A TrainingCluster (one p5 group, no file system) on an imported aws_eks_v2 cluster.

    ``attributes`` override the import's attributes; pass ``kubectl_provider=None`` to leave it out.
    """
    from aws_cdk import aws_eks_v2 as eks
    from aws_cdk import aws_iam as iam

    from eks_ml import MlVpc, MlVpcProps
    from eks_ml.training import TrainingCluster, TrainingClusterProps, TrainingNodeGroupProps

    network = MlVpc(stack, "Network", MlVpcProps(availability_zones=("us-west-2a", "us-west-2b")))
    provider = eks.KubectlProvider.from_kubectl_provider_attributes(
        stack,
        "Kubectl",
        service_token="arn:aws:lambda:us-west-2:111122223333:function:kubectl",
        role=iam.Role.from_role_arn(stack, "KubectlRole", "arn:aws:iam::111122223333:role/kubectl"),
    )
    defaults: dict[str, Any] = {"cluster_security_group_id": "sg-0123456789abcdef0", "kubectl_provider": provider}
    imported = eks.Cluster.from_cluster_attributes(
        stack, "Existing", cluster_name=cluster_name, vpc=network.vpc, **{**defaults, **attributes}
    )
    return TrainingCluster(
        stack,
        "Training",
        TrainingClusterProps(
            cluster=imported,
            node_groups=[TrainingNodeGroupProps(name="p5", instance_type="p5.48xlarge")],
            file_system=None,
        ),
    )
