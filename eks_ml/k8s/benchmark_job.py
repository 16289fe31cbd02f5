"""A load-generator Job against one model server, and the two NetworkPolicies that let it through the
serving namespace's default deny (client egress to the server port, server ingress from the client)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import cdk8s
from cdk8s_plus_35 import k8s
from constructs import Construct

from .network_policies import ANYWHERE, HTTPS_PORT, LINK_LOCAL

BENCHMARK_ROLE_LABEL = "eks-ml.io/benchmark-of"
RESULTS_DIR = "/results"
SCRATCH_DIR = "/scratch"  # HOME, Hugging Face and vLLM caches of the non-root client
RESULTS_MARKER = "=== eks-ml benchmark results ==="
CLIENT_UID = 1000


@dataclass(frozen=True, kw_only=True)
class BenchmarkJobValues:
    name: str  # the Job's name
    namespace: str
    service: str  # the model server: its Service name and its pods' app label
    server_labels: Mapping[str, str]
    server_port: int
    image: str
    script: str  # the shell loop over concurrency levels
    env: Mapping[str, str] = field(default_factory=dict)
    secret_env: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    node_selector: Mapping[str, str]
    requests: Mapping[str, str]
    volumes: Sequence[Mapping[str, Any]] = ()
    volume_mounts: Sequence[Mapping[str, Any]] = ()
    https_egress: bool  # the tokenizer comes from the Hugging Face Hub
    deadline_seconds: int


class BenchmarkJobChart(cdk8s.Chart):
    def __init__(self, scope: Construct, construct_id: str, jobs: Sequence[BenchmarkJobValues]) -> None:
        super().__init__(scope, construct_id, disable_resource_name_hashes=True)
        for values in jobs:
            self._job(values)
            self._policies(values)

    def _job(self, values: BenchmarkJobValues) -> None:
        labels = {BENCHMARK_ROLE_LABEL: values.service}
        container = k8s.Container(
            name="load",
            image=values.image,
            command=["/bin/sh", "-c", values.script],
            env=[k8s.EnvVar(name=n, value=v) for n, v in sorted(values.env.items())]
            + [
                k8s.EnvVar(
                    name=n, value_from=k8s.EnvVarSource(secret_key_ref=k8s.SecretKeySelector(name=secret, key=key))
                )
                for n, (secret, key) in sorted(values.secret_env.items())
            ],
            resources=k8s.ResourceRequirements(
                requests={n: k8s.Quantity.from_string(q) for n, q in values.requests.items()},
                limits={"memory": k8s.Quantity.from_string(values.requests["memory"])},
            ),
            security_context=k8s.SecurityContext(
                allow_privilege_escalation=False,
                capabilities=k8s.Capabilities(drop=["ALL"]),
                seccomp_profile=k8s.SeccompProfile(type="RuntimeDefault"),
                run_as_non_root=True,
                run_as_user=CLIENT_UID,
                run_as_group=CLIENT_UID,
            ),
            volume_mounts=[
                k8s.VolumeMount(name="results", mount_path=RESULTS_DIR),
                k8s.VolumeMount(name="scratch", mount_path=SCRATCH_DIR),
            ],
        )
        job = k8s.KubeJob(
            self,
            f"{values.name}-job",
            metadata=k8s.ObjectMeta(name=values.name, namespace=values.namespace, labels=labels),
            spec=k8s.JobSpec(
                backoff_limit=0,  # a failed sweep is read, not retried against a server in an unknown state
                active_deadline_seconds=values.deadline_seconds,
                ttl_seconds_after_finished=7 * 24 * 3600,  # the results live in the pod's log: keep it a week
                template=k8s.PodTemplateSpec(
                    metadata=k8s.ObjectMeta(labels=labels),
                    spec=k8s.PodSpec(
                        restart_policy="Never",
                        automount_service_account_token=False,
                        security_context=k8s.PodSecurityContext(
                            seccomp_profile=k8s.SeccompProfile(type="RuntimeDefault"), fs_group=CLIENT_UID
                        ),
                        node_selector=dict(values.node_selector),
                        containers=[container],
                        volumes=[
                            k8s.Volume(name="results", empty_dir=k8s.EmptyDirVolumeSource()),
                            k8s.Volume(name="scratch", empty_dir=k8s.EmptyDirVolumeSource()),
                        ],
                    ),
                ),
            ),
        )
        for volume in values.volumes:
            job.add_json_patch(cdk8s.JsonPatch.add("/spec/template/spec/volumes/-", dict(volume)))
        for mount in values.volume_mounts:
            job.add_json_patch(cdk8s.JsonPatch.add("/spec/template/spec/containers/0/volumeMounts/-", dict(mount)))

    def _policies(self, values: BenchmarkJobValues) -> None:
        client = {BENCHMARK_ROLE_LABEL: values.service}
        port = [k8s.NetworkPolicyPort(protocol="TCP", port=k8s.IntOrString.from_number(values.server_port))]
        egress = [
            k8s.NetworkPolicyEgressRule(
                to=[k8s.NetworkPolicyPeer(pod_selector=k8s.LabelSelector(match_labels=dict(values.server_labels)))],
                ports=port,
            )
        ]
        if values.https_egress:
            egress.append(
                k8s.NetworkPolicyEgressRule(
                    to=[k8s.NetworkPolicyPeer(ip_block=k8s.IpBlock(cidr=ANYWHERE, except_=[LINK_LOCAL]))],
                    ports=[k8s.NetworkPolicyPort(protocol="TCP", port=k8s.IntOrString.from_number(HTTPS_PORT))],
                )
            )
        k8s.KubeNetworkPolicy(
            self,
            f"{values.name}-client",
            metadata=k8s.ObjectMeta(name=f"{values.name}-client", namespace=values.namespace),
            spec=k8s.NetworkPolicySpec(
                pod_selector=k8s.LabelSelector(match_labels=client), policy_types=["Egress"], egress=egress
            ),
        )
        k8s.KubeNetworkPolicy(
            self,
            f"{values.name}-server",
            metadata=k8s.ObjectMeta(name=f"{values.name}-server", namespace=values.namespace),
            spec=k8s.NetworkPolicySpec(
                pod_selector=k8s.LabelSelector(match_labels=dict(values.server_labels)),
                policy_types=["Ingress"],
                ingress=[
                    k8s.NetworkPolicyIngressRule(
                        from_=[k8s.NetworkPolicyPeer(pod_selector=k8s.LabelSelector(match_labels=client))], ports=port
                    )
                ],
            ),
        )
