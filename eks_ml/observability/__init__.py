"""Metrics, logs, ML alerts and dashboards for either cluster."""

from .addon import Backend, ObservabilityAddon, ObservabilityAddonProps
from .cloudwatch_alerts import CLOUDWATCH_ALERTS

__all__ = ["CLOUDWATCH_ALERTS", "Backend", "ObservabilityAddon", "ObservabilityAddonProps"]
