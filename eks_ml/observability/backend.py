"""Where an ObservabilityAddon sends metrics and evaluates alerts."""

from __future__ import annotations

from enum import Enum


class Backend(Enum):
    """CLOUDWATCH: Container Insights and CloudWatch alarms. PROMETHEUS: Amazon Managed Service for
    Prometheus with the managed scraper and alerting rules."""

    CLOUDWATCH = "cloudwatch"
    PROMETHEUS = "prometheus"
