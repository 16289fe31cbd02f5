"""The one table of accelerated instance types, and look-ups over it.

Everything instance-specific in eks-ml (network interfaces, placement, AMI type, pod requests,
validation) is derived from these records, never from strings scattered through the code.
"""

from __future__ import annotations

import difflib

from ..errors import ValidationError
from .spec import (
    AMI_TYPE_NEURON,
    AMI_TYPE_NVIDIA,
    EFA_INTERFACE_TYPES,
    EFA_RESOURCE,
    INTERFACE_EFA,
    INTERFACE_EFA_ONLY,
    INTERFACE_ENA,
    NEURON_CORE_RESOURCE,
    NEURON_DEVICE_RESOURCE,
    NVIDIA_GPU_RESOURCE,
    AcceleratorVendor,
    InstanceSpec,
    NetworkInterfaceSlot,
)
from .table import INSTANCE_TYPES

_BY_NAME: dict[str, InstanceSpec] = {spec.name: spec for spec in INSTANCE_TYPES}


def all_instance_types() -> tuple[InstanceSpec, ...]:
    return INSTANCE_TYPES


def families() -> tuple[str, ...]:
    """Families in catalog order (training families first, then inference)."""
    return tuple(dict.fromkeys(spec.family for spec in INSTANCE_TYPES))


def lookup(instance_type: str, *, field: str = "instance_type") -> InstanceSpec:
    """The catalog record of ``instance_type``; a ValidationError naming near matches if unknown."""
    spec = _BY_NAME.get(instance_type)
    if spec is not None:
        return spec
    near = difflib.get_close_matches(str(instance_type), list(_BY_NAME), n=4, cutoff=0.6)
    hint = f"did you mean {', '.join(near)}?" if near else "use one of the catalog's types"
    raise ValidationError.single(
        field,
        instance_type,
        f"an accelerated type from the eks-ml catalog (families {', '.join(families())})",
        hint,
    )


__all__ = [
    "AMI_TYPE_NEURON",
    "AMI_TYPE_NVIDIA",
    "EFA_INTERFACE_TYPES",
    "EFA_RESOURCE",
    "INTERFACE_EFA",
    "INTERFACE_EFA_ONLY",
    "INTERFACE_ENA",
    "NEURON_CORE_RESOURCE",
    "NEURON_DEVICE_RESOURCE",
    "NVIDIA_GPU_RESOURCE",
    "AcceleratorVendor",
    "InstanceSpec",
    "NetworkInterfaceSlot",
    "all_instance_types",
    "families",
    "lookup",
]
