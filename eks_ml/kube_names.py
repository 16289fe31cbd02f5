"""Kubernetes naming rules, checked at synth instead of by the API server (or a CRD's CEL rule) at deploy.

Rules from the Kubernetes API conventions (apimachinery validation): a DNS-1123 label is at most 63
lowercase alphanumerics or '-', starting and ending alphanumeric; a DNS-1123 subdomain is at most 253
characters of dot-separated labels; a label key is an optional DNS subdomain prefix and '/', then a name of
at most 63 characters ([A-Za-z0-9] at both ends, '-', '_' and '.' inside); a label value is empty or such a
name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from .errors import Problems

DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN_MAX = 253
LABEL_NAME_MAX = 63
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
# Label domains users may not set on nodes: Kubernetes' own (the NodeRestriction admission plugin and the
# kubelet refuse most of them), Karpenter's (its NodePool CRD's CEL rules: "label domain ... is
# restricted"), EKS's, and eks-ml's own (it sets them, and placement relies on them).
RESERVED_LABEL_DOMAINS = (
    "kubernetes.io",
    "k8s.io",
    "karpenter.sh",
    "karpenter.k8s.aws",
    "eks.amazonaws.com",
    "eks-ml.io",
)
# Namespaces of the control plane; workloads placed there share its privileges and quotas.
RESERVED_NAMESPACE_PREFIX = "kube-"


def check_dns_label(name: str, field: str, problems: Problems, *, max_length: int = DNS1123_LABEL_MAX) -> bool:
    """A DNS-1123 label (names of namespaces, Services, node pools), at most ``max_length`` characters
    (less than 63 where eks-ml appends a suffix to the name)."""
    if len(name) <= max_length and _DNS1123_LABEL.match(name):
        return True
    problems.add(
        field,
        name,
        f"a DNS-1123 label: 1-{max_length} lowercase letters, digits or '-', starting and ending with a letter "
        "or digit",
        f"rename it, e.g. {_suggest(name, max_length)!r}",
    )
    return False


def check_dns_subdomain(name: str, field: str, problems: Problems) -> bool:
    """A DNS-1123 subdomain (names of claims, Secrets, ConfigMaps)."""
    if len(name) <= DNS1123_SUBDOMAIN_MAX and _DNS1123_SUBDOMAIN.match(name):
        return True
    problems.add(
        field,
        name,
        "a DNS-1123 subdomain: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit",
        f"rename it, e.g. {_suggest(name, DNS1123_LABEL_MAX)!r}",
    )
    return False


def check_namespace(name: str, field: str, problems: Problems) -> bool:
    if not check_dns_label(name, field, problems):
        return False
    if name.startswith(RESERVED_NAMESPACE_PREFIX):
        problems.add(
            field, name, "a namespace outside kube-* (reserved for the control plane)", "use your own, e.g. training"
        )
        return False
    return True


def label_key_problem(key: str) -> str | None:
    """Why ``key`` is not a valid label key, or None."""
    prefix, slash, name = key.rpartition("/")
    if slash and (len(prefix) > DNS1123_SUBDOMAIN_MAX or not _DNS1123_SUBDOMAIN.match(prefix)):
        return "its prefix is not a DNS subdomain"
    if len(name) > LABEL_NAME_MAX or not _LABEL_NAME.match(name):
        return f"its name is not 1-{LABEL_NAME_MAX} letters, digits, '-', '_' or '.' starting and ending alphanumeric"
    return None


def reserved_domain(key: str) -> str | None:
    """The reserved domain a label key's prefix belongs to (the prefix is or ends with it), or None."""
    prefix, slash, _ = key.rpartition("/")
    if not slash:
        return None
    return next((d for d in RESERVED_LABEL_DOMAINS if prefix == d or prefix.endswith("." + d)), None)


def check_labels(labels: Mapping[str, str], field: str, problems: Problems) -> None:
    """User-given node labels: valid keys outside the reserved domains, valid values."""
    for key, value in labels.items():
        why = label_key_problem(key)
        if why is not None:
            problems.add(
                f"{field}[{key!r}]", key, f"a Kubernetes label key ({why})", "use a key such as example.com/team"
            )
        elif (domain := reserved_domain(key)) is not None:
            problems.add(
                f"{field}[{key!r}]",
                key,
                f"a label key outside the reserved domains ({', '.join(RESERVED_LABEL_DOMAINS)}); {domain} is "
                "set by Kubernetes, Karpenter, EKS or eks-ml",
                "use your own prefix, e.g. example.com/team",
            )
        if value and (len(value) > LABEL_NAME_MAX or not _LABEL_NAME.match(value)):
            problems.add(
                f"{field}[{key!r}]",
                value,
                f"a label value: empty or 1-{LABEL_NAME_MAX} letters, digits, '-', '_' or '.', starting and ending "
                "alphanumeric",
                f"use e.g. {_suggest(value, LABEL_NAME_MAX)!r}",
            )


def _suggest(name: str, max_length: int) -> str:
    """A valid name close to ``name``, for the fix text."""
    cleaned = re.sub(r"[^a-z0-9-]+", "-", name.lower())[:max_length].strip("-")
    return cleaned or "my-name"
