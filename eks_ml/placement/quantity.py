"""Kubernetes resource quantities as integers: CPU in millicores, memory in MiB, devices as counts."""

from __future__ import annotations

import math
import re

_QUANTITY = re.compile(r"^([0-9.]+)([a-zA-Z]*)$")
# Binary and decimal suffixes, as bytes (resource.Quantity in k8s.io/apimachinery).
_SUFFIX = {
    "": 1,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "m": 10**-3,
}
CPU = "cpu"
MEMORY = "memory"
PODS = "pods"


def parse(resource: str, value: int | float | str) -> int:
    """``value`` of ``resource`` in the model's unit: millicores for cpu, MiB for memory (rounded up:
    a request never shrinks), plain counts for everything else."""
    if isinstance(value, (int, float)):
        number = float(value)
    else:
        match = _QUANTITY.match(value.strip())
        if match is None or match.group(2) not in _SUFFIX:
            raise ValueError(f"not a Kubernetes quantity: {value!r}")
        number = float(match.group(1)) * _SUFFIX[match.group(2)]
    if resource == CPU:
        return math.ceil(number * 1000 - 1e-9)
    if resource == MEMORY:
        return math.ceil(number / 2**20 - 1e-9)
    return math.ceil(number - 1e-9)


def describe(resource: str, amount: int) -> str:
    if resource == CPU:
        return f"{amount}m"
    if resource == MEMORY:
        return f"{amount}Mi"
    return str(amount)
