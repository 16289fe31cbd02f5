"""The Kubernetes CEL extension functions, through cel-python, against the behaviour the Kubernetes docs and
cel-go's strings extension document (cases taken from their examples where they give one)."""

from __future__ import annotations

from typing import Any

import celpy
import pytest
from celpy.evaluation import CELEvalError

from .support.k8s_cel import FUNCTIONS

ENV = celpy.Environment()


def evaluate(expression: str) -> Any:
    return ENV.program(ENV.compile(expression), functions=FUNCTIONS).evaluate({})


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("'abc 123'.find('[0-9]+')", "123"),  # the Kubernetes docs' example
        ("'abc'.find('[0-9]+')", ""),  # no match: empty string, not an error
        ("'karpenter.sh/nodepool'.find('^([^/]+)')", "karpenter.sh"),  # how Karpenter reads a label's domain
        ("'a1b22'.find('[0-9]+')", "1"),  # the leftmost match, not the longest
    ],
)
def test_find_returns_the_first_match_or_empty(expression: str, expected: str) -> None:
    assert evaluate(expression) == expected


def test_find_with_an_invalid_regex_is_an_error() -> None:
    with pytest.raises(CELEvalError, match="invalid regex '\\('"):
        evaluate("'abc'.find('(')")


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("'hello hello'.split(' ')", ["hello", "hello"]),  # cel-go's examples
        ("'hello hello hello'.split(' ', 0)", []),
        ("'hello hello hello'.split(' ', 1)", ["hello hello hello"]),
        ("'hello hello hello'.split(' ', 2)", ["hello", "hello hello"]),
        ("'hello hello hello'.split(' ', -1)", ["hello", "hello", "hello"]),
        ("'al2023@latest'.split('@')[0]", "al2023"),  # how Karpenter reads an alias's family
        ("'noat'.split('@')", ["noat"]),
        ("''.split('@')", [""]),  # Go: one empty part
        ("'abc'.split('')", ["a", "b", "c"]),  # empty separator: characters
        ("''.split('')", []),
        ("'abc'.split('', 2)", ["a", "bc"]),
    ],
)
def test_split_follows_go_split_and_split_n(expression: str, expected: Any) -> None:
    assert evaluate(expression) == expected
