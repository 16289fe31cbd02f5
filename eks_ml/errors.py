"""User-facing validation errors.

Every rule eks-ml knows is checked at synth time and reported as a ``ValidationError`` that names the
field, the value, what is allowed and how to fix it. Several problems found in one configuration are
reported together, so a user fixes them in one pass instead of one synth per mistake.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Problem:
    """One broken rule: which field, the offending value, what is allowed, and the fix."""

    field: str
    value: Any
    allowed: str
    fix: str

    def __str__(self) -> str:
        return f"{self.field}={self.value!r}: allowed {self.allowed}. Fix: {self.fix}"


class ValidationError(ValueError):
    """Raised at synth for invalid input. ``problems`` lists every broken rule found."""

    def __init__(self, problems: list[Problem]) -> None:
        if not problems:
            raise ValueError("ValidationError needs at least one problem")
        self.problems: tuple[Problem, ...] = tuple(problems)
        if len(problems) == 1:
            message = str(problems[0])
        else:
            lines = "\n".join(f"  - {p}" for p in problems)
            message = f"{len(problems)} problems:\n{lines}"
        super().__init__(message)

    @classmethod
    def single(cls, field: str, value: Any, allowed: str, fix: str) -> ValidationError:
        return cls([Problem(field, value, allowed, fix)])

    def __iter__(self) -> Iterator[Problem]:
        return iter(self.problems)


@dataclass
class Problems:
    """Collects problems while a whole configuration is checked, then raises them together."""

    found: list[Problem] = field(default_factory=list)

    def add(self, field: str, value: Any, allowed: str, fix: str) -> None:
        self.found.append(Problem(field, value, allowed, fix))

    def extend(self, error: ValidationError) -> None:
        self.found.extend(error.problems)

    @contextmanager
    def collecting(self) -> Iterator[None]:
        """Run a check that raises ValidationError, keeping its problems with the others."""
        try:
            yield
        except ValidationError as error:
            self.extend(error)

    def raise_if_any(self) -> None:
        if self.found:
            raise ValidationError(list(self.found))
