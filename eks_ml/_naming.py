"""Construct ids derived from user-given names, where the name is the thing's identity."""

from __future__ import annotations


def pascal(name: str) -> str:
    """``p5-a`` -> ``P5A``: a construct id for a kebab-case name."""
    return "".join(part.capitalize() for part in name.split("-"))
