#!/usr/bin/env python3
"""The default eks-ml app: a shared VPC, a training cluster and an inference cluster.

Configure it with ``eks-ml:*`` keys in cdk.json or ``cdk synth -c eks-ml:key=value`` (see README).
"""

from __future__ import annotations

import sys

from aws_cdk import App

import eks_ml  # first: selects the bundled Node.js for jsii
from stacks import build_default_app


def main() -> int:
    app = App()
    try:
        config = eks_ml.load_app_config(app.node.get_all_context())
        build_default_app(app, config)
    except eks_ml.ValidationError as error:
        print(f"eks-ml configuration error: {error}", file=sys.stderr)
        return 1
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
