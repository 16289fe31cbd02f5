"""Names that must be unique in one AWS account and region, checked across every stack of one app.

Two constructs that would create the same named AWS resource (an EKS cluster, the log groups, topic
and alarms of an observability add-on) synthesize fine and collide only at deploy. The registry lives
on the app itself (a construct at the root of the construct tree), so separate apps, and tests that
build several apps, never see each other's names.
"""

from __future__ import annotations

from aws_cdk import Stack
from constructs import Construct

from .errors import ValidationError

REGISTRY_ID = "EksMlUniqueNames"


class _NameRegistry(Construct):
    """kind -> (account, region, name) -> the construct path that claimed it."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.claimed: dict[str, dict[tuple[str, str, str], str]] = {}


def _registry(scope: Construct) -> _NameRegistry:
    root = scope.node.root
    assert isinstance(root, Construct)  # the App (or a plain Construct in a test)
    found = root.node.try_find_child(REGISTRY_ID)
    if isinstance(found, _NameRegistry):
        return found
    return _NameRegistry(root, REGISTRY_ID)


def claim_unique_name(scope: Construct, *, kind: str, name: str, field: str, fix: str) -> None:
    """Record that ``scope`` owns ``name`` among the ``kind``s of its stack's account and region, or raise
    a ValidationError naming the construct that owns it already. Stacks without an explicit account or
    region count as one environment (they deploy wherever the CLI's credentials point)."""
    stack = Stack.of(scope)
    claimed = _registry(scope).claimed.setdefault(kind, {})
    where = (stack.account, stack.region, name)
    owner = claimed.get(where)
    if owner is not None:
        raise ValidationError.single(
            field,
            name,
            f"each {kind} name once per account and region in one app ({owner} uses it already)",
            fix,
        )
    claimed[where] = scope.node.path
