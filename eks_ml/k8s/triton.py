"""NVIDIA Triton Inference Server as Kubernetes objects: ServiceAccount (its IAM role for the S3 model
repository), Deployment, Service (HTTP, gRPC, metrics), PodDisruptionBudget, an autoscaling/v2
HorizontalPodAutoscaler on Triton's pending requests, an ALB Ingress on the HTTP port, and the
NetworkPolicy that admits the load balancer to HTTP and the metrics scrapers to the metrics port.

Ports and paths: Triton v2.71.0 (container 26.07), docs/user_guide/metrics.md (metrics on 8002 at
/metrics), docs/getting_started/quickstart.md (HTTP 8000, gRPC 8001, /v2/health/ready), src/command_line_parser.cc
(--http-port, --grpc-port, --metrics-port).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import cdk8s
from cdk8s_plus_35 import k8s
from constructs import Construct

from .model_service import APP_LABEL, DRAIN_SECONDS, AutoscalingValues, queue_hpa
from .network_policies import ANYWHERE, LINK_LOCAL, NAMESPACE_NAME_LABEL
from .scheduling import tolerations
from .scrape import scrape_annotations

HTTP_PORT = 8000
GRPC_PORT = 8001
METRICS_PORT = 8002
READY_PATH = "/v2/health/ready"
LIVE_PATH = "/v2/health/live"
METRICS_PATH = "/metrics"
MODEL_CACHE_DIR = "/model-cache"  # where Triton copies the S3 repository (TRITON_AWS_MOUNT_DIRECTORY)
IRSA_ANNOTATION = "eks.amazonaws.com/role-arn"  # read by EKS's pod identity webhook (IAM roles for service accounts)
HTTPS_PORT = 443  # S3 (the model repository) and STS (the web identity exchange); their addresses are not fixed


@dataclass(frozen=True, kw_only=True)
class TritonValues:
    name: str
    namespace: str
    image: str
    args: Sequence[str]
    env: Mapping[str, str]
    pod_labels: Mapping[str, str] = field(default_factory=dict)  # beyond the app label (a Fargate selector's)
    role_arn: str
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: Sequence[Mapping[str, str]] = ()
    requests: Mapping[str, str]
    limits: Mapping[str, str]
    shm_size: str
    startup_failure_threshold: int
    autoscaling: AutoscalingValues
    ingress_annotations: Mapping[str, str]
    load_balancer_cidrs: Sequence[str]
    scraper_namespaces: Sequence[str]
    scraper_cidrs: Sequence[str]
    ingress_class: str = "alb"


class TritonChart(cdk8s.Chart):
    def __init__(self, scope: Construct, construct_id: str, values: TritonValues) -> None:
        super().__init__(scope, construct_id, disable_resource_name_hashes=True)
        labels = {APP_LABEL: values.name}
        meta = k8s.ObjectMeta(name=values.name, namespace=values.namespace, labels=labels)
        k8s.KubeServiceAccount(
            self,
            "ServiceAccount",
            metadata=k8s.ObjectMeta(
                name=values.name,
                namespace=values.namespace,
                labels=labels,
                annotations={IRSA_ANNOTATION: values.role_arn},
            ),
            automount_service_account_token=False,  # the webhook mounts the web identity token on its own
        )
        self._deployment(values, labels, meta)
        k8s.KubeService(
            self,
            "Service",
            metadata=meta,
            spec=k8s.ServiceSpec(
                selector=labels,
                ports=[
                    k8s.ServicePort(name=name, port=port, target_port=k8s.IntOrString.from_string(name))
                    for name, port in (("http", HTTP_PORT), ("grpc", GRPC_PORT), ("metrics", METRICS_PORT))
                ],
            ),
        )
        k8s.KubePodDisruptionBudget(
            self,
            "Budget",
            metadata=meta,
            spec=k8s.PodDisruptionBudgetSpec(
                max_unavailable=k8s.IntOrString.from_number(1), selector=k8s.LabelSelector(match_labels=labels)
            ),
        )
        self._autoscaler(values, meta)
        self._ingress(values, meta)
        self._network_policy(values, labels, meta)

    def _deployment(self, values: TritonValues, labels: dict[str, str], meta: k8s.ObjectMeta) -> None:
        ready = k8s.HttpGetAction(path=READY_PATH, port=k8s.IntOrString.from_string("http"))
        live = k8s.HttpGetAction(path=LIVE_PATH, port=k8s.IntOrString.from_string("http"))
        container = k8s.Container(
            name="server",
            image=values.image,
            command=["tritonserver"],
            args=list(values.args),
            env=[k8s.EnvVar(name=name, value=value) for name, value in sorted(values.env.items())],
            ports=[
                k8s.ContainerPort(name="http", container_port=HTTP_PORT),
                k8s.ContainerPort(name="grpc", container_port=GRPC_PORT),
                k8s.ContainerPort(name="metrics", container_port=METRICS_PORT),
            ],
            resources=k8s.ResourceRequirements(
                requests={name: k8s.Quantity.from_string(q) for name, q in values.requests.items()},
                limits={name: k8s.Quantity.from_string(q) for name, q in values.limits.items()},
            ),
            # Copying the repository from S3 and loading every model takes minutes on a cold start.
            startup_probe=k8s.Probe(
                http_get=ready, period_seconds=10, failure_threshold=values.startup_failure_threshold
            ),
            readiness_probe=k8s.Probe(http_get=ready, period_seconds=5, failure_threshold=3),
            liveness_probe=k8s.Probe(http_get=live, period_seconds=15, failure_threshold=4, timeout_seconds=5),
            lifecycle=k8s.Lifecycle(pre_stop=k8s.LifecycleHandler(sleep=k8s.SleepAction(seconds=DRAIN_SECONDS))),
            # The Triton image runs as root and writes to its file system: no runAsNonRoot or read-only root.
            security_context=k8s.SecurityContext(
                allow_privilege_escalation=False,
                capabilities=k8s.Capabilities(drop=["ALL"]),
                seccomp_profile=k8s.SeccompProfile(type="RuntimeDefault"),
            ),
            volume_mounts=[
                k8s.VolumeMount(name="dshm", mount_path="/dev/shm"),
                k8s.VolumeMount(name="model-cache", mount_path=MODEL_CACHE_DIR),
            ],
        )
        shm = k8s.EmptyDirVolumeSource(medium="Memory", size_limit=k8s.Quantity.from_string(values.shm_size))
        spread = [
            k8s.TopologySpreadConstraint(
                max_skew=1,
                topology_key=key,
                when_unsatisfiable="ScheduleAnyway",
                label_selector=k8s.LabelSelector(match_labels=labels),
            )
            for key in ("topology.kubernetes.io/zone", "kubernetes.io/hostname")
        ]
        k8s.KubeDeployment(
            self,
            "Deployment",
            metadata=meta,
            # No replicas: the HorizontalPodAutoscaler owns the count.
            spec=k8s.DeploymentSpec(
                selector=k8s.LabelSelector(match_labels=labels),
                strategy=k8s.DeploymentStrategy(
                    type="RollingUpdate",
                    rolling_update=k8s.RollingUpdateDeployment(
                        max_surge=k8s.IntOrString.from_number(1), max_unavailable=k8s.IntOrString.from_number(0)
                    ),
                ),
                template=k8s.PodTemplateSpec(
                    metadata=k8s.ObjectMeta(
                        labels={**labels, **values.pod_labels},
                        annotations=scrape_annotations(METRICS_PORT, METRICS_PATH),
                    ),
                    spec=k8s.PodSpec(
                        service_account_name=values.name,
                        automount_service_account_token=False,
                        security_context=k8s.PodSecurityContext(
                            seccomp_profile=k8s.SeccompProfile(type="RuntimeDefault")
                        ),
                        node_selector=dict(values.node_selector) or None,
                        tolerations=tolerations(values.tolerations) or None,
                        topology_spread_constraints=spread,
                        termination_grace_period_seconds=60,
                        containers=[container],
                        volumes=[
                            k8s.Volume(name="dshm", empty_dir=shm),
                            k8s.Volume(name="model-cache", empty_dir=k8s.EmptyDirVolumeSource()),
                        ],
                    ),
                ),
            ),
        )

    def _autoscaler(self, values: TritonValues, meta: k8s.ObjectMeta) -> None:
        # Pending requests per replica (Triton's queue), CPU as the fallback; Triton replicas load in seconds to
        # minutes, so scale-down may remove one a minute.
        queue_hpa(self, values.name, meta, values.autoscaling, scale_down_period_seconds=60)

    def _ingress(self, values: TritonValues, meta: k8s.ObjectMeta) -> None:
        k8s.KubeIngress(
            self,
            "Ingress",
            metadata=k8s.ObjectMeta(
                name=values.name,
                namespace=values.namespace,
                labels=meta.labels,
                annotations={
                    **values.ingress_annotations,
                    # IP targets: the only kind that reaches Fargate pods (EKS User Guide, Fargate considerations).
                    "alb.ingress.kubernetes.io/target-type": "ip",
                    "alb.ingress.kubernetes.io/healthcheck-path": READY_PATH,
                },
            ),
            spec=k8s.IngressSpec(
                ingress_class_name=values.ingress_class,
                rules=[
                    k8s.IngressRule(
                        http=k8s.HttpIngressRuleValue(
                            paths=[
                                k8s.HttpIngressPath(
                                    path="/",
                                    path_type="Prefix",
                                    backend=k8s.IngressBackend(
                                        service=k8s.IngressServiceBackend(
                                            name=values.name, port=k8s.ServiceBackendPort(number=HTTP_PORT)
                                        )
                                    ),
                                )
                            ]
                        )
                    )
                ],
            ),
        )

    def _network_policy(self, values: TritonValues, labels: dict[str, str], meta: k8s.ObjectMeta) -> None:
        def tcp(port: int) -> k8s.NetworkPolicyPort:
            return k8s.NetworkPolicyPort(protocol="TCP", port=k8s.IntOrString.from_number(port))

        def blocks(cidrs: Sequence[str]) -> list[k8s.NetworkPolicyPeer]:
            return [k8s.NetworkPolicyPeer(ip_block=k8s.IpBlock(cidr=cidr)) for cidr in dict.fromkeys(cidrs)]

        scrapers = blocks(values.scraper_cidrs) + [
            k8s.NetworkPolicyPeer(namespace_selector=k8s.LabelSelector(match_labels={NAMESPACE_NAME_LABEL: ns}))
            for ns in values.scraper_namespaces
        ]
        k8s.KubeNetworkPolicy(
            self,
            "NetworkPolicy",
            metadata=meta,
            spec=k8s.NetworkPolicySpec(
                pod_selector=k8s.LabelSelector(match_labels=labels),
                policy_types=["Ingress", "Egress"],
                ingress=[
                    k8s.NetworkPolicyIngressRule(from_=blocks(values.load_balancer_cidrs), ports=[tcp(HTTP_PORT)]),
                    k8s.NetworkPolicyIngressRule(from_=scrapers, ports=[tcp(METRICS_PORT)]),
                ],
                egress=[
                    k8s.NetworkPolicyEgressRule(
                        to=[k8s.NetworkPolicyPeer(ip_block=k8s.IpBlock(cidr=ANYWHERE, except_=[LINK_LOCAL]))],
                        ports=[tcp(HTTPS_PORT)],
                    )
                ],
            ),
        )
