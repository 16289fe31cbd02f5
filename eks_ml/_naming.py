"""Construct ids derived from user-given names, where the name is the thing's identity."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from .errors import Problems


def pascal(name: str) -> str:
    """``p5-a`` -> ``P5A``: a construct id for a kebab-case name."""
    return "".join(part.capitalize() for part in name.split("-"))


def check_unique_ids(
    names: Sequence[str],
    to_id: Callable[[str], str],
    field: str,
    problems: Problems,
    *,
    taken: Iterable[str] = (),
) -> None:
    """Refuse names whose construct ids collide, with each other or with ids the construct already uses.

    ``pascal`` is not one-to-one (``qwen-3`` and ``qwen3`` both give ``Qwen3``) and ids cannot change
    without replacing resources, so colliding names are refused instead of renamed. Exact duplicates are
    reported by the caller's own uniqueness rule.
    """
    owners: dict[str, str] = {construct_id: "" for construct_id in taken}
    for name in dict.fromkeys(n for n in names if isinstance(n, str)):  # other types are reported elsewhere
        construct_id = to_id(name)
        if construct_id in owners:
            other = owners[construct_id]
            clash = f"the name {other!r}" if other else f"eks-ml's own construct {construct_id!r}"
            problems.add(
                field,
                name,
                f"names that map to distinct construct ids ({name!r} gives {construct_id!r}, as does {clash})",
                "rename it so it differs by more than punctuation",
            )
        else:
            owners[construct_id] = name
