"""A Helm release's values split by when they are known: at synth, or only at deploy (CDK tokens such as a
VPC id or a queue name). The stack passes both to Helm; the GitOps export writes the first and takes the
second from a ConfigMap the stack applies (:func:`deploy_values_name`), so both install the same values."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._tokens import is_unresolved

DEPLOY_VALUES_KEY = "values.yaml"
# On the ConfigMap: it bridges the stack and a GitOps install, it is not one of the cluster's own objects.
DEPLOY_VALUES_LABEL = {"app.kubernetes.io/component": "deploy-time-helm-values"}


def split_deploy_time(values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(known at synth, known only at deploy). A list holding a token goes whole to the second part: Helm
    replaces lists rather than merging them."""
    known: dict[str, Any] = {}
    deploy_time: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, Mapping):
            inner_known, inner_deploy = split_deploy_time(value)
            if inner_known or not inner_deploy:
                known[key] = inner_known
            if inner_deploy:
                deploy_time[key] = inner_deploy
        elif _has_token(value):
            deploy_time[key] = value
        else:
            known[key] = value
    return known, deploy_time


def _has_token(value: Any) -> bool:
    if isinstance(value, str | float):  # CDK encodes number tokens as special floats
        return is_unresolved(value)
    if isinstance(value, list | tuple):
        return any(_has_token(item) for item in value)
    return False


def deploy_values_name(release: str) -> str:
    return f"{release}-deploy-values"
