"""The YAML eks-ml writes for people to read (Prometheus rules, scrape and Alertmanager configuration)."""

from __future__ import annotations

import yaml

from eks_ml._yaml import dump


def test_a_mapping_used_twice_is_written_out_twice_not_as_an_anchor_and_alias() -> None:
    # The SLO rules share one labels mapping between a service's recording rules; PyYAML's default writes
    # the second as "*id001", which a reader of the rule file (or a tool without alias support) cannot follow.
    shared = {"service": "qwen3-8b", "namespace": "inference"}
    text = dump({"rules": [{"record": "a", "labels": shared}, {"record": "b", "labels": shared}]})
    assert "&id" not in text and "*id" not in text, text
    assert yaml.safe_load(text) == {"rules": [{"record": "a", "labels": shared}, {"record": "b", "labels": shared}]}
