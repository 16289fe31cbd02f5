"""Acknowledgements of cdk-nag AwsSolutions findings that eks-ml's constructs cannot fix.

Each one names the exact finding (rule plus the policy or resource it is about) and a specific
reason, on the narrowest construct, so any other finding of the same rule still fails.
cdk-nag reads acknowledgements through the CDK ``Validations`` API; without cdk-nag they are inert.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, CfnElement, Stack, Validations
from constructs import IConstruct

PACK = "AwsSolutions"
MIN_REASON_LENGTH = 20  # cdk-nag accepts an empty reason silently; we do not


def acknowledge(scope: IConstruct, finding: str, reason: str) -> None:
    if len(reason.strip()) < MIN_REASON_LENGTH:
        raise ValueError(f"acknowledgement of {finding} needs a specific reason, got {reason!r}")
    Validations.of(scope).acknowledge(Acknowledgment(id=f"{PACK}::{finding}", reason=reason))


def managed_policy(policy: str) -> str:
    """The IAM4 finding id for an AWS managed policy, e.g. ``service-role/AWSLambdaBasicExecutionRole``."""
    return f"{PACK}-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/{policy}]"


def logical_id(element: IConstruct) -> str:
    """Logical id of a CloudFormation element, as cdk-nag renders references to it."""
    assert isinstance(element, CfnElement)
    return Stack.of(element).get_logical_id(element)
