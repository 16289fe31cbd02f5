"""The hourly cost of accelerators that jobs or model servers hold but do not use, from the plan's price
table (eks_ml.catalog.prices: On-Demand list prices, dated).

``eksml:accelerator_hourly_price{instance_type, resource}`` is the price of ONE accelerator of each
accelerated instance type the cluster can launch, per extended resource the pods request
(``nvidia.com/gpu``; ``aws.amazon.com/neuron`` per device and ``aws.amazon.com/neuroncore`` per logical
core). Dashboards multiply it with idle accelerators.

GPUs: dcgm-exporter labels each GPU with the namespace and pod it is allocated to, and the scrape adds the
node; kube-state-metrics' ``kube_node_labels{label_node_kubernetes_io_instance_type}`` (allowlisted in
kube_state_metrics_values) gives the node's type. NeuronCores: neuron-monitor 1.3.0 labels its series with
the instance's ``instance_type`` itself but not with the pod that holds a core, so Neuron idle cost is per
instance, not per namespace.
"""

from __future__ import annotations

from typing import Any

from .. import helm
from ..catalog import NEURON_CORE_RESOURCE, NEURON_DEVICE_RESOURCE, NVIDIA_GPU_RESOURCE, lookup
from ..catalog.prices import PRICE_REGION, PRICES_AS_OF, on_demand_price
from .limits import IDLE_MINUTES, IDLE_PERCENT
from .rule_scope import RuleScope

ACCELERATOR_PRICE = "eksml:accelerator_hourly_price"
NODE_INSTANCE_TYPE_LABEL = "label_node_kubernetes_io_instance_type"  # kube_node_labels' name for the node label
COST_ALERT_NAMES = ("IdleGpusCost", "IdleNeuronCoresCost")
PRICE_NOTE = f"On-Demand list price, {PRICE_REGION}, {PRICES_AS_OF}"


def accelerator_prices(instance_types: tuple[str, ...]) -> list[tuple[str, str, float]]:
    """(instance type, extended resource, USD per hour of one) for each priced type; unpriced types are
    left out (the plan says why: Capacity Blocks or not sold in the table's region)."""
    rows: list[tuple[str, str, float]] = []
    for name in instance_types:
        price = on_demand_price(name)
        spec = lookup(name, field="instance_type")
        if price is None:
            continue
        if spec.is_nvidia:
            rows.append((name, NVIDIA_GPU_RESOURCE, price / spec.accelerator_count))
        elif spec.is_neuron:
            rows.append((name, NEURON_DEVICE_RESOURCE, price / spec.accelerator_count))
            rows.append((name, NEURON_CORE_RESOURCE, price / spec.neuron_cores))
    return rows


def _price_records(rows: list[tuple[str, str, float]]) -> list[dict[str, Any]]:
    return [
        {
            "record": ACCELERATOR_PRICE,
            "expr": f"vector({price:.6f})",
            "labels": {"instance_type": instance_type, "resource": resource},
        }
        for instance_type, resource, price in rows
    ]


def _idle_gpus_cost() -> str:
    # Each node's price of one GPU: its instance type from kube_node_labels, joined with the price table.
    node_price = (
        "max by (node) ("
        f'label_replace(kube_node_labels, "instance_type", "$1", "{NODE_INSTANCE_TYPE_LABEL}", "(.+)") '
        f'* on (instance_type) group_left () {ACCELERATOR_PRICE}{{resource="{NVIDIA_GPU_RESOURCE}"}})'
    )
    # GPUs dcgm-exporter attributes to no pod carry the exporter's own namespace (the scrape's label).
    idle = f'DCGM_FI_DEV_GPU_UTIL{{namespace!="{helm.DCGM_EXPORTER.namespace}"}} < {IDLE_PERCENT}'
    return f"sum by (namespace) (count by (namespace, node) ({idle}) * on (node) group_left () {node_price}) > 0"


def _idle_neuron_cores_cost() -> str:
    price = f'{ACCELERATOR_PRICE}{{resource="{NEURON_CORE_RESOURCE}"}}'
    idle = f"neuroncore_utilization_ratio < {IDLE_PERCENT / 100:g}"
    return f"sum by (instance_id, instance_type) (({idle}) * 0 + on (instance_type) group_left () {price}) > 0"


def cost_rules(scope: RuleScope) -> list[dict[str, Any]]:
    rows = accelerator_prices(scope.instance_types)
    if not rows:
        return []
    labels = {"severity": "warning", "cluster": scope.name}
    rules = _price_records(rows)
    if scope.nvidia and any(resource == NVIDIA_GPU_RESOURCE for _, resource, _ in rows):
        rules.append(
            {
                "alert": "IdleGpusCost",
                "expr": _idle_gpus_cost(),
                "for": f"{IDLE_MINUTES}m",
                "labels": labels,
                "annotations": {
                    "summary": (
                        f"GPUs requested in namespace {{{{ $labels.namespace }}}} have been under {IDLE_PERCENT}% busy "
                        f'for {IDLE_MINUTES} minutes: {{{{ $value | printf "%.2f" }}}} USD per hour ({PRICE_NOTE})'
                    )
                },
            }
        )
    if scope.neuron and any(resource == NEURON_CORE_RESOURCE for _, resource, _ in rows):
        rules.append(
            {
                "alert": "IdleNeuronCoresCost",
                "expr": _idle_neuron_cores_cost(),
                "for": f"{IDLE_MINUTES}m",
                "labels": labels,
                "annotations": {
                    "summary": (
                        "NeuronCores held by a runtime on {{ $labels.instance_id }} ({{ $labels.instance_type }}) "
                        f"have been under {IDLE_PERCENT}% busy for {IDLE_MINUTES} minutes: "
                        f'{{{{ $value | printf "%.2f" }}}} USD per hour ({PRICE_NOTE})'
                    )
                },
            }
        )
    return rules
