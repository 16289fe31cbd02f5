"""``x-kubernetes-validations`` (CEL) rules of a CRD schema, evaluated the way the API server does on create.

Each rule runs at its schema location with ``self`` bound to the value there, and only where that value
is present (a rule on an optional field that is not set does not run); rules under ``items`` run once per
list element and under ``additionalProperties`` once per map value. A rule that reads ``oldSelf`` is a
transition rule: on create there is no old object, so the API server does not run it, and neither do we
(they are counted). A rule that does not compile, calls a function we do not provide or errors at run time
is a problem, exactly as the API server would reject the object; only rules listed in :data:`UNSUPPORTED`
with a reason would be skipped, and that list is empty.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import celpy
import lark
from celpy import celtypes
from celpy.adapter import json_to_cel
from celpy.celparser import CELParseError
from celpy.evaluation import CELEvalError, base_functions

from .k8s_cel import FUNCTIONS

_ENV = celpy.Environment()
# Standard CEL that cel-python provides: its base functions plus the macros it expands itself.
MACROS = frozenset({"has", "all", "exists", "exists_one", "map", "filter"})
STANDARD = frozenset(base_functions) | MACROS
# Rule text -> why it cannot be evaluated here. Anything added needs a reason a reviewer can check.
UNSUPPORTED: dict[str, str] = {}


@dataclass
class CelStats:
    """What CEL did over a run: rules evaluated, transition rules not applicable, unsupported skipped."""

    evaluated: int = 0
    failed: int = 0
    transition: dict[str, int] = field(default_factory=dict)  # rule -> times it was not applicable
    unsupported: dict[str, int] = field(default_factory=dict)  # rule -> times it was skipped

    def summary(self) -> str:
        """One line for a report: how many rules ran, failed, and were not applicable or unsupported."""
        return (
            f"CEL: {self.evaluated} rule evaluations, {self.failed} failed, "
            f"{sum(self.transition.values())} transition (oldSelf) rules not applicable on create "
            f"({len(self.transition)} distinct), {sum(self.unsupported.values())} unsupported skipped"
        )

    def add(self, other: CelStats) -> None:
        self.evaluated += other.evaluated
        self.failed += other.failed
        for mine, theirs in ((self.transition, other.transition), (self.unsupported, other.unsupported)):
            for rule, times in theirs.items():
                mine[rule] = mine.get(rule, 0) + times


@functools.cache
def parsed(rule: str) -> lark.Tree[lark.Token]:
    """The rule's syntax tree (raises CELParseError when it does not compile)."""
    return _ENV.compile(rule)


@functools.cache
def _program(rule: str) -> celpy.Runner:
    return _ENV.program(parsed(rule), functions=FUNCTIONS)


def called_functions(rule: str) -> set[str]:
    """Names of the functions and macros a rule calls, as ``f(x)``, ``x.f()`` or ``.f()``."""
    names: set[str] = set()
    for node in parsed(rule).iter_subtrees():
        if node.data in ("member_dot_arg", "ident_arg", "dot_ident_arg"):
            names.update(str(child) for child in node.children if isinstance(child, lark.Token))
    return names


def is_transition(rule: str) -> bool:
    """True when the rule reads ``oldSelf`` (a variable, not text inside a string literal)."""
    return any(node.data == "ident" and str(node.children[0]) == "oldSelf" for node in parsed(rule).iter_subtrees())


def rule_sites(schema: dict[str, Any], value: Any, path: str = "") -> Iterator[tuple[dict[str, Any], Any, str]]:
    """(rule, value, path) for every rule of ``schema`` whose location holds a value in ``value``."""
    if value is None:
        return
    for rule in schema.get("x-kubernetes-validations", ()):
        yield rule, value, path or "<root>"
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            sub = properties.get(key, extra if isinstance(extra, dict) else None)
            if sub is not None:
                yield from rule_sites(sub, item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            yield from rule_sites(schema["items"], item, f"{path}[{index}]")


def _evaluate(rule: str, value: Any) -> Any:
    try:
        return _program(rule).evaluate({"self": value})
    except CELEvalError as error:  # cel-python raises some evaluation errors and returns others
        return error


def _failure(rule: dict[str, Any]) -> str:
    """The rule's message as the API server reports it; no pinned CRD uses messageExpression."""
    return str(rule.get("message") or f"failed rule: {rule['rule']}")


def check(schema: dict[str, Any], obj: dict[str, Any]) -> tuple[list[str], CelStats]:
    """Problems that the schema's CEL rules find in ``obj`` (already defaulted), and what was evaluated."""
    problems: list[str] = []
    stats = CelStats()
    for rule, value, path in rule_sites(schema, json_to_cel(obj)):
        text = rule["rule"]
        if text in UNSUPPORTED:
            stats.unsupported[text] = stats.unsupported.get(text, 0) + 1
            continue
        try:
            if is_transition(text):
                stats.transition[text] = stats.transition.get(text, 0) + 1
                continue
        except CELParseError as error:
            problems.append(f"{path}: rule {text!r} does not compile: {error}")
            stats.failed += 1
            continue
        stats.evaluated += 1
        result = _evaluate(text, value)
        if isinstance(result, celtypes.BoolType) and bool(result):
            continue
        stats.failed += 1
        where = f"{path}{rule['fieldPath']}" if rule.get("fieldPath") else path
        if isinstance(result, celtypes.BoolType):
            problems.append(f"{where}: {_failure(rule)}")
        else:
            problems.append(f"{where}: rule {text!r} did not evaluate to true or false: {result!r}")
    return problems, stats
