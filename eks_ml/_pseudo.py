"""CloudFormation pseudo parameters as CDK tokens (``Aws.PARTITION``, ...), read from aws-cdk-lib once.

aws-cdk-lib makes each a static readonly token string when its ``Aws`` class loads (aws-cdk-lib 2.275.0,
core/lib/cfn-pseudo.js: ``static PARTITION = pseudoString("AWS::Partition")``), so every read in a process
returns the same string, in every app; from Python each read is a jsii round trip to Node.js, and the IAM
policies of Karpenter and the load balancer controller read them a few dozen times.
"""

from __future__ import annotations

from functools import cache

from aws_cdk import Aws


@cache
def partition() -> str:
    """``Aws.PARTITION``."""
    return Aws.PARTITION


@cache
def region() -> str:
    """``Aws.REGION``."""
    return Aws.REGION


@cache
def account_id() -> str:
    """``Aws.ACCOUNT_ID``."""
    return Aws.ACCOUNT_ID
