"""A model served across nodes as Kubernetes objects: one LeaderWorkerSet (a group of pods per model replica:
the leader runs the Ray head and the vLLM server, each worker joins the leader's Ray cluster), a Service on
the leaders, and the NetworkPolicies that let a group's pods talk to each other.

LeaderWorkerSet API facts (kubernetes-sigs/lws @ v0.10.0, api/leaderworkerset/v1/leaderworkerset_types.go and
pkg/webhooks/pod_webhook.go):

| name                                          | kind        | meaning                                               |
|-----------------------------------------------|-------------|-------------------------------------------------------|
| spec.replicas                                 | field       | groups (model replicas); the scale subresource        |
| spec.leaderWorkerTemplate.size                | field       | pods per group, the leader included                   |
| spec.leaderWorkerTemplate.restartPolicy       | field       | RecreateGroupOnPodRestart: one failed pod restarts all |
| spec.startupPolicy                            | field       | LeaderCreated: workers start once the leader exists   |
| leaderworkerset.sigs.k8s.io/name              | pod label   | the LeaderWorkerSet's name, on every pod              |
| leaderworkerset.sigs.k8s.io/group-key         | pod label   | one value per group, on the leader and its workers    |
| LWS_LEADER_ADDRESS, LWS_GROUP_SIZE            | pod env     | injected into every container by the pod webhook      |

The group stays in one Availability Zone through a required pod affinity on ``topology.kubernetes.io/zone``
with ``matchLabelKeys: [group-key]`` (Kubernetes MatchLabelKeysInPodAffinity, GA in 1.33): each pod follows the
pods of its own group, and different groups may use different zones. LWS's own
``leaderworkerset.sigs.k8s.io/exclusive-topology`` annotation is not used: it adds an anti-affinity too, so one
group would take a whole zone (pod_webhook.go, SetExclusiveAffinities).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import cdk8s
from cdk8s_plus_35 import k8s
from constructs import Construct

from .model_service import APP_LABEL, HEALTH_PATH, PORT
from .network_policies import allow_server
from .scrape import scrape_annotations

LWS_API = "leaderworkerset.x-k8s.io/v1"
SET_NAME_LABEL = "leaderworkerset.sigs.k8s.io/name"
GROUP_KEY_LABEL = "leaderworkerset.sigs.k8s.io/group-key"
ZONE_LABEL = "topology.kubernetes.io/zone"
ROLE_LABEL = "eks-ml.io/role"  # leader or worker: the Service selects the leaders
LEADER, WORKER = "leader", "worker"


@dataclass(frozen=True, kw_only=True)
class MultiNodeServiceValues:
    name: str
    namespace: str
    image: str
    groups: int
    group_size: int
    leader_command: Sequence[str]
    worker_command: Sequence[str]
    env: Mapping[str, str]
    node_selector: Mapping[str, str]
    tolerations: Sequence[Mapping[str, str]]
    requests: Mapping[str, str]
    limits: Mapping[str, str]
    shm_size: str
    startup_failure_threshold: int
    scraper_namespaces: Sequence[str]
    client_namespaces: Sequence[str] = ()
    https_egress: bool = False
    volumes: Sequence[Mapping[str, Any]] = ()
    volume_mounts: Sequence[Mapping[str, Any]] = ()
    secret_env: Mapping[str, tuple[str, str]] = field(default_factory=dict)


class MultiNodeServiceChart(cdk8s.Chart):
    def __init__(self, scope: Construct, construct_id: str, values: MultiNodeServiceValues) -> None:
        super().__init__(scope, construct_id, disable_resource_name_hashes=True)
        labels = {APP_LABEL: values.name}
        meta = k8s.ObjectMeta(name=values.name, namespace=values.namespace, labels=labels)
        k8s.KubeServiceAccount(self, "ServiceAccount", metadata=meta, automount_service_account_token=False)
        lws = cdk8s.ApiObject(
            self,
            "LeaderWorkerSet",
            api_version=LWS_API,
            kind="LeaderWorkerSet",
            metadata=cdk8s.ApiObjectMetadata(name=values.name, namespace=values.namespace, labels=labels),
        )
        lws.add_json_patch(cdk8s.JsonPatch.add("/spec", _spec(values, labels)))
        leader = {**labels, ROLE_LABEL: LEADER}
        k8s.KubeService(
            self,
            "Service",
            metadata=meta,
            spec=k8s.ServiceSpec(
                selector=leader,
                ports=[k8s.ServicePort(name="http", port=PORT, target_port=k8s.IntOrString.from_string("http"))],
            ),
        )
        # Clients and scrapers reach the leader's server port; the namespace denies everything else.
        allow_server(
            self,
            name=values.name,
            namespace=values.namespace,
            labels=leader,
            port=PORT,
            load_balancer_cidrs=[],
            scraper_namespaces=[*values.scraper_namespaces, *values.client_namespaces],
            scraper_cidrs=[],
            https_egress=values.https_egress,
        )
        _allow_group(self, values, labels)


def _allow_group(scope: Construct, values: MultiNodeServiceValues, labels: Mapping[str, str]) -> None:
    """Every port between the pods of the set: Ray (GCS, object store and worker ports), NCCL's TCP bootstrap
    and its socket fallback pick ports at run time. EFA traffic itself bypasses the pod network."""
    peers = [k8s.NetworkPolicyPeer(pod_selector=k8s.LabelSelector(match_labels={SET_NAME_LABEL: values.name}))]
    k8s.KubeNetworkPolicy(
        scope,
        "GroupPolicy",
        metadata=k8s.ObjectMeta(name=f"{values.name}-group", namespace=values.namespace, labels=dict(labels)),
        spec=k8s.NetworkPolicySpec(
            pod_selector=k8s.LabelSelector(match_labels={SET_NAME_LABEL: values.name}),
            policy_types=["Ingress", "Egress"],
            ingress=[k8s.NetworkPolicyIngressRule(from_=peers)],
            egress=[k8s.NetworkPolicyEgressRule(to=peers)],
        ),
    )


def _spec(values: MultiNodeServiceValues, labels: Mapping[str, str]) -> dict[str, Any]:
    return {
        "replicas": values.groups,
        "startupPolicy": "LeaderCreated",
        "leaderWorkerTemplate": {
            "size": values.group_size,
            # A pipeline stage that fails leaves the model incomplete: the whole group restarts.
            "restartPolicy": "RecreateGroupOnPodRestart",
            "leaderTemplate": _template(values, labels, LEADER),
            "workerTemplate": _template(values, labels, WORKER),
        },
    }


def _template(values: MultiNodeServiceValues, labels: Mapping[str, str], role: str) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "server" if role == LEADER else "worker",
        "image": values.image,
        "command": list(values.leader_command if role == LEADER else values.worker_command),
        "env": [{"name": k, "value": v} for k, v in sorted(values.env.items())]
        + [
            {"name": k, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}
            for k, (secret, key) in sorted(values.secret_env.items())
        ],
        "resources": {"requests": dict(values.requests), "limits": dict(values.limits)},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [{"name": "dshm", "mountPath": "/dev/shm"}, *[dict(m) for m in values.volume_mounts]],
    }
    metadata: dict[str, Any] = {"labels": {**labels, ROLE_LABEL: role}}
    if role == LEADER:
        probe = {"httpGet": {"path": HEALTH_PATH, "port": "http"}}
        container["ports"] = [{"name": "http", "containerPort": PORT}]
        # Loading a model across nodes takes many minutes: the startup probe holds the others off until then.
        container["startupProbe"] = {**probe, "periodSeconds": 10, "failureThreshold": values.startup_failure_threshold}
        container["readinessProbe"] = {**probe, "periodSeconds": 5, "failureThreshold": 3}
        container["livenessProbe"] = {**probe, "periodSeconds": 15, "failureThreshold": 4, "timeoutSeconds": 5}
        metadata["annotations"] = scrape_annotations(PORT, "/metrics")
    return {
        "metadata": metadata,
        "spec": {
            "serviceAccountName": values.name,
            "automountServiceAccountToken": False,
            "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
            "nodeSelector": dict(values.node_selector),
            "tolerations": [dict(t) for t in values.tolerations],
            "affinity": {
                "podAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": [
                        {
                            "labelSelector": {"matchLabels": {SET_NAME_LABEL: values.name}},
                            "matchLabelKeys": [GROUP_KEY_LABEL],
                            "topologyKey": ZONE_LABEL,
                        }
                    ]
                }
            },
            "terminationGracePeriodSeconds": 120,
            "containers": [container],
            "volumes": [
                {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": values.shm_size}},
                *[dict(v) for v in values.volumes],
            ],
        },
    }
