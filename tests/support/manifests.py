"""Validation of every Kubernetes object eks-ml emits.

Built-in kinds are checked with kubernetes-validate in strict mode (unknown fields fail). Custom kinds
are checked the way the API server admits them, against the CRDs the pinned Helm charts install
(:mod:`.crds`): schema defaults applied, the structural schema with every object that does not say
x-kubernetes-preserve-unknown-fields treated as closed (the server prunes unknown fields), then the
schema's CEL rules (:mod:`.cel_rules`). A kind known to neither fails.

Custom kinds need the chart cache; tests that validate them carry :data:`requires_chart_cache`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import warnings
from collections.abc import Iterable
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from . import cel_rules, charts, crds, structural
from .synth import joined

KUBERNETES_VERSION = "1.35.0"  # the default cluster version's API

# Where there are no pinned charts (a fresh clone offline), custom kinds cannot be validated: skip.
requires_chart_cache = pytest.mark.skipif(not charts.chart_cache_available(), reason=charts.HOW_TO_ENABLE)


@functools.cache
def _schema_validator(api_version: str, kind: str) -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(structural.closed(crds.served_schemas()[(api_version, kind)]))


def _validate_custom(obj: dict[str, Any], name: str, stats: cel_rules.CelStats | None) -> list[str]:
    key = (obj.get("apiVersion", ""), obj.get("kind", ""))
    schema = crds.served_schemas().get(key)
    if schema is None:
        return [f"{name}: {key} is not a known built-in kind nor a CRD of the pinned charts"]
    admitted = structural.defaulted(schema, obj)
    problems = [
        f"{name}: {'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in _schema_validator(*key).iter_errors(admitted)
    ]
    cel_problems, cel_stats = cel_rules.check(schema, admitted)
    if stats is not None:
        stats.add(cel_stats)
    return problems + [f"{name}: {problem}" for problem in cel_problems]


def validate_object(obj: dict[str, Any], stats: cel_rules.CelStats | None = None) -> list[str]:
    """Problems with one Kubernetes object; empty when it is valid. CEL counts are added to ``stats``.

    Without ``stats`` an object equal to one validated earlier in this process gets that answer again: the
    app variants and examples apply many of the same objects (a chart with the same values renders the same
    ones, CRDs of hundreds of KB included), and validation is a function of the object alone."""
    if stats is not None:
        return _validate_object(obj, stats)
    try:
        key = hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()
    except (TypeError, ValueError):  # not plain JSON (a YAML timestamp...): validate it every time
        return _validate_object(obj, None)
    if key not in _VALIDATED:
        _VALIDATED[key] = tuple(_validate_object(obj, None))
    return list(_VALIDATED[key])


_VALIDATED: dict[str, tuple[str, ...]] = {}


def _validate_object(obj: dict[str, Any], stats: cel_rules.CelStats | None) -> list[str]:
    name = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
    key = (obj.get("apiVersion", ""), obj.get("kind", ""))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            return [f"{name}: {'/'.join(map(str, error.path))}: {error.message}"]
        except kubernetes_validate.SchemaNotFoundError:
            return _validate_custom(obj, name, stats)  # not a built-in kind
        except kubernetes_validate.InvalidSchemaError as error:
            return [f"{name}: no schema for {key}: {error}"]
    if caught:  # some kubernetes-validate versions pass an unknown kind with only a warning
        return _validate_custom(obj, name, stats)
    return []


def validate_objects(objects: Iterable[dict[str, Any]], stats: cel_rules.CelStats | None = None) -> list[str]:
    return [problem for obj in objects for problem in validate_object(obj, stats)]


def applied_objects(template: dict[str, Any]) -> list[dict[str, Any]]:
    """Every Kubernetes object a template applies through the kubectl provider (cdk8s charts and raw
    manifests). CDK tokens inside a manifest (file system ids, regions) become the string "TOKEN": the
    schemas check structure, and every token here resolves to a string at deploy time."""
    objects: list[dict[str, Any]] = []
    for resource in template.get("Resources", {}).values():
        if resource["Type"] != "Custom::AWSCDK-EKS-KubernetesResource":
            continue
        objects.extend(json.loads(joined(resource["Properties"]["Manifest"])))
    return objects
