from __future__ import annotations

import pytest

from eks_ml import ValidationError
from eks_ml.errors import Problem, Problems


def test_message_names_field_value_allowed_and_fix() -> None:
    error = ValidationError.single("cidr", "10.0.0.0/33", "an IPv4 CIDR block", "use 10.0.0.0/16")
    assert str(error) == "cidr='10.0.0.0/33': allowed an IPv4 CIDR block. Fix: use 10.0.0.0/16"
    assert isinstance(error, ValueError)
    assert error.problems == (Problem("cidr", "10.0.0.0/33", "an IPv4 CIDR block", "use 10.0.0.0/16"),)


def test_several_problems_are_reported_together() -> None:
    problems = Problems()
    problems.add("a", 1, "2", "use 2")
    problems.add("b", "x", "y", "use y")
    with pytest.raises(ValidationError, match=r"2 problems:\n  - a=1: .*\n  - b='x'") as raised:
        problems.raise_if_any()
    assert [p.field for p in raised.value] == ["a", "b"]


def test_collecting_keeps_a_raised_error_with_the_others() -> None:
    problems = Problems()
    problems.add("first", 1, "2", "fix")
    with problems.collecting():
        raise ValidationError.single("second", 3, "4", "fix")
    assert [p.field for p in problems.found] == ["first", "second"]


def test_no_problems_raises_nothing() -> None:
    Problems().raise_if_any()


def test_an_error_needs_a_problem() -> None:
    with pytest.raises(ValueError, match="at least one problem"):
        ValidationError([])
