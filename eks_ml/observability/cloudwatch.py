"""The CloudWatch backend: the amazon-cloudwatch-observability EKS add-on (Container Insights with
enhanced observability, which brings its own DCGM exporter and Neuron monitor for accelerator metrics,
plus Fluent Bit for container logs), its log groups with retention, and ML alarms."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from constructs import Construct

from .._naming import pascal
from ..cluster.pod_identity import addon_with_role, pod_identity_role
from ..log_encryption import encrypted_log_group, logs_key
from ..nag import acknowledge, managed_policy
from .cloudwatch_alerts import CLOUDWATCH_ALERTS
from .target import ObservedCluster

ADDON_NAME = "amazon-cloudwatch-observability"
AGENT_SERVICE_ACCOUNT = "cloudwatch-agent"
AGENT_POLICIES = ("CloudWatchAgentServerPolicy", "AWSXrayWriteOnlyAccess")
# The groups the add-on's agent and Fluent Bit write to. They create a group only when it is missing
# (Fluent Bit's auto_create_group) and write into an existing one as it is: created first, the groups
# get our retention and our KMS key. Their names follow from the cluster name (see BaseCluster's
# control-plane group for what that means on a redeploy).
LOG_GROUP_KINDS = ("application", "dataplane", "host", "performance")

# Enhanced observability with accelerator (NVIDIA, Neuron, EFA) metrics, and container logs.
ADDON_CONFIGURATION: Mapping[str, Any] = {
    "agent": {
        "config": {
            "logs": {
                "metrics_collected": {
                    "kubernetes": {"enhanced_container_insights": True, "accelerated_compute_metrics": True}
                }
            }
        }
    },
    "containerLogs": {"enabled": True},
}


def log_group_name(cluster_name: str, kind: str) -> str:
    return f"/aws/containerinsights/{cluster_name}/{kind}"


class CloudWatchBackend(Construct):
    """Attributes: ``role``, ``addon``, ``logs_key``, ``log_groups`` (kind -> LogGroup), ``alarms`` (key -> Alarm)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        target: ObservedCluster,
        topic: sns.ITopic,
        retention: logs.RetentionDays,
        addon_version: str | None,
    ) -> None:
        super().__init__(scope, construct_id)
        names = {kind: log_group_name(target.name, kind) for kind in LOG_GROUP_KINDS}
        self.logs_key = logs_key(
            self,
            "LogsKey",
            description=f"CloudWatch Logs encryption of the Container Insights logs of EKS cluster {target.name}",
            name_patterns=list(names.values()),
        )
        self.log_groups = {
            kind: encrypted_log_group(
                self, f"{pascal(kind)}Logs", log_group_name=name, key=self.logs_key, retention=retention
            )
            for kind, name in names.items()
        }
        self.role = pod_identity_role(
            self, "AgentRole", description=f"CloudWatch agent and Fluent Bit of EKS cluster {target.name}"
        )
        for policy in AGENT_POLICIES:
            self.role.add_managed_policy(iam.ManagedPolicy.from_aws_managed_policy_name(policy))
            acknowledge(
                self.role,
                managed_policy(policy),
                f"{policy} is the policy AWS documents for the CloudWatch Observability add-on's agent",
            )
        self.addon = addon_with_role(
            self,
            "Addon",
            cluster=target.cluster,
            addon_name=ADDON_NAME,
            service_account=AGENT_SERVICE_ACCOUNT,
            role=self.role,
        )
        cfn = self.addon.node.default_child
        assert isinstance(cfn, eks.CfnAddon)  # internal invariant of aws_eks_v2.Addon
        cfn.configuration_values = self.addon.stack.to_json_string(dict(ADDON_CONFIGURATION))
        if addon_version:
            cfn.addon_version = addon_version
        self.addon.node.add_dependency(*self.log_groups.values())  # one jsii call, not one per group

        action = actions.SnsAction(topic)
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        for alert in CLOUDWATCH_ALERTS:
            if not alert.applies(target):
                continue
            alarm = cloudwatch.Alarm(
                self,
                f"{pascal(alert.key)}Alarm",
                alarm_name=f"{target.name}-{alert.key}",
                alarm_description=alert.summary,
                metric=alert.metric(target),
                threshold=alert.threshold,
                comparison_operator=alert.comparison,
                evaluation_periods=alert.periods,
                # No data means no such hardware is running right now, not a fault.
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)
            self.alarms[alert.key] = alarm
