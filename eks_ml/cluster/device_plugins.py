"""Device plugins: what makes a node advertise its GPUs, Neuron devices and EFA interfaces to Kubernetes.

The EKS AL2023 NVIDIA and Neuron AMIs ship drivers but no device plugin: without one, a pod requesting
``nvidia.com/gpu`` or ``aws.amazon.com/neuron`` stays Pending forever. Both cluster kinds install the
plugins their node sources need (EKS Auto Mode nodes bring their own and need none, and so do the inference
cluster's Bottlerocket NVIDIA nodes: eks_ml.inference.node_os).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from aws_cdk import aws_eks_v2 as eks
from constructs import Construct

from .. import helm
from ..catalog import NEURON_DEVICE_RESOURCE, NVIDIA_GPU_RESOURCE, AcceleratorVendor, all_instance_types
from ..k8s.burn_in import startup_toleration
from ..placement import ClusterModel

ACCELERATOR_LABEL = "eks-ml.io/accelerator"  # set on every accelerated node group and NodePool
# Small and steady: a device plugin only lists devices and answers the kubelet's allocation calls.
PLUGIN_RESOURCES = {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}}


def _toleration(key: str) -> dict[str, str]:
    return {"key": key, "operator": "Exists", "effect": "NoSchedule"}


def _only(key: str, operator: str, values: Sequence[str]) -> dict[str, Any]:
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": key, "operator": operator, "values": list(values)}]}
                ]
            }
        }
    }


def nvidia_values(node_selector: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``node_selector`` narrows the plugin to some NVIDIA nodes (the inference cluster's AL2023 ones: its
    Bottlerocket nodes run the plugin as a host service, and a second copy must not run there)."""
    # The chart's default affinity expects Node Feature Discovery labels, which EKS nodes do not carry;
    # select nodes by the label eks-ml puts on every NVIDIA node group and NodePool instead.
    return {
        "affinity": _only(ACCELERATOR_LABEL, "In", [AcceleratorVendor.NVIDIA.value]),
        **({"nodeSelector": dict(node_selector)} if node_selector else {}),
        # The startup taint too: the node advertises its GPUs while its burn-in runs.
        "tolerations": [_toleration(NVIDIA_GPU_RESOURCE), helm.CRITICAL_ADDONS_ONLY, startup_toleration()],
        "resources": PLUGIN_RESOURCES,
    }


def neuron_values() -> dict[str, Any]:
    # Only the device plugin: whole-device requests need no scheduler extension, and the node
    # monitoring agent add-on already reports Neuron hardware errors (no second problem detector).
    neuron_types = sorted(spec.name for spec in all_instance_types() if spec.is_neuron)
    return {
        "devicePlugin": {
            "affinity": _only("node.kubernetes.io/instance-type", "In", neuron_types),
            "nodeSelector": {ACCELERATOR_LABEL: AcceleratorVendor.AWS_NEURON.value},
            # The chart's own tolerations (a list given here replaces them) and the startup taint.
            "tolerations": [*helm.NEURON_PLUGIN_TOLERATIONS, startup_toleration()],
            "resources": PLUGIN_RESOURCES,
        },
        "scheduler": {"enabled": False},
        "npd": {"enabled": False},
    }


def efa_values(instance_types: Collection[str], image_repository: str) -> dict[str, Any]:
    return {
        "image": {"repository": image_repository},
        "supportedInstanceLabels": {"keys": ["node.kubernetes.io/instance-type"], "values": sorted(instance_types)},
        "tolerations": [
            _toleration(NVIDIA_GPU_RESOURCE),
            _toleration(NEURON_DEVICE_RESOURCE),
            startup_toleration(),
        ],
        "resources": PLUGIN_RESOURCES,
    }


def install_device_plugins(
    scope: Construct,
    *,
    cluster: eks.ICluster,
    model: ClusterModel,
    vendors: Collection[AcceleratorVendor],
    efa_instance_types: Collection[str] = (),
    efa_image_repository: str = "",
    nvidia_node_selector: Mapping[str, str] | None = None,
) -> dict[str, eks.HelmChart]:
    """The NVIDIA, Neuron and EFA device plugins the cluster's nodes need, as children of ``scope``:
    name ("nvidia", "neuron", "efa") -> HelmChart, each only when needed. ``vendors``: those whose nodes need
    a plugin of the cluster (not Bottlerocket's NVIDIA nodes, which run their own)."""
    charts: dict[str, eks.HelmChart] = {}
    if AcceleratorVendor.NVIDIA in vendors:
        charts["nvidia"] = helm.install(
            scope,
            "NvidiaDevicePlugin",
            cluster,
            helm.NVIDIA_DEVICE_PLUGIN,
            nvidia_values(nvidia_node_selector),
            model=model,
        )
    if AcceleratorVendor.AWS_NEURON in vendors:
        charts["neuron"] = helm.install(scope, "Neuron", cluster, helm.NEURON, neuron_values(), model=model)
    if efa_instance_types:
        charts["efa"] = helm.install(
            scope,
            "EfaDevicePlugin",
            cluster,
            helm.EFA_DEVICE_PLUGIN,
            efa_values(efa_instance_types, efa_image_repository),
            model=model,
        )
    return charts
