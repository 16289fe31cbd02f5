"""The CustomResourceDefinitions the pinned Helm charts install.

Every chart of :data:`eks_ml.helm.ALL_CHARTS` is rendered with ``helm template --include-crds``, so the
CRDs come from the exact archives the clusters install: those in a chart's (and its enabled subcharts')
``crds/`` folder, and those a chart ships as templates (Kueue). Versions are never named here: a bump
in the one pin table changes what the tests validate against.
"""

from __future__ import annotations

import functools
from typing import Any

from eks_ml import helm

from . import charts

# The least each chart needs to render at all; everything else stays at the chart's defaults, which is
# also what decides which subcharts (and so which of their CRDs) are enabled.
RENDER_VALUES: dict[str, dict[str, Any]] = {
    "karpenter": {"settings": {"clusterName": "crd-source"}},
    "aws-load-balancer-controller": {"clusterName": "crd-source"},
}


@functools.cache
def crds_by_chart() -> dict[str, tuple[dict[str, Any], ...]]:
    """Chart name -> the CustomResourceDefinitions it installs, for every pinned chart (raises
    FileNotFoundError when a pinned chart's archive cannot be had)."""
    found: dict[str, tuple[dict[str, Any], ...]] = {}
    for pin in helm.ALL_CHARTS:
        rendered = charts.render(pin, RENDER_VALUES.get(pin.chart, {}), include_crds=True)
        found[pin.chart] = tuple(obj for obj in rendered if obj.get("kind") == "CustomResourceDefinition")
    return found


def pinned_crds() -> tuple[dict[str, Any], ...]:
    """Every CustomResourceDefinition of every pinned chart, in pin order."""
    return tuple(crd for found in crds_by_chart().values() for crd in found)


@functools.cache
def served_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> openAPIV3Schema, as the CRD states it, for every served version."""
    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    for crd in pinned_crds():
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if version.get("served", True):
                key = (f"{group}/{version['name']}", kind)
                schema = version["schema"]["openAPIV3Schema"]
                # Two charts may install one CRD (karpenter and karpenter-crd); if they disagree, which
                # one the cluster ends up with depends on install order, so the tests cannot pick one.
                if schemas.setdefault(key, schema) != schema:
                    raise ValueError(f"{key}: pinned charts install different schemas")
    return schemas
