"""ObservabilityStack: an ObservabilityAddon for one cluster, in a stack of its own so monitoring can be
changed (or removed) without touching the cluster's stack."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from constructs import Construct

from eks_ml import AppConfig
from eks_ml.inference import InferenceCluster
from eks_ml.observability import ObservabilityAddon, ObservabilityAddonProps
from eks_ml.training import TrainingCluster


class ObservabilityStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: AppConfig,
        cluster: TrainingCluster | InferenceCluster,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.observability = ObservabilityAddon(
            self,
            "Observability",
            ObservabilityAddonProps(
                cluster=cluster, backend=config.observability_backend, alarm_emails=config.alarm_emails
            ),
        )
