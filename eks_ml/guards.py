"""Type and shape guards shared by every props ``check()`` and the app configuration.

Python does not enforce dataclass annotations, so a wrongly typed value (``"2"`` for a count, ``20`` for a
Duration, ``"private"`` for an enum, ``"a,b"`` for a list) would otherwise surface as a TypeError, a jsii
error, or worse, be accepted: a string iterated as a list is taken letter by letter, and the string
``"false"`` is truthy. Each guard adds one Problem naming the field, the value, what is allowed and the fix,
and returns whether the value has the expected shape, so a check can skip the rules that need it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import Enum
from typing import Any

from aws_cdk import Duration

from .errors import Problems


def _got(value: Any) -> str:
    """The value's type for the message: the repr of '2' and of 2 differ only by quotes."""
    return f" (got {type(value).__name__})"


def expect_bool(value: Any, field: str, problems: Problems) -> bool:
    if isinstance(value, bool):
        return True
    problems.add(field, value, "True or False" + _got(value), f"write True or False, not {value!r}")
    return False


def expect_int(
    value: Any, field: str, problems: Problems, *, minimum: int | None = None, maximum: int | None = None
) -> bool:
    """A whole number (True/False and 2.0 are refused: either is a mistake that reaches the template)."""
    bounds = _bounds(minimum, maximum)
    if isinstance(value, bool) or not isinstance(value, int):
        problems.add(
            field, value, f"a whole number{bounds}" + _got(value), "write an int such as 2, without quotes or .0"
        )
        return False
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        problems.add(field, value, f"a whole number{bounds}", f"use a value{bounds}")
        return False
    return True


def expect_number(value: Any, field: str, problems: Problems) -> bool:
    """An int or a float (not True/False, not a string, not NaN)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:  # NaN != NaN
        problems.add(field, value, "a number" + _got(value), "write a number such as 8.0, without quotes")
        return False
    return True


def expect_str(value: Any, field: str, problems: Problems, *, optional: bool = False) -> bool:
    """A non-empty string (or None when ``optional``)."""
    if optional and value is None:
        return True
    if isinstance(value, str) and value:
        return True
    allowed = "a non-empty string" + (" or None" if optional else "")
    if value is None:
        fix = "quote the value you mean (None is not allowed here)"
    else:
        fix = f"quote the value: {str(value)!r}" if value != "" else "give a value"
    problems.add(field, value, allowed + _got(value), fix)
    return False


def expect_enum(value: Any, enum_type: type[Enum], field: str, problems: Problems) -> bool:
    if isinstance(value, enum_type):
        return True
    names = [f"{enum_type.__name__}.{m.name}" for m in enum_type]
    members = ", ".join(names) if len(names) <= 6 else f"{', '.join(names[:3])} ... ({len(names)} members)"
    match = next((m for m in enum_type if value in (m.value, m.name) or str(value).upper() == m.name), None)
    fix = f"use {enum_type.__name__}.{match.name}, not the string" if match else f"use one of {members}"
    problems.add(field, value, f"one of {members}" + _got(value), fix)
    return False


def expect_duration(value: Any, field: str, problems: Problems) -> bool:
    if isinstance(value, Duration):
        return True
    example = f"Duration.minutes({value})" if isinstance(value, int) and not isinstance(value, bool) else None
    problems.add(
        field,
        value,
        "an aws_cdk.Duration" + _got(value),
        f"write {example or 'Duration.minutes(20)'} (a bare number has no unit)",
    )
    return False


def expect_str_list(value: Any, field: str, problems: Problems, *, optional: bool = False) -> bool:
    """A list or tuple of strings. A lone string is never taken as a list: iterated, it would be read
    letter by letter."""
    if optional and value is None:
        return True
    if isinstance(value, str):
        problems.add(field, value, "a list of strings" + _got(value), f"wrap it in a list: [{value!r}]")
        return False
    if not isinstance(value, Sequence) or isinstance(value, bytes):
        problems.add(field, value, "a list of strings" + _got(value), "pass a list such as ['a', 'b']")
        return False
    for index, item in enumerate(value):
        if not isinstance(item, str) or not item:
            problems.add(
                f"{field}[{index}]", item, "a list of non-empty strings" + _got(item), "quote every item of the list"
            )
            return False
    return True


def expect_str_map(value: Any, field: str, problems: Problems) -> bool:
    """A mapping of strings to strings (labels, tags)."""
    if not isinstance(value, Mapping):
        problems.add(field, value, "a dict of strings to strings" + _got(value), "pass a dict such as {'team': 'ml'}")
        return False
    wrong = [(k, v) for k, v in value.items() if not isinstance(k, str) or not isinstance(v, str)]
    if wrong:
        key, item = wrong[0]
        problems.add(
            f"{field}[{key!r}]", item, "string keys and string values" + _got(item), f"quote the value: {str(item)!r}"
        )
        return False
    return True


def expect_instance(value: Any, kinds: type | tuple[type, ...], field: str, problems: Problems, *, fix: str) -> bool:
    """An object of one of ``kinds`` (props classes, constructs); ``fix`` says how to make one."""
    if isinstance(value, kinds):
        return True
    names = " or ".join(k.__name__ for k in (kinds if isinstance(kinds, tuple) else (kinds,)))
    problems.add(field, value, f"an object of type {names}" + _got(value), fix)
    return False


def expect_list_of(items: Any, kind: type, field: str, problems: Problems) -> bool:
    """A list of props objects of one kind (a lone props object, or a string, is not a list)."""
    if isinstance(items, str) or not isinstance(items, Sequence):
        problems.add(
            field, items, f"a list of {kind.__name__}" + _got(items), f"wrap it in a list: [{kind.__name__}(...)]"
        )
        return False
    results = [
        expect_instance(item, kind, f"{field}[{index}]", problems, fix=f"pass a {kind.__name__}(...)")
        for index, item in enumerate(items)
    ]
    return all(results)


def expect_vpc(value: Any, field: str, problems: Problems) -> bool:
    """An aws_ec2 VPC (jsii interfaces cannot be isinstance-checked, so its shape is)."""
    if hasattr(value, "select_subnets") and hasattr(value, "vpc_id"):
        return True
    problems.add(field, value, "an aws_ec2 VPC (IVpc)" + _got(value), "pass MlVpc(...).vpc or ec2.Vpc.from_lookup(...)")
    return False


def expect_all(*results: bool) -> bool:
    """Every guard ran (each added its own problem); True when all passed."""
    return all(results)


def _bounds(minimum: int | None, maximum: int | None) -> str:
    if minimum is not None and maximum is not None:
        return f" from {minimum} to {maximum}"
    if minimum is not None:
        return f" of at least {minimum}"
    if maximum is not None:
        return f" of at most {maximum}"
    return ""
