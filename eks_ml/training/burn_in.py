"""Burn-in of training nodes: every node joins with a startup taint that only a passed burn-in lifts.

Training jobs select ``eks-ml.io/burn-in=passed`` (through their Kueue flavor) and never tolerate the
startup taint, so they land only on nodes whose hardware matched the catalog and passed the vendor
diagnostics. SageMaker HyperPod's deep health checks are the reference: GPU count and DCGM diagnostics
on NVIDIA, Neuron devices on Trainium, EFA on both, with node labels for the outcome ("Deep health
checks" and "Resilience-related Kubernetes labels", SageMaker developer guide).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cdk8s

from ..catalog import InstanceSpec
from ..k8s.burn_in import BurnInChart, BurnInGroup, BurnInValues, startup_toleration
from .jobs import NVIDIA_IMAGE
from .node_group import NODE_GROUP_LABEL, TrainingNodes

NAMESPACE = "eks-ml-burn-in"
# nvcr.io/nvidia/cloud-native/dcgm 4.5.2 is the DCGM the NVIDIA GPU operator ships (v25.10); its diagnostic
# plugins cover CUDA 13 (R580) drivers, which the 4.4.0 image lacks.
DCGM_IMAGE = "nvcr.io/nvidia/cloud-native/dcgm:4.5.2-1-ubuntu22.04"
# The Neuron training container from the public gallery: neuron-ls (aws-neuronx-tools), python3 and EFA's
# libfabric; the same PyTorch and SDK line as the training runtime (eks_ml.training.jobs).
NEURON_IMAGE = "public.ecr.aws/neuron/pytorch-training-neuronx:2.8.0-neuronx-py311-sdk2.26.0-ubuntu22.04"
# Level 2 (the "medium" run: deployment, PCIe, memory and targeted tests) takes minutes; SageMaker HyperPod's
# deep health check runs level 4 (hours), which suits an on-demand check better than every node start.
DCGM_DIAG_LEVEL = 2
# A driver keeps a little of each device's memory: an H100 80 GB reports 81,559 of 81,920 MiB.
MEMORY_FRACTION = 0.95


def expected_values(spec: InstanceSpec) -> dict[str, str]:
    """The checks' expectations of one instance type, from the catalog ``eks-ml plan`` uses."""
    expected = {
        "EXPECTED_ACCELERATORS": str(spec.accelerator_count),
        "EXPECTED_MIN_MEMORY_MIB": str(math.floor(spec.accelerator_memory_mib * MEMORY_FRACTION)),
        "EXPECTED_EFA_DEVICES": str(spec.efa_interfaces),
    }
    if spec.is_nvidia:
        expected["DCGM_DIAG_LEVEL"] = str(DCGM_DIAG_LEVEL)
    else:
        expected["EXPECTED_NEURON_CORES"] = str(spec.physical_neuron_cores)
        expected["EXPECTED_LOGICAL_NEURON_CORES"] = str(spec.neuron_cores)
    return expected


def burn_in_group(name: str, spec: InstanceSpec) -> BurnInGroup:
    """The burn-in of node group ``name`` of ``spec`` nodes: on its nodes only, through both of their taints."""
    return BurnInGroup(
        name=name,
        node_selector={NODE_GROUP_LABEL: name},
        tolerations=[
            {"key": spec.accelerator_resource, "operator": "Exists", "effect": "NoSchedule"},
            startup_toleration(),
        ],
        accelerator_check="nvidia" if spec.is_nvidia else "neuron",
        accelerator_image=DCGM_IMAGE if spec.is_nvidia else NEURON_IMAGE,
        training_image=NVIDIA_IMAGE if spec.is_nvidia else NEURON_IMAGE,
        expected=expected_values(spec),
    )


def burn_in_chart(groups: Sequence[TrainingNodes]) -> BurnInChart:
    """The burn-in DaemonSets of ``groups``, one per group."""
    return BurnInChart(
        cdk8s.App(), "BurnIn", BurnInValues(namespace=NAMESPACE, groups=[burn_in_group(g.name, g.spec) for g in groups])
    )
