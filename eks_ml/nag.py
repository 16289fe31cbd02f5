"""Acknowledgements of cdk-nag findings (AwsSolutions and NIST 800-53 R5 packs) that eks-ml's constructs
cannot fix.

Each one names the exact finding (rule plus the policy or resource it is about) and a specific
reason, on the narrowest construct, so any other finding of the same rule still fails.
cdk-nag reads acknowledgements through the CDK ``Validations`` API; without cdk-nag they are inert.
"""

from __future__ import annotations

from collections.abc import Iterable

from aws_cdk import Acknowledgment, CfnElement, Stack, Validations
from aws_cdk import aws_iam as iam
from constructs import IConstruct

PACK = "AwsSolutions"
NIST = "NIST.800.53.R5"
PACKS = (PACK, NIST)
MIN_REASON_LENGTH = 20  # cdk-nag accepts an empty reason silently; we do not


def acknowledge(scope: IConstruct, finding: str, reason: str) -> None:
    """Acknowledge ``finding`` ("<pack>-<rule>[...]", e.g. "NIST.800.53.R5-LambdaDLQ") on ``scope``."""
    acknowledge_all(scope, [(finding, reason)])


def acknowledge_all(scope: IConstruct, findings: Iterable[tuple[str, str]]) -> None:
    """Acknowledge each ``(finding, reason)`` on ``scope``, in order, as :func:`acknowledge` does one: in one
    jsii call (``Validations.acknowledge`` records each of its arguments as a call of its own would)."""
    acknowledgments = [_acknowledgment(finding, reason) for finding, reason in findings]
    if acknowledgments:
        Validations.of(scope).acknowledge(*acknowledgments)


def _acknowledgment(finding: str, reason: str) -> Acknowledgment:
    pack = finding.split("-", 1)[0]
    if pack not in PACKS:
        raise ValueError(f"acknowledgement of {finding}: the finding must start with one of {PACKS}")
    if len(reason.strip()) < MIN_REASON_LENGTH:
        raise ValueError(f"acknowledgement of {finding} needs a specific reason, got {reason!r}")
    return Acknowledgment(id=f"{pack}::{finding}", reason=reason)


def nist(rule: str) -> str:
    """The finding id of a NIST 800-53 R5 rule, e.g. ``nist("LambdaDLQ")``."""
    return f"{NIST}-{rule}"


def acknowledge_inline_policy(role: iam.Role, reason: str) -> None:
    """NIST IAMNoInlinePolicy on ``role``'s own (DefaultPolicy) policy, which CDK grants write.

    Call after the role's statements are added (the policy exists only then)."""
    policy = role.node.try_find_child("DefaultPolicy")
    resource = policy.node.default_child if policy is not None else None
    assert resource is not None, "the role has no inline policy yet"
    acknowledge(resource, nist("IAMNoInlinePolicy"), reason)


def managed_policy(policy: str) -> str:
    """The IAM4 finding id for an AWS managed policy, e.g. ``service-role/AWSLambdaBasicExecutionRole``."""
    return f"{PACK}-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/{policy}]"


def logical_id(element: IConstruct) -> str:
    """Logical id of a CloudFormation element, as cdk-nag renders references to it."""
    assert isinstance(element, CfnElement)
    return Stack.of(element).get_logical_id(element)
