"""eks_ml._tokens.is_unresolved answers as aws-cdk-lib's Token.is_unresolved does, for every kind of value."""

from __future__ import annotations

import json
from typing import Any

import eks_ml  # noqa: F401  (selects the bundled Node.js before aws_cdk starts jsii)

# isort: split
import pytest
from aws_cdk import Aws, Fn, Token

from eks_ml import _tokens


def _values() -> list[Any]:
    account = Aws.ACCOUNT_ID
    listed = Token.as_list(Fn.split(",", account))
    return [
        account,  # ${Token[...]}
        f"arn:aws:iam::{account}:role/x",  # a token inside a string
        listed[0],  # #{Token[...]}: a list token's one element
        listed,
        json.dumps({"name": account}),  # a token inside JSON text (the GitOps export asks this)
        Token.as_number(account),  # a number token: asked of CDK
        "plain",
        "Token[ without its dollar sign",  # the marker alone: CDK decides
        "${Token[not-a-token-key!]}",  # the marker with characters no token key has
        "",
        1.5,
        ["a", "b"],
    ]


@pytest.mark.parametrize("index", range(len(_values())))
def test_the_answer_is_cdks_own(index: int) -> None:
    value = _values()[index]
    assert _tokens.is_unresolved(value) is bool(Token.is_unresolved(value)), value


def test_the_shortcut_is_only_as_exact_as_its_marker(monkeypatch: pytest.MonkeyPatch) -> None:
    # With a marker tokens do not carry, a token would read as resolved, and test_the_answer_is_cdks_own fails.
    account = Aws.ACCOUNT_ID
    assert _tokens.is_unresolved(account)
    monkeypatch.setattr(_tokens, "ANY_TOKEN_MARKER", "Token:")
    assert not _tokens.is_unresolved(account)
    assert Token.is_unresolved(account)
