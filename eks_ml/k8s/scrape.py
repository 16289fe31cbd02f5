"""The pod annotations every Prometheus here discovers targets by (the inference cluster's server and
the managed scraper's relabelling both read them)."""

from __future__ import annotations


def scrape_annotations(port: int, path: str | None = None) -> dict[str, str]:
    annotations = {"prometheus.io/scrape": "true", "prometheus.io/port": str(port)}
    if path is not None:
        annotations["prometheus.io/path"] = path
    return annotations
