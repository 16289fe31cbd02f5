"""Answers eks-ml keeps in Python instead of asking aws-cdk-lib over jsii each time are aws-cdk-lib's own:
batched cdk-nag acknowledgements (eks_ml.nag.acknowledge_all) and pseudo-parameter tokens (eks_ml._pseudo)."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import Aws
from constructs import Construct

from eks_ml import _pseudo
from eks_ml.nag import PACK, acknowledge, acknowledge_all, nist

from .support.synth import library_stack

FINDINGS = [
    (f"{PACK}-IAM5[Resource::*]", "Describe calls take no resource ARNs in this policy."),
    (nist("LambdaDLQ"), "Invoked synchronously by CloudFormation; a dead-letter queue would stay empty."),
    (f"{PACK}-L1", "The runtime is pinned by the library that creates the function."),
]


def _acknowledged(construct: Construct) -> list[tuple[str, Any]]:
    return [(entry.type, entry.data) for entry in construct.node.metadata]


def test_acknowledge_all_records_what_one_acknowledge_per_finding_does() -> None:
    _, stack = library_stack()
    one_by_one, batched = Construct(stack, "OneByOne"), Construct(stack, "Batched")
    for finding, reason in FINDINGS:
        acknowledge(one_by_one, finding, reason)
    acknowledge_all(batched, FINDINGS)
    assert len(_acknowledged(batched)) == len(FINDINGS)
    assert _acknowledged(batched) == _acknowledged(one_by_one)


@pytest.mark.parametrize(
    ("finding", "reason", "message"),
    [("Checkov-CKV_AWS_1", "a reason long enough to pass", "must start with one of"), (f"{PACK}-L1", "short", "reason")],
)
def test_one_bad_acknowledgement_in_a_batch_records_none(finding: str, reason: str, message: str) -> None:
    _, stack = library_stack()
    scope = Construct(stack, "Scope")
    with pytest.raises(ValueError, match=message):
        acknowledge_all(scope, [*FINDINGS[:2], (finding, reason)])
    assert _acknowledged(scope) == []


def test_pseudo_parameters_are_the_tokens_aws_cdk_lib_hands_every_app() -> None:
    library_stack()  # a second app in this process reads the same static tokens
    assert (_pseudo.partition(), _pseudo.region(), _pseudo.account_id()) == (Aws.PARTITION, Aws.REGION, Aws.ACCOUNT_ID)
    assert len({_pseudo.partition(), _pseudo.region(), _pseudo.account_id()}) == 3
