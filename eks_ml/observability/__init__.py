"""Metrics, logs, ML alerts and dashboards for either cluster."""

from .addon import Backend, ObservabilityAddon, ObservabilityAddonProps
from .cloudwatch_alerts import CLOUDWATCH_ALERTS
from .prometheus_alerts import PROMETHEUS_ALERTS, Thresholds

__all__ = [
    "CLOUDWATCH_ALERTS",
    "PROMETHEUS_ALERTS",
    "Backend",
    "ObservabilityAddon",
    "ObservabilityAddonProps",
    "Thresholds",
]
