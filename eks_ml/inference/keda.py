"""KEDA on the system nodes, and the IAM design of the queue workers it scales.

How KEDA 2.20's ``aws`` pod identity provider gets credentials (kedacore/keda @ v2.20.2,
pkg/scaling/resolver/scale_resolvers.go and pkg/scalers/aws/aws_config_cache.go): with ``roleArn`` (identity
owner ``keda``) the operator assumes that role with its own credentials (AssumeRole, session "KEDA"); with
``identityOwner: workload`` it reads the IRSA annotation ``eks.amazonaws.com/role-arn`` of the workload's service
account and assumes *that* role. EKS Pod Identity associations are not annotations, and lending KEDA the worker's
role would let the operator receive and delete messages. So, least privilege:

- the operator's Pod Identity role may only ``sts:AssumeRole`` (and ``sts:TagSession``: Pod Identity's session
  tags are transitive) the scaler roles of this cluster's workers;
- each worker gets a scaler role trusted only by the operator role, allowed only to read its backlog
  (sqs:GetQueueAttributes on its queue; Connect/DescribeTopic/DescribeGroup on its MSK cluster, topic and group);
- each worker's own Pod Identity role may consume exactly its queue or topic and group, nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence

import cdk8s
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from constructs import Construct, IDependable

from .. import helm
from .._naming import pascal
from ..cluster.pod_identity import associate, pod_identity_role
from ..cluster.system_nodes import SystemPlacement
from ..k8s.queue_worker import QueueWorkerChart
from ..nag import acknowledge_inline_policy
from ..placement import ClusterModel
from .queue_worker import (
    KMS_ACTIONS,
    MSK_CLUSTER_ACTIONS,
    MSK_GROUP_ACTIONS,
    MSK_SCALER_GROUP_ACTIONS,
    MSK_SCALER_TOPIC_ACTIONS,
    MSK_TOPIC_ACTIONS,
    SQS_ACTIONS,
    SQS_SCALER_ACTIONS,
    MskSource,
    QueueWorkerProps,
    SqsSource,
)

# What the operator, holding Pod Identity credentials, needs to assume a scaler role: the AssumeRole itself and
# the transitive session tags Pod Identity put on its session, which the chained session inherits.
CHAIN_ACTIONS = ("sts:AssumeRole", "sts:TagSession")
OPERATOR_SERVICE_ACCOUNT = "keda-operator"  # the chart's serviceAccount.operator.name
# Requests for a handful of ScaledObjects; the chart's defaults (100m, 100Mi, limits 1 CPU, 1000Mi) stay as
# limits.
KEDA_RESOURCES = {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}}


def keda_values(placement: SystemPlacement) -> dict[str, object]:
    return {
        **placement.values(),
        "resources": {"operator": KEDA_RESOURCES, "metricServer": KEDA_RESOURCES, "webhooks": KEDA_RESOURCES},
    }


class Keda(Construct):
    """KEDA's operator, metrics API server and admission webhooks on the system nodes; the operator holds a Pod
    Identity role that may only assume the scaler roles given to :meth:`allow_scaling`.
    Attributes: ``operator_role``, ``chart``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster: eks.ICluster,
        cluster_name: str,
        model: ClusterModel,
        placement: SystemPlacement,
        after: Sequence[IDependable] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        self.operator_role = pod_identity_role(
            self, "OperatorRole", description=f"KEDA {helm.KEDA.version} operator of {cluster_name} (EKS Pod Identity)"
        )
        association = associate(
            self,
            "PodIdentity",
            cluster=cluster,
            namespace=helm.KEDA.namespace,
            service_account=OPERATOR_SERVICE_ACCOUNT,
            role=self.operator_role,
        )
        self.chart = helm.install(
            self,
            "Chart",
            cluster,
            helm.KEDA,
            keda_values(placement),
            model=model,
            wait=True,  # its admission webhooks validate ScaledObjects
            after=[association, *after],
        )

    def allow_scaling(self, scaler_role: iam.IRole) -> None:
        # sts:TagSession: EKS Pod Identity's session tags are transitive, so the operator's AssumeRole carries
        # them (Amazon EKS User Guide, "Grant Pods access to AWS resources based on tags", Cross-account tags).
        self.operator_role.add_to_policy(
            iam.PolicyStatement(actions=list(CHAIN_ACTIONS), resources=[scaler_role.role_arn])
        )

    def finish(self) -> None:
        if self.operator_role.node.try_find_child("DefaultPolicy") is not None:
            acknowledge_inline_policy(
                self.operator_role,
                "Only sts:AssumeRole and sts:TagSession on the named scaler roles of this cluster's queue workers, "
                "as the inline policy of KEDA's own Pod Identity role: no other principal can attach it.",
            )


