"""``Token.is_unresolved`` without a jsii round trip for the common case, a plain string.

Asking aws-cdk-lib whether a value holds a token is a round trip to its Node.js process (a quarter of a
millisecond or more); the default app asks a few hundred times while it builds (every Helm value, every exported
object). Every token CDK encodes in a string carries the marker ``Token[``, and CDK's own check tests for that
marker first (aws-cdk-lib 2.275.0, core/lib/private/encoding.js, ``unresolved``: ``obj.includes(ANY_TOKEN_MARKER)``,
``ANY_TOKEN_MARKER = "Token["``). A string without it is answered here; anything else is still asked of CDK.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Token

ANY_TOKEN_MARKER = "Token["


def is_unresolved(value: Any) -> bool:
    """Exactly ``Token.is_unresolved(value)``."""
    if isinstance(value, str) and ANY_TOKEN_MARKER not in value:
        return False
    return bool(Token.is_unresolved(value))
