"""Length limits of the AWS resource names eks-ml derives from a user-given name.

A name that fits where the user typed it can overflow where eks-ml appends a suffix: the Karpenter node
role ``<cluster>-karpenter-node`` must fit IAM's 64 characters. Checked at synth so the user sees the field
they set, not a failed deploy.
"""

from __future__ import annotations

from .errors import Problems

# Service limits (IAM, SQS, SNS, CloudWatch, Amazon Managed Service for Prometheus user guides).
IAM_ROLE_NAME_MAX = 64
SQS_QUEUE_NAME_MAX = 80
SNS_TOPIC_NAME_MAX = 256
CLOUDWATCH_ALARM_NAME_MAX = 255
LOG_GROUP_NAME_MAX = 512
PROMETHEUS_ALIAS_MAX = 100
CLOUDFORMATION_STACK_NAME_MAX = 128


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
