"""Metrics, logs, ML alerts and dashboards for either cluster."""

from .addon import ObservabilityAddon, ObservabilityAddonProps
from .backend import Backend
from .cloudwatch_alerts import CLOUDWATCH_ALERTS
from .dashboards import dashboard
from .prometheus_alerts import PROMETHEUS_ALERTS, Thresholds

__all__ = [
    "CLOUDWATCH_ALERTS",
    "PROMETHEUS_ALERTS",
    "Backend",
    "ObservabilityAddon",
    "ObservabilityAddonProps",
    "Thresholds",
    "dashboard",
]
