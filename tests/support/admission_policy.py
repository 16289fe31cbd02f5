"""A ValidatingAdmissionPolicy evaluated on an admission request the way the API server does.

For one request: the policy's matchConstraints (resource rules: group, version, resource, operation), then
every matchCondition (all true, or the policy does not apply), then its variables in order (each may read
the earlier ones as ``variables.<name>``), then each validation; the first that is false (or errors, with
failurePolicy Fail) denies. CEL is cel-python with the Kubernetes extension functions of
:mod:`.k8s_cel`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import celpy
from celpy import celtypes
from celpy.adapter import json_to_cel
from celpy.evaluation import CELEvalError

from .k8s_cel import FUNCTIONS

_ENV = celpy.Environment()


@dataclass(frozen=True)
class Decision:
    applies: bool  # matched the resource rules and every match condition
    denied_by: str | None  # the message of the first failing validation, None when allowed

    @property
    def allowed(self) -> bool:
        return self.denied_by is None


def _run(expression: str, activation: Mapping[str, Any]) -> Any:
    """The value, or the CELEvalError the API server would see (cel-python returns some, raises others)."""
    try:
        return _ENV.program(_ENV.compile(expression), functions=FUNCTIONS).evaluate(dict(activation))
    except CELEvalError as error:
        return error


def _matches_rules(spec: Mapping[str, Any], request: Mapping[str, Any]) -> bool:
    kind, resource = request["kind"], request["resource"]
    for rule in spec.get("matchConstraints", {}).get("resourceRules", []):
        if (
            kind["group"] in rule["apiGroups"]
            and kind["version"] in rule["apiVersions"]
            and resource["resource"] in rule["resources"]
            and request["operation"] in rule["operations"]
            and not request.get("subResource")
        ):
            return True
    return False


def evaluate(policy: Mapping[str, Any], request: Mapping[str, Any]) -> Decision:
    """``request`` is an AdmissionRequest (kind, resource, operation, userInfo, object, oldObject)."""
    spec = policy["spec"]
    if not _matches_rules(spec, request):
        return Decision(applies=False, denied_by=None)
    activation: dict[str, Any] = {
        "request": json_to_cel(dict(request)),
        "object": json_to_cel(request.get("object")),
        "oldObject": json_to_cel(request.get("oldObject")),
    }
    fail_closed = spec.get("failurePolicy", "Fail") == "Fail"
    for condition in spec.get("matchConditions", []):
        result = _run(condition["expression"], activation)
        if isinstance(result, CELEvalError):
            if fail_closed:
                return Decision(applies=True, denied_by=f"match condition {condition['name']}: {result}")
            return Decision(applies=False, denied_by=None)
        if not result:
            return Decision(applies=False, denied_by=None)
    variables: dict[str, Any] = {}
    for variable in spec.get("variables", []):
        activation["variables"] = celtypes.MapType(variables)
        variables[celtypes.StringType(variable["name"])] = _run(variable["expression"], activation)
    activation["variables"] = celtypes.MapType(variables)
    for validation in spec.get("validations", []):
        result = _run(validation["expression"], activation)
        if isinstance(result, CELEvalError):
            if fail_closed:
                return Decision(applies=True, denied_by=f"{validation['message']} (error: {result})")
            continue
        if not (isinstance(result, celtypes.BoolType) and bool(result)):
            return Decision(applies=True, denied_by=validation["message"])
    return Decision(applies=True, denied_by=None)
