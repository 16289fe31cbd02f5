"""The Kubernetes CEL extension functions the pinned CRDs' rules call, on top of cel-python's standard CEL.

The API server's CEL environment adds Kubernetes libraries (regex, lists, URLs, quantities, ...) and
cel-go's extension libraries (strings, sets, ...) to standard CEL. Only the functions the rules of the
pinned charts actually call are implemented here; ``tests/test_cel_gate.py`` scans every rule and fails
when a chart bump starts calling one that is neither standard CEL nor listed in :data:`FUNCTIONS`.

Each follows the behaviour documented in "CEL in Kubernetes" and cel-go's ``ext`` package (which the API
server uses), including its Go semantics where Python's would differ. Regular expressions use RE2, the
engine Kubernetes uses (cel-python already depends on google-re2).
"""

from __future__ import annotations

from typing import Any

import re2
from celpy import celtypes
from celpy.evaluation import CELEvalError


def find(text: celtypes.StringType, pattern: celtypes.StringType) -> Any:
    """Kubernetes regex library: ``'abc 123'.find('[0-9]+') == '123'``; no match gives ``''``."""
    try:
        match = re2.search(str(pattern), str(text))
    except re2.error as error:  # the API server reports an invalid pattern as an evaluation error
        return CELEvalError(f"find: invalid regex {str(pattern)!r}", type(error), error.args)
    return celtypes.StringType(match.group(0) if match else "")


def split(text: celtypes.StringType, separator: celtypes.StringType, limit: Any = None) -> Any:
    """cel-go strings extension: ``split(sep)`` is Go's ``strings.Split``, ``split(sep, n)`` its ``SplitN``.

    As in Go: ``n == 0`` gives an empty list, ``n < 0`` every part, ``n > 0`` at most ``n`` parts with the
    rest of the string in the last; an empty separator splits into characters (so ``''`` gives ``[]``).
    """
    count = -1 if limit is None else int(limit)
    if count == 0:
        return celtypes.ListType([])
    value, sep = str(text), str(separator)
    if sep == "":
        parts = list(value)
        if 0 < count < len(parts):
            parts = [*parts[: count - 1], "".join(parts[count - 1 :])]
    else:
        parts = value.split(sep) if count < 0 else value.split(sep, count - 1)
    return celtypes.ListType([celtypes.StringType(part) for part in parts])


# Name -> implementation, as cel-python binds them: ``a.f(b)`` calls ``f(a, b)``.
FUNCTIONS: dict[str, Any] = {"find": find, "split": split}
