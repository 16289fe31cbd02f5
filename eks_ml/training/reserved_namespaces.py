"""Namespaces no team may take: Kubernetes' own, and those eks-ml's releases and charts install into. A team's
namespace gets the team's LocalQueue and Pod Security labels, and its jobs would run beside (and be able to
reach the service accounts of) the controllers there."""

from __future__ import annotations

from .. import helm
from ..k8s.neuron_monitor import NAMESPACE as NEURON_MONITOR_NAMESPACE
from ..kube_names import RESERVED_NAMESPACE_PREFIX
from .burn_in import NAMESPACE as BURN_IN_NAMESPACE

# kube-* are refused already, by eks_ml.kube_names.check_namespace.
KUBERNETES_NAMESPACES = ("default",)


def reserved_namespaces() -> list[str]:
    """Sorted: ``default``, every pinned Helm release's namespace (all of eks_ml.helm's pins, so a new release is
    covered without a change here), the observability add-on's, the burn-in's and neuron-monitor's."""
    releases = {pin.namespace for pin in vars(helm).values() if isinstance(pin, helm.HelmChartPin)}
    names = {
        *KUBERNETES_NAMESPACES,
        *releases,
        *helm.RELEASE_NAMESPACES,
        helm.OBSERVABILITY_NAMESPACE,
        BURN_IN_NAMESPACE,
        NEURON_MONITOR_NAMESPACE,
    }
    return sorted(name for name in names if not name.startswith(RESERVED_NAMESPACE_PREFIX))
