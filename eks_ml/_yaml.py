"""YAML for files people read (Prometheus rules, scrape and alert manager configuration)."""

from __future__ import annotations

from typing import Any

import yaml


class _Dumper(yaml.SafeDumper):  # type: ignore[misc]  # PyYAML ships no type stubs
    def ignore_aliases(self, data: Any) -> bool:
        # An object used twice (e.g. one labels mapping shared by several rules) is written out each time, not
        # as an anchor and "*id001" alias a reader would have to look up.
        return True


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    # Multi-line strings (an embedded config) as literal blocks, the way people write them.
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _string)


def dump(data: Any) -> str:
    """Keys in insertion order, no line folding, UTF-8 characters kept."""
    text: str = yaml.dump(data, Dumper=_Dumper, sort_keys=False, width=10_000, allow_unicode=True)
    return text
