"""A queue worker as Kubernetes objects: ServiceAccount, Deployment (no replicas: KEDA owns the count), KEDA
TriggerAuthentication and ScaledObject (scale to zero on an empty queue), and the NetworkPolicy that lets it
reach its queue and the EKS Pod Identity agent and nothing else.

KEDA API facts from kedacore/keda @ v2.20.2: apis/keda/v1alpha1/scaledobject_types.go (minReplicaCount,
maxReplicaCount, cooldownPeriod, pollingInterval, triggers[].authenticationRef) and
triggerauthentication_types.go (podIdentity.provider "aws" with roleArn, which the operator assumes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import cdk8s
from cdk8s_plus_35 import k8s
from constructs import Construct

from .model_service import APP_LABEL
from .network_policies import LINK_LOCAL
from .scheduling import tolerations

KEDA_API = "keda.sh/v1alpha1"
# The EKS Pod Identity agent listens on this link-local address, port 80 (Amazon EKS User Guide,
# "Understand how EKS Pod Identity works"): the worker fetches its credentials there.
POD_IDENTITY_AGENT = "169.254.170.23/32"
POD_IDENTITY_AGENT_PORT = 80
ANYWHERE = "0.0.0.0/0"


@dataclass(frozen=True, kw_only=True)
class TriggerValues:
    """One KEDA trigger: its type, metadata (strings, as KEDA reads them) and the role KEDA's operator assumes
    to read the metric (None: no AWS access needed)."""

    type: str
    metadata: Mapping[str, str]
    scaler_role_arn: str | None = None


@dataclass(frozen=True, kw_only=True)
class QueueWorkerValues:
    name: str
    namespace: str
    image: str
    command: Sequence[str] = ()
    args: Sequence[str] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    capabilities: Sequence[str] = ()
    node_selector: Mapping[str, str]
    tolerations: Sequence[Mapping[str, str]] = ()
    requests: Mapping[str, str]
    limits: Mapping[str, str] = field(default_factory=dict)
    min_replicas: int
    max_replicas: int
    cooldown_seconds: int
    polling_seconds: int
    termination_grace_seconds: int
    trigger: TriggerValues
    # TCP ports the worker opens connections to (443 for SQS, 9098 for MSK with IAM).
    egress_ports: Sequence[int] = (443,)


class QueueWorkerChart(cdk8s.Chart):
    def __init__(self, scope: Construct, construct_id: str, values: QueueWorkerValues) -> None:
        super().__init__(scope, construct_id, disable_resource_name_hashes=True)
        labels = {APP_LABEL: values.name}
        meta = k8s.ObjectMeta(name=values.name, namespace=values.namespace, labels=labels)
        # EKS Pod Identity mounts its own token; the worker needs no Kubernetes API token.
        k8s.KubeServiceAccount(self, "ServiceAccount", metadata=meta, automount_service_account_token=False)
        self._deployment(values, labels, meta)
        self._scaler(values, labels)
        self._network_policy(values, labels)

    def _deployment(self, values: QueueWorkerValues, labels: dict[str, str], meta: k8s.ObjectMeta) -> None:
        container = k8s.Container(
            name="worker",
            image=values.image,
            command=list(values.command) or None,
            args=list(values.args) or None,
            env=[k8s.EnvVar(name=name, value=value) for name, value in sorted(values.env.items())] or None,
            resources=k8s.ResourceRequirements(
                requests={name: k8s.Quantity.from_string(q) for name, q in values.requests.items()},
                limits={name: k8s.Quantity.from_string(q) for name, q in values.limits.items()} or None,
            ),
            security_context=k8s.SecurityContext(
                allow_privilege_escalation=False,
                capabilities=k8s.Capabilities(drop=["ALL"], add=list(values.capabilities) or None),
                seccomp_profile=k8s.SeccompProfile(type="RuntimeDefault"),
            ),
        )
        k8s.KubeDeployment(
            self,
            "Deployment",
            metadata=meta,
            # No replicas: KEDA's ScaledObject owns the count (and takes it to zero).
            spec=k8s.DeploymentSpec(
                selector=k8s.LabelSelector(match_labels=labels),
                template=k8s.PodTemplateSpec(
                    metadata=k8s.ObjectMeta(labels=labels),
                    spec=k8s.PodSpec(
                        service_account_name=values.name,
                        automount_service_account_token=False,
                        security_context=k8s.PodSecurityContext(
                            seccomp_profile=k8s.SeccompProfile(type="RuntimeDefault")
                        ),
                        node_selector=dict(values.node_selector),
                        tolerations=tolerations(values.tolerations) or None,
                        # A message in flight is finished (or returned to the queue) before the pod goes.
                        termination_grace_period_seconds=values.termination_grace_seconds,
                        containers=[container],
                    ),
                ),
            ),
        )

    def _scaler(self, values: QueueWorkerValues, labels: dict[str, str]) -> None:
        trigger: dict[str, Any] = {"type": values.trigger.type, "metadata": dict(values.trigger.metadata)}
        if values.trigger.scaler_role_arn is not None:
            # identityOwner stays "keda" (the default): the operator assumes the scaler role with its own
            # Pod Identity credentials; the worker's role (which may receive and delete) is never lent to KEDA.
            cdk8s.ApiObject(
                self,
                "TriggerAuthentication",
                api_version=KEDA_API,
                kind="TriggerAuthentication",
                metadata=cdk8s.ApiObjectMetadata(name=values.name, namespace=values.namespace, labels=labels),
            ).add_json_patch(
                cdk8s.JsonPatch.add(
                    "/spec", {"podIdentity": {"provider": "aws", "roleArn": values.trigger.scaler_role_arn}}
                )
            )
            trigger["authenticationRef"] = {"name": values.name}
        cdk8s.ApiObject(
            self,
            "ScaledObject",
            api_version=KEDA_API,
            kind="ScaledObject",
            metadata=cdk8s.ApiObjectMetadata(name=values.name, namespace=values.namespace, labels=labels),
        ).add_json_patch(
            cdk8s.JsonPatch.add(
                "/spec",
                {
                    "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": values.name},
                    "minReplicaCount": values.min_replicas,
                    "maxReplicaCount": values.max_replicas,
                    "cooldownPeriod": values.cooldown_seconds,
                    "pollingInterval": values.polling_seconds,
                    "triggers": [trigger],
                },
            )
        )

    def _network_policy(self, values: QueueWorkerValues, labels: dict[str, str]) -> None:
        """Egress to the queue's ports (AWS endpoints and MSK brokers have no fixed addresses) and to the Pod
        Identity agent; no ingress (a worker pulls its work)."""
        ports = [
            k8s.NetworkPolicyPort(protocol="TCP", port=k8s.IntOrString.from_number(p)) for p in values.egress_ports
        ]
        k8s.KubeNetworkPolicy(
            self,
            "NetworkPolicy",
            metadata=k8s.ObjectMeta(name=values.name, namespace=values.namespace, labels=labels),
            spec=k8s.NetworkPolicySpec(
                pod_selector=k8s.LabelSelector(match_labels=labels),
                policy_types=["Ingress", "Egress"],
                ingress=[],
                egress=[
                    k8s.NetworkPolicyEgressRule(
                        to=[k8s.NetworkPolicyPeer(ip_block=k8s.IpBlock(cidr=ANYWHERE, except_=[LINK_LOCAL]))],
                        ports=ports,
                    ),
                    k8s.NetworkPolicyEgressRule(
                        to=[k8s.NetworkPolicyPeer(ip_block=k8s.IpBlock(cidr=POD_IDENTITY_AGENT))],
                        ports=[
                            k8s.NetworkPolicyPort(
                                protocol="TCP", port=k8s.IntOrString.from_number(POD_IDENTITY_AGENT_PORT)
                            )
                        ],
                    ),
                ],
            ),
        )
