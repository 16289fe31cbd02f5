"""Every kind of cluster the Prometheus rules can be made for, described without building a cluster.

Each variant satisfies eks_ml.observability.rule_scope.RuleScope, so rule_groups() gives exactly the rules
the add-on would deploy for such a cluster (the synthesized stacks' rules are checked too, in
tests/test_prometheus_rules.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from eks_ml.inference.slo import ServiceLevelObjective

SERVICE = "chat"  # the model service of the inference variants


@dataclass(frozen=True)
class Variant:
    name: str
    workload: str
    namespace: str
    nvidia: bool
    neuron: bool
    efa: bool
    instance_types: tuple[str, ...]
    service_objectives: tuple[tuple[str, ServiceLevelObjective], ...] = ()


_SLO = ((SERVICE, ServiceLevelObjective()),)
VARIANTS = (
    Variant("training-nvidia", "training", "training", True, False, False, ("p5.48xlarge",)),
    Variant("training-neuron", "training", "training", False, True, False, ("trn1.32xlarge",)),
    Variant("training-efa", "training", "training", True, False, True, ("p5.48xlarge",)),
    Variant("inference-nvidia", "inference", "inference", True, False, False, ("g6e.xlarge",), _SLO),
    Variant("inference-neuron", "inference", "inference", False, True, False, ("inf2.xlarge",), _SLO),
)
