"""What the Prometheus rules read about a cluster: the part of ObservedCluster that decides which alerts
exist. A Protocol, so the rule tests can describe every cluster variant without building a cluster."""

from __future__ import annotations

from typing import Protocol

from ..inference.slo import ServiceLevelObjective


class RuleScope(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def workload(self) -> str: ...

    @property
    def namespace(self) -> str: ...

    @property
    def nvidia(self) -> bool: ...

    @property
    def neuron(self) -> bool: ...

    @property
    def efa(self) -> bool: ...

    @property
    def instance_types(self) -> tuple[str, ...]: ...

    @property
    def service_objectives(self) -> tuple[tuple[str, ServiceLevelObjective], ...]: ...
