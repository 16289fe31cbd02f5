"""Validation of every Kubernetes object eks-ml emits.

Built-in kinds are checked with kubernetes-validate in strict mode (unknown fields fail). Custom kinds
are checked against the pinned upstream CRD schemas in ../shared/crds, with every object that does not
say x-kubernetes-preserve-unknown-fields treated as closed, the way the API server prunes. A kind
known to neither fails: kubernetes-validate alone would let it through with a warning.
"""

from __future__ import annotations

import copy
import functools
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

from .synth import SHARED, joined

CRD_DIR = SHARED / "crds"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml parses the large CRDs ~10x faster
KUBERNETES_VERSION = "1.35.0"  # the default cluster version's API


def _closed(schema: Any) -> Any:
    if isinstance(schema, dict):
        schema = {key: _closed(value) for key, value in schema.items()}
        if (
            schema.get("type") == "object"
            and "properties" in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
            and "additionalProperties" not in schema
        ):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [_closed(item) for item in schema]
    return schema


@functools.cache
def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> closed openAPIV3Schema, for every served version of every pinned CRD."""
    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(Path(CRD_DIR).glob("*.yaml")):
        for crd in yaml.load_all(path.read_text(), Loader=_LOADER):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                if version.get("served", True):
                    schema = copy.deepcopy(version["schema"]["openAPIV3Schema"])
                    schemas[(f"{group}/{version['name']}", kind)] = _closed(schema)
    return schemas


def validate_object(obj: dict[str, Any]) -> list[str]:
    """Problems with one Kubernetes object; empty when it is valid."""
    name = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
    key = (obj.get("apiVersion", ""), obj.get("kind", ""))
    schema = crd_schemas().get(key)
    if schema is not None:
        validator = jsonschema.Draft7Validator(schema)
        return [f"{name}: {'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(obj)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            return [f"{name}: {'/'.join(map(str, error.path))}: {error.message}"]
        except (kubernetes_validate.SchemaNotFoundError, kubernetes_validate.InvalidSchemaError) as error:
            return [f"{name}: no schema for {key}: {error}"]
    if caught:
        return [f"{name}: {key} is not a known built-in kind nor a pinned CRD ({caught[0].message})"]
    return []


def validate_objects(objects: Iterable[dict[str, Any]]) -> list[str]:
    return [problem for obj in objects for problem in validate_object(obj)]


def applied_objects(template: dict[str, Any]) -> list[dict[str, Any]]:
    """Every Kubernetes object a template applies through the kubectl provider (cdk8s charts and raw
    manifests). CDK tokens inside a manifest (file system ids, regions) become the string "TOKEN": the
    schemas check structure, and every token here resolves to a string at deploy time."""
    import json

    objects: list[dict[str, Any]] = []
    for resource in template.get("Resources", {}).values():
        if resource["Type"] != "Custom::AWSCDK-EKS-KubernetesResource":
            continue
        objects.extend(json.loads(joined(resource["Properties"]["Manifest"])))
    return objects
