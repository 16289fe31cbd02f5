"""Length limits of the AWS resource names eks-ml derives from a user-given name.

A name that fits where the user typed it can overflow where eks-ml appends a suffix: an EKS cluster name
may have 100 characters, but the Prometheus rule groups namespace ``<cluster>-ml`` only 64 (the Karpenter
node role's limit is checked by ``inference.karpenter``). Checked at synth so the user sees the field they
set, not a failed deploy.
"""

from __future__ import annotations

from .errors import Problems

# maxLength of the names in the CloudFormation resource schemas (AWS::IAM::Role RoleName,
# AWS::APS::RuleGroupsNamespace Name). The other names eks-ml derives from a cluster name fit whatever
# EKS accepts (100 characters): SNS topic 256, CloudWatch alarm 255, log group 512, workspace alias 100.
IAM_ROLE_NAME_MAX = 64
PROMETHEUS_RULE_GROUPS_NAMESPACE_MAX = 64


def check_derived_name(derived: str, limit: int, what: str, field: str, value: str, problems: Problems) -> bool:
    """``derived`` (built from ``value`` of ``field``) must fit ``limit`` characters."""
    if len(derived) <= limit:
        return True
    room = limit - (len(derived) - len(value))
    problems.add(
        field,
        value,
        f"a name short enough for the {what} {derived!r} ({len(derived)} characters; the limit is {limit})",
        f"shorten it to at most {room} characters",
    )
    return False
