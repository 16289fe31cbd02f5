"""What the API server does with a CRD's structural schema before it validates an object.

Two behaviours matter for validating objects at synth time:

- pruning: a field the schema does not declare is dropped on write (or rejected with strict field
  validation), so every object without ``x-kubernetes-preserve-unknown-fields`` is treated as closed;
- defaulting: ``default`` values are filled in before validation, so the schema and the CEL rules see
  them (Kueue's ``whenCanBorrow``, for example, is read by a rule whether or not we set it).
"""

from __future__ import annotations

import copy
from typing import Any


def closed(schema: Any) -> Any:
    """A copy of ``schema`` in which every object that declares properties allows no others."""
    if isinstance(schema, dict):
        schema = {key: closed(value) for key, value in schema.items()}
        if (
            schema.get("type") == "object"
            and "properties" in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
            and "additionalProperties" not in schema
        ):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [closed(item) for item in schema]
    return schema


def defaulted(schema: dict[str, Any], value: Any) -> Any:
    """A copy of ``value`` with the schema's defaults applied, recursively (into defaulted values too)."""
    if isinstance(value, dict):
        result = dict(value)
        properties = schema.get("properties", {})
        for key, sub in properties.items():
            # A null where the schema does not allow one is pruned first, then defaulted.
            missing = key not in result or (result[key] is None and not sub.get("nullable"))
            if missing and "default" in sub:
                result[key] = copy.deepcopy(sub["default"])
        extra = schema.get("additionalProperties")
        for key, item in result.items():
            sub = properties.get(key, extra if isinstance(extra, dict) else None)
            if sub is not None:
                result[key] = defaulted(sub, item)
        return result
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [defaulted(schema["items"], item) for item in value]
    return value
