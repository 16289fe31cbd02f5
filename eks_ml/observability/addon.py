"""ObservabilityAddon: metrics, logs and ML alerts for a TrainingCluster or an InferenceCluster.

It takes the cluster construct, not its stack, so it can live in a stack of its own (cross-stack
references carry the cluster's name and kubectl role).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from aws_cdk import RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from .._registry import claim_unique_name
from .._tokens import is_unresolved
from ..aws_names import PROMETHEUS_RULE_GROUPS_NAMESPACE_MAX, check_derived_name
from ..cluster import EndpointAccessMode
from ..errors import Problems
from ..guards import expect_all, expect_enum, expect_instance, expect_int, expect_number, expect_str, expect_str_list
from ..inference import InferenceCluster
from ..training import TrainingCluster
from .backend import Backend
from .cloudwatch import CloudWatchBackend
from .dashboards import dashboard
from .prometheus import PrometheusBackend, rule_groups_namespace_name
from .prometheus_alerts import Thresholds
from .target import ObservedCluster, observe

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_ADDON_VERSION = re.compile(r"^v(\d+)\.(\d+)\.(\d+)-eksbuild\.\d+$")
MIN_SCRAPER_ZONES = 2  # Amazon Managed Service for Prometheus: at least two subnets in two AZs
# The first amazon-cloudwatch-observability version with EFA metrics (CloudWatch User Guide).
MIN_CLOUDWATCH_ADDON = (1, 5, 2)


def check_alarm_emails(emails: Sequence[str], field: str, problems: Problems) -> None:
    for index, email in enumerate(emails):
        if not _EMAIL.match(email):
            problems.add(f"{field}[{index}]", email, "an e-mail address", "fix the address or remove it")
    for email in sorted({e for e in emails if list(emails).count(e) > 1}):
        problems.add(field, email, "each address once", "remove the repeated address")


@dataclass(frozen=True, kw_only=True)
class ObservabilityAddonProps:
    """Props of :class:`ObservabilityAddon`.

    cluster: the TrainingCluster or InferenceCluster to watch; its accelerators and EFA decide which
        alerts exist.
    backend: Default: CloudWatch (Container Insights with enhanced observability and CloudWatch alarms).
    alarm_topic: where alerts go. Default: a new SNS topic, encrypted with its own KMS key. An imported
        topic's policy cannot be changed from here: let cloudwatch.amazonaws.com (CloudWatch backend) or
        aps.amazonaws.com (Prometheus backend) publish to it, and use its key, yourself.
    alarm_emails: addresses subscribed to the topic (each must confirm by mail). Default: none.
    log_retention: of the container, node and performance log groups. Default: one month.
    cloudwatch_addon_version: pin of the amazon-cloudwatch-observability add-on, e.g.
        v4.5.0-eksbuild.1 (CloudWatch backend only). Default: EKS's default version for the cluster's
        Kubernetes version.
    thresholds: model-server latency and queue depth that alert (Prometheus backend only).
        Default: p95 latency 30 s, 16 waiting requests per server, each for 10 minutes.

    Each model service's SLO is a prop of the service (``ModelServiceProps.slo``, a
    ``ServiceLevelObjective``): with the Prometheus backend it becomes burn-rate alerts.
    """

    cluster: TrainingCluster | InferenceCluster
    backend: Backend = Backend.CLOUDWATCH
    alarm_topic: sns.ITopic | None = None
    alarm_emails: Sequence[str] = ()
    log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH
    cloudwatch_addon_version: str | None = None
    thresholds: Thresholds = field(default_factory=Thresholds)

    def _check_shapes(self, problems: Problems) -> bool:
        return expect_all(
            expect_enum(self.backend, Backend, "backend", problems),
            self.alarm_topic is None
            or hasattr(self.alarm_topic, "topic_arn")
            or expect_instance(self.alarm_topic, sns.Topic, "alarm_topic", problems, fix="pass an sns topic or None"),
            expect_str_list(self.alarm_emails, "alarm_emails", problems),
            expect_enum(self.log_retention, logs.RetentionDays, "log_retention", problems),
            expect_str(self.cloudwatch_addon_version, "cloudwatch_addon_version", problems, optional=True),
            expect_instance(self.thresholds, Thresholds, "thresholds", problems, fix="pass Thresholds(...)")
            and expect_all(
                expect_number(self.thresholds.latency_p95_seconds, "thresholds.latency_p95_seconds", problems),
                expect_int(self.thresholds.queue_depth, "thresholds.queue_depth", problems),
            ),
        )

    def check(self, problems: Problems) -> None:
        if not self._check_shapes(problems):
            return
        if not isinstance(self.cluster, TrainingCluster | InferenceCluster):
            problems.add(
                "cluster",
                type(self.cluster).__name__,
                "a TrainingCluster or an InferenceCluster",
                "pass the eks_ml cluster construct (not its aws_eks_v2 cluster or its stack)",
            )
        elif is_unresolved(observe(self.cluster).name):
            problems.add(
                "cluster",
                "a cluster whose name is only known at deploy time",
                "a cluster with a literal name (log groups and alarm dimensions are named after it)",
                "import the cluster with its literal cluster_name",
            )
        if not isinstance(self.backend, Backend):
            problems.add(
                "backend",
                self.backend,
                ", ".join(b.name for b in Backend),
                "use Backend.CLOUDWATCH or Backend.PROMETHEUS",
            )
        elif self.backend is Backend.PROMETHEUS and isinstance(self.cluster, TrainingCluster | InferenceCluster):
            target = observe(self.cluster)
            self._check_scraper_reach(target, problems)
            cluster = self.cluster
            # The serving namespace denies by default: without the opening the scraper never sees vLLM.
            if isinstance(cluster, InferenceCluster) and cluster.service_charts and not cluster.admits_managed_scraper:
                problems.add(
                    "cluster.managed_scraper_access",
                    False,
                    "True when the Prometheus backend scrapes an InferenceCluster with model services",
                    "build the cluster with InferenceClusterProps(managed_scraper_access=True)",
                )
            if not is_unresolved(target.name):
                check_derived_name(
                    rule_groups_namespace_name(target.name),
                    PROMETHEUS_RULE_GROUPS_NAMESPACE_MAX,
                    "Prometheus rule groups namespace",
                    "cluster.cluster_name",
                    target.name,
                    problems,
                )
        if self.backend is Backend.PROMETHEUS and self.cloudwatch_addon_version is not None:
            problems.add(
                "cloudwatch_addon_version",
                self.cloudwatch_addon_version,
                "a version only with Backend.CLOUDWATCH",
                "remove it, or choose the CloudWatch backend",
            )
        if self.thresholds.latency_p95_seconds <= 0 or self.thresholds.queue_depth < 1:
            problems.add(
                "thresholds",
                self.thresholds,
                "latency_p95_seconds > 0 and queue_depth >= 1",
                "raise the thresholds, or keep the defaults",
            )
        check_alarm_emails(self.alarm_emails, "alarm_emails", problems)
        if self.log_retention is logs.RetentionDays.INFINITE:
            problems.add(
                "log_retention",
                "INFINITE",
                "a finite retention (container logs of a busy cluster grow by gigabytes a day)",
                "choose e.g. RetentionDays.ONE_MONTH and export what you must keep to S3",
            )
        if self.cloudwatch_addon_version is not None:
            match = _ADDON_VERSION.match(self.cloudwatch_addon_version)
            floor = "v{}.{}.{}-eksbuild.1".format(*MIN_CLOUDWATCH_ADDON)
            if match is None:
                problems.add(
                    "cloudwatch_addon_version",
                    self.cloudwatch_addon_version,
                    "an EKS add-on version such as v4.5.0-eksbuild.1",
                    "copy one from `aws eks describe-addon-versions --addon-name amazon-cloudwatch-observability`",
                )
            elif tuple(int(part) for part in match.groups()) < MIN_CLOUDWATCH_ADDON:
                problems.add(
                    "cloudwatch_addon_version",
                    self.cloudwatch_addon_version,
                    f"{floor} or newer (the first version with EFA metrics)",
                    "pin a newer version or leave it unset for EKS's default",
                )

    @staticmethod
    def _check_scraper_reach(target: ObservedCluster, problems: Problems) -> None:
        # The managed scraper talks to the cluster's private endpoint from ENIs in two or more AZs.
        if target.endpoint_access is EndpointAccessMode.PUBLIC:
            problems.add(
                "cluster.endpoint_access",
                "PUBLIC",
                "a private endpoint (PRIVATE or PUBLIC_AND_PRIVATE) for the managed Prometheus scraper",
                "turn on the private endpoint, or use Backend.CLOUDWATCH",
            )
        subnets = target.cluster.vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS).subnets
        zones = {subnet.availability_zone for subnet in subnets}
        if len(zones) < MIN_SCRAPER_ZONES:
            problems.add(
                "cluster.vpc",
                sorted(zones),
                f"private subnets in at least {MIN_SCRAPER_ZONES} AZs (the managed scraper's requirement)",
                "add a private subnet in a second AZ, or use Backend.CLOUDWATCH",
            )


class ObservabilityAddon(Construct):
    """Attributes: ``target`` (what is watched), ``topic`` (alerts), ``topic_key`` (None with your own
    topic), ``cloudwatch`` (CloudWatch backend: add-on, log groups, alarms) or ``prometheus`` (Prometheus
    backend: workspace, scraper, rules, exporters); the other is None; ``dashboard`` (Grafana model)."""

    def __init__(self, scope: Construct, construct_id: str, props: ObservabilityAddonProps) -> None:
        super().__init__(scope, construct_id)
        problems = Problems()
        props.check(problems)
        problems.raise_if_any()

        self.target: ObservedCluster = observe(props.cluster)
        # Its topic, alarms, rule namespace and log groups are named after the cluster.
        claim_unique_name(
            self,
            kind="observability add-on",
            name=self.target.name,
            field="cluster",
            fix="add one ObservabilityAddon per cluster (it watches the whole cluster)",
        )
        self.topic_key: kms.Key | None = None
        if props.alarm_topic is None:
            self.topic_key = kms.Key(
                self,
                "AlertsKey",
                description=f"Encrypts the alert topic of EKS cluster {self.target.name}",
                enable_key_rotation=True,
                removal_policy=RemovalPolicy.DESTROY,
            )
            # CloudWatch publishes alarm notifications into the encrypted topic.
            self.topic_key.grant(
                iam.ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*"
            )
            self.topic: sns.ITopic = sns.Topic(
                self,
                "Alerts",
                topic_name=f"{self.target.name}-alerts",
                display_name=f"eks-ml alerts of {self.target.name}",
                master_key=self.topic_key,
                enforce_ssl=True,
            )
        else:
            self.topic = props.alarm_topic
        for email in props.alarm_emails:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))

        self.cloudwatch = (
            CloudWatchBackend(
                self,
                "CloudWatch",
                target=self.target,
                topic=self.topic,
                retention=props.log_retention,
                addon_version=props.cloudwatch_addon_version,
            )
            if props.backend is Backend.CLOUDWATCH
            else None
        )
        # Grafana dashboard models for this backend (written under dist/ by the default app).
        self.dashboard = dashboard(self.target, props.backend)
        self.prometheus = (
            PrometheusBackend(
                self,
                "Prometheus",
                target=self.target,
                topic=self.topic,
                topic_key=self.topic_key,
                thresholds=props.thresholds,
            )
            if props.backend is Backend.PROMETHEUS
            else None
        )
