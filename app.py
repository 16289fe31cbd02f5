#!/usr/bin/env python3
"""The default eks-ml app: a shared VPC, a training cluster and an inference cluster.

Configure it with ``eks-ml:*`` keys in cdk.json or ``cdk synth -c eks-ml:key=value`` (see README).
"""

from __future__ import annotations

import sys
from pathlib import Path

import eks_ml.bundled_node  # noqa: F401  (first: jsii runs on the Node.js of eks-ml[node])
import eks_ml.startup  # before aws_cdk: no garbage collection while it loads (see eks_ml/startup.py)

# isort: split
from aws_cdk import App

import eks_ml
from stacks import build_default_app, write_gitops

eks_ml.startup.imports_done()

# Every cluster's in-cluster objects for kubectl or GitOps, and the training cluster's TrainJobs.
DIST_DIR = Path(__file__).parent / "dist"


def main() -> int:
    app = App()
    try:
        config = eks_ml.load_app_config(app.node.get_all_context())
        stacks = build_default_app(app, config)
    except eks_ml.ValidationError as error:
        print(f"eks-ml configuration error: {error}", file=sys.stderr)
        return 1
    app.synth()
    written = write_gitops(stacks, DIST_DIR)
    print(f"wrote {len(written)} files under {DIST_DIR.name}/ (GitOps export)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