class QueueWorkerRoles(Construct):
    """The worker's Pod Identity role (consume its source) and the scaler role KEDA assumes (read its backlog).
    Attributes: ``worker_role``, ``scaler_role``."""

    def __init__(self, scope: Construct, construct_id: str, *, worker: QueueWorkerProps, keda: Keda) -> None:
        super().__init__(scope, construct_id)
        self.worker_role = pod_identity_role(self, "WorkerRole", description=f"queue worker {worker.name}")
        self.scaler_role = iam.Role(
            self,
            "ScalerRole",
            # with_session_tags: trusts sts:TagSession too (Pod Identity's transitive tags, see CHAIN_ACTIONS).
            assumed_by=iam.ArnPrincipal(keda.operator_role.role_arn).with_session_tags(),
            description=f"KEDA reads the backlog of queue worker {worker.name}",
        )
        for statement in worker_statements(worker.source):
            self.worker_role.add_to_policy(statement)
        for statement in scaler_statements(worker.source):
            self.scaler_role.add_to_policy(statement)
        keda.allow_scaling(self.scaler_role)
        for role in (self.worker_role, self.scaler_role):
            acknowledge_inline_policy(
                role,
                f"Scoped to the one queue or topic and group of worker {worker.name}, as the inline policy of "
                "a role made for it alone: no other principal can attach it.",
            )


def worker_statements(source: SqsSource | MskSource) -> list[iam.PolicyStatement]:
    """What a worker needs on its source, on exactly that source's ARNs."""
    if isinstance(source, SqsSource):
        statements = [iam.PolicyStatement(actions=list(SQS_ACTIONS), resources=[source.arn()])]
        key = source.key_arn()
        if key is not None:
            statements.append(iam.PolicyStatement(actions=list(KMS_ACTIONS), resources=[key]))
        return statements
    return [
        iam.PolicyStatement(actions=list(MSK_CLUSTER_ACTIONS), resources=[source.cluster_arn]),
        iam.PolicyStatement(actions=list(MSK_TOPIC_ACTIONS), resources=[source.topic_arn()]),
        iam.PolicyStatement(actions=list(MSK_GROUP_ACTIONS), resources=[source.group_arn()]),
    ]


def scaler_statements(source: SqsSource | MskSource) -> list[iam.PolicyStatement]:
    """What KEDA's scaler reads to measure the backlog, on exactly that source's ARNs."""
    if isinstance(source, SqsSource):
        return [iam.PolicyStatement(actions=list(SQS_SCALER_ACTIONS), resources=[source.arn()])]
    return [
        iam.PolicyStatement(actions=list(MSK_CLUSTER_ACTIONS), resources=[source.cluster_arn]),
        iam.PolicyStatement(actions=list(MSK_SCALER_TOPIC_ACTIONS), resources=[source.topic_arn()]),
        iam.PolicyStatement(actions=list(MSK_SCALER_GROUP_ACTIONS), resources=[source.group_arn()]),
    ]


def add_queue_workers(
    scope: Construct,
    *,
    cluster: eks.ICluster,
    keda: Keda,
    workers: Sequence[QueueWorkerProps],
    namespace: str,
    pools: dict[str, str],
) -> list[tuple[str, QueueWorkerChart, eks.CfnPodIdentityAssociation]]:
    """Roles, Pod Identity associations and charts of ``workers``; ``pools`` maps an instance type (or "" for
    CPU) to the pool that launches it. Returns (file stem, chart, the worker's association) per worker: the
    chart must be applied after the association (credentials are injected when a pod is created)."""
    charts: list[tuple[str, QueueWorkerChart, eks.CfnPodIdentityAssociation]] = []
    for worker in workers:
        roles = QueueWorkerRoles(scope, f"Worker{pascal(worker.name)}", worker=worker, keda=keda)
        association = associate(
            roles,
            "PodIdentity",
            cluster=cluster,
            namespace=namespace,
            service_account=worker.name,
            role=roles.worker_role,
        )
        values = worker.values(
            namespace=namespace, pool=pools[worker.instance_type or ""], scaler_role_arn=roles.scaler_role.role_arn
        )
        chart = QueueWorkerChart(cdk8s.App(), f"Worker-{worker.name}", values)
        charts.append((f"queue-worker-{worker.name}", chart, association))
    keda.finish()
    return charts
