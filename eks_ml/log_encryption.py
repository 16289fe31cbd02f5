"""Customer-managed KMS keys for the CloudWatch Logs groups eks-ml creates.

Control-plane audit logs, VPC flow logs and container logs (which can hold prompts and completions) are
encrypted with a key of their own. CloudWatch Logs encrypts with the key itself, as the service principal
``logs.<region>.amazonaws.com``; the key policy lets it do so only for the named log groups, through the
``kms:EncryptionContext:aws:logs:arn`` condition (CloudWatch Logs User Guide, "Encrypt log data in
CloudWatch Logs using AWS KMS"). The key must allow this before the log group is created with it: it
is part of the key resource's policy, which CloudFormation creates first.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

LOGS_KEY_ACTIONS = ("kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*")
ENCRYPTION_CONTEXT_KEY = "kms:EncryptionContext:aws:logs:arn"


def log_group_arn(scope: Construct, name_pattern: str) -> str:
    """``arn:<partition>:logs:<region>:<account>:log-group:<name_pattern>`` in the scope's stack (the string
    Stack.format_arn builds, without its jsii round trip per ARN)."""
    (arn,) = _log_group_arns(Stack.of(scope), [name_pattern])
    return arn


def _log_group_arns(stack: Stack, name_patterns: Sequence[str]) -> list[str]:
    prefix = f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:log-group:"  # three jsii calls, once
    return [f"{prefix}{pattern}" for pattern in name_patterns]


def logs_key(scope: Construct, construct_id: str, *, description: str, name_patterns: Sequence[str]) -> kms.Key:
    """A rotated key that CloudWatch Logs may use for the groups matching ``name_patterns`` only.

    Retained with the stack's deletion: the log groups it encrypts are retained, and a deleted key
    would make them unreadable.
    """
    key = kms.Key(
        scope,
        construct_id,
        description=description,
        enable_key_rotation=True,
        removal_policy=RemovalPolicy.RETAIN,
    )
    stack = Stack.of(scope)  # once: each read of it (and of its region) is a jsii call
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="CloudWatchLogsOfTheseGroups",
            principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
            actions=list(LOGS_KEY_ACTIONS),
            resources=["*"],  # in a key policy, "*" is this key
            conditions={"ArnLike": {ENCRYPTION_CONTEXT_KEY: _log_group_arns(stack, name_patterns)}},
        )
    )
    return key


def encrypted_log_group(
    scope: Construct,
    construct_id: str,
    *,
    key: kms.IKey,
    retention: logs.RetentionDays,
    log_group_name: str | None = None,
) -> logs.LogGroup:
    """A retained log group encrypted with ``key``; the group's name must match one of the key's patterns."""
    return logs.LogGroup(
        scope,
        construct_id,
        log_group_name=log_group_name,
        encryption_key=key,
        retention=retention,
        removal_policy=RemovalPolicy.RETAIN,
    )


def encrypt_log_groups_within(
    scope: Construct, construct_id: str, *, within: Construct, description: str
) -> kms.Key | None:
    """Encrypt the log groups another library creates inside ``within`` (aws_eks_v2's kubectl provider
    Lambda groups, whose handler logs can echo the manifests it applies) with a new key of their own.
    The key names the groups by their (deploy-time) names, so it depends on the functions they log,
    never the other way round. Returns None when ``within`` creates no log group."""
    groups = [child for child in within.node.find_all() if isinstance(child, logs.CfnLogGroup)]
    if not groups:
        return None
    names = [group.log_group_name for group in groups]
    if any(name is None for name in names):
        raise AssertionError("aws_eks_v2 names its log groups after their functions")  # internal invariant
    key = logs_key(scope, construct_id, description=description, name_patterns=[n for n in names if n])
    for group in groups:
        group.kms_key_id = key.key_arn
    return key
