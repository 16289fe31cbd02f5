"""A small evaluator of Kubernetes NetworkPolicy semantics over generated objects, for tests.

It answers "may this connection happen?" the way the API's documented semantics say: a pod is isolated
for a direction when some policy of its namespace selects it with that policy type; an isolated pod
accepts a connection when any rule of any selecting policy matches the peer and the port (allow rules
add up, nothing denies). ipBlocks are matched on the peer's address whether or not the peer is a pod, as
an IP-based enforcer (the VPC CNI's eBPF agent) does. Only the selector forms eks-ml emits (matchLabels)
are understood; anything else raises, so the evaluator never guesses.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


@dataclass(frozen=True)
class Endpoint:
    """One end of a connection: a pod (namespace and labels) or an address outside the cluster."""

    ip: str
    namespace: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_pod(self) -> bool:
        return self.namespace is not None


def _selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    if selector is None:
        return True
    unknown = set(selector) - {"matchLabels"}
    if unknown:
        raise NotImplementedError(f"selector fields {sorted(unknown)} are not evaluated")
    return all(labels.get(key) == value for key, value in selector.get("matchLabels", {}).items())


def _peer_matches(peer: Mapping[str, Any], other: Endpoint, policy_namespace: str) -> bool:
    if "ipBlock" in peer:
        address = ipaddress.ip_address(other.ip)
        block = peer["ipBlock"]
        return address in ipaddress.ip_network(block["cidr"]) and not any(
            address in ipaddress.ip_network(excluded) for excluded in block.get("except", [])
        )
    if not other.is_pod:
        return False
    assert other.namespace is not None
    if "namespaceSelector" in peer:
        namespace_labels = {NAMESPACE_NAME_LABEL: other.namespace}
        if not _selects(peer["namespaceSelector"], namespace_labels):
            return False
    elif other.namespace != policy_namespace:
        return False  # a podSelector alone means pods of the policy's own namespace
    return _selects(peer.get("podSelector"), other.labels)


def _port_matches(ports: list[Mapping[str, Any]] | None, port: int, protocol: str) -> bool:
    if not ports:
        return True
    return any(p.get("protocol", "TCP") == protocol and p.get("port") in (None, port) for p in ports)


def _policies(objects: Iterable[Mapping[str, Any]], pod: Endpoint, direction: str) -> list[Mapping[str, Any]]:
    return [
        obj
        for obj in objects
        if obj.get("kind") == "NetworkPolicy"
        and obj["metadata"].get("namespace") == pod.namespace
        and direction in obj["spec"].get("policyTypes", ["Ingress"])
        and _selects(obj["spec"].get("podSelector") or None, pod.labels)
    ]


def allows(
    objects: Iterable[Mapping[str, Any]], *, source: Endpoint, target: Endpoint, port: int, protocol: str = "TCP"
) -> bool:
    """Whether ``source`` may open a connection to ``target``'s ``port``: the source's egress policies and
    the target's ingress policies must both let it through (only pods have policies)."""
    objects = list(objects)
    return _direction_allows(objects, source, target, port, protocol, "Egress") and _direction_allows(
        objects, target, source, port, protocol, "Ingress"
    )


def _direction_allows(
    objects: list[Mapping[str, Any]], pod: Endpoint, other: Endpoint, port: int, protocol: str, direction: str
) -> bool:
    if not pod.is_pod:
        return True
    assert pod.namespace is not None
    selecting = _policies(objects, pod, direction)
    if not selecting:
        return True  # not isolated in this direction
    key, peers_key = ("egress", "to") if direction == "Egress" else ("ingress", "from")
    for policy in selecting:
        for rule in policy["spec"].get(key) or []:
            peers = rule.get(peers_key)
            if (not peers or any(_peer_matches(p, other, pod.namespace) for p in peers)) and _port_matches(
                rule.get("ports"), port, protocol
            ):
                return True
    return False
