"""Scheduling fields shared by eks-ml's pod templates."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from cdk8s_plus_35 import k8s


def tolerations(taints: Sequence[Mapping[str, str]]) -> list[k8s.Toleration]:
    """The tolerations of a pool's or node group's taint dicts (key, operator, effect), in their order."""
    return [k8s.Toleration(key=t["key"], operator=t["operator"], effect=t["effect"]) for t in taints]
