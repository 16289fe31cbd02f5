"""One synth in a fresh process, as `python app.py` does it: `synth_once.py KIND on|off OUTDIR`
(on/off: CDK's built-in CloudFormation validator). KIND: default (the default app), one-cluster
(examples/existing_vpc_inference: one InferenceCluster serving one model, and its observability) or baseline
(bench/baseline_app.py). Run by bench/run.py, which times it."""

from __future__ import annotations

import eks_ml.bundled_node  # noqa: F401  (first: the same Node.js as app.py)
import eks_ml.startup  # as app.py, for every kind: no garbage collection while the imports run

# isort: split
import importlib.util
import json
import sys
from pathlib import Path

from aws_cdk import App

ROOT = Path(__file__).resolve().parents[1]


def main(kind: str, validator: str, outdir: str) -> None:
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    app = App(
        outdir=outdir, context=context, analytics_reporting=False, builtin_cloud_formation_validation=validator == "on"
    )
    if kind == "default":
        sys.path.insert(0, str(ROOT))
        from eks_ml import load_app_config
        from stacks import build_default_app, write_gitops

        eks_ml.startup.imports_done()
        stacks = build_default_app(app, load_app_config(context))
        app.synth()
        write_gitops(stacks, Path(outdir) / "dist")  # app.py writes its GitOps export on every synth
    elif kind == "one-cluster":
        spec = importlib.util.spec_from_file_location("one_cluster", ROOT / "examples/existing_vpc_inference/app.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        eks_ml.startup.imports_done()
        module.build(app)
        app.synth()
    else:
        sys.path.insert(0, str(Path(__file__).parent))
        from baseline_app import build

        eks_ml.startup.imports_done()
        build(app)
        app.synth()


if __name__ == "__main__":
    main(*sys.argv[1:4])
