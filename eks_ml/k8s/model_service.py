"""A model server as Kubernetes objects: Deployment, Service, PodDisruptionBudget, autoscaling/v2
HorizontalPodAutoscaler on the server's queue depth (or a KEDA ScaledObject with a prometheus trigger on the
same series), an ALB Ingress, and the NetworkPolicy that admits the load balancer and the metrics scraper."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import cdk8s
from cdk8s_plus_35 import k8s
from constructs import Construct

from .network_policies import allow_server
from .scheduling import tolerations
from .scrape import scrape_annotations

PORT = 8000
HEALTH_PATH = "/health"
APP_LABEL = "app.kubernetes.io/name"
# Seconds the pod stays in the Service after SIGTERM so the load balancer stops sending it requests.
DRAIN_SECONDS = 15
MOUNTPOINT_S3_DRIVER = "s3.csi.aws.com"


@dataclass(frozen=True, kw_only=True)
class AutoscalingValues:
    min_replicas: int
    max_replicas: int
    queue_metric: str
    queue_target: int
    cpu_target: int
    scale_down_window_seconds: int
    # With KEDA: the Prometheus server KEDA's operator queries and the PromQL of the queue depth; None: an HPA.
    keda: KedaPrometheusValues | None = None


@dataclass(frozen=True, kw_only=True)
class KedaPrometheusValues:
    server_address: str
    query: str


@dataclass(frozen=True, kw_only=True)
class ModelServiceValues:
    name: str
    namespace: str
    image: str
    command: Sequence[str]
    args: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    # Linux capabilities the server needs back after dropping all (the Neuron runtime locks memory).
    capabilities: Sequence[str] = ()
    node_selector: Mapping[str, str]
    tolerations: Sequence[Mapping[str, str]]
    requests: Mapping[str, str]
    limits: Mapping[str, str]
    shm_size: str
    volumes: Sequence[Mapping[str, Any]] = ()
    volume_mounts: Sequence[Mapping[str, Any]] = ()
    startup_failure_threshold: int
    termination_grace_seconds: int
    autoscaling: AutoscalingValues
    # The exposure's ALB annotations (scheme, TLS listener, inbound CIDRs).
    ingress_annotations: Mapping[str, str]
    network: ServerNetworkValues
    ingress_class: str = "alb"
    s3_volume: S3VolumeValues | None = None
    # Environment variables read from Secrets: name -> (secret, key).
    secret_env: Mapping[str, tuple[str, str]] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class ServerNetworkValues:
    """Who may reach the server port (the load balancer's subnets, the in-cluster scrapers' namespaces,
    the managed scraper's subnets) and whether the server may open HTTPS connections out."""

    load_balancer_cidrs: Sequence[str]
    scraper_namespaces: Sequence[str]
    scraper_cidrs: Sequence[str]
    https_egress: bool


@dataclass(frozen=True, kw_only=True)
class S3VolumeValues:
    """A read-only Mountpoint for Amazon S3 volume of a bucket prefix, bound to the service's claim."""

    bucket: str
    prefix: str
    region: str
    size: str = "1Ti"  # required by the API, ignored by Mountpoint
    # Mountpoint's local data cache: an emptyDir of this size on the Mountpoint Pod, which the CSI driver shares
    # between the workload pods on a node that mount this volume (None: no cache, every read goes to S3).
    cache_gib: int | None = None


class ModelServiceChart(cdk8s.Chart):
    def __init__(self, scope: Construct, construct_id: str, values: ModelServiceValues) -> None:
        super().__init__(scope, construct_id, disable_resource_name_hashes=True)
        labels = {APP_LABEL: values.name}
        meta = k8s.ObjectMeta(name=values.name, namespace=values.namespace, labels=labels)
        k8s.KubeServiceAccount(self, "ServiceAccount", metadata=meta, automount_service_account_token=False)
        self._deployment(values, labels, meta)
        k8s.KubeService(
            self,
            "Service",
            metadata=meta,
            spec=k8s.ServiceSpec(
                selector=labels,
                ports=[k8s.ServicePort(name="http", port=PORT, target_port=k8s.IntOrString.from_string("http"))],
            ),
        )
        # Voluntary disruptions (node consolidation, upgrades) take one replica at a time.
        k8s.KubePodDisruptionBudget(
            self,
            "Budget",
            metadata=meta,
            spec=k8s.PodDisruptionBudgetSpec(
                max_unavailable=k8s.IntOrString.from_number(1),
                selector=k8s.LabelSelector(match_labels=labels),
            ),
        )
        self._autoscaler(values, meta)
        self._ingress(values, meta)
        allow_server(
            self,
            name=values.name,
            namespace=values.namespace,
            labels=labels,
            port=PORT,
            load_balancer_cidrs=values.network.load_balancer_cidrs,
            scraper_namespaces=values.network.scraper_namespaces,
            scraper_cidrs=values.network.scraper_cidrs,
            https_egress=values.network.https_egress,
        )
        if values.s3_volume is not None:
            self._s3_volume(values, values.s3_volume, meta)

    def _s3_volume(self, values: ModelServiceValues, s3: S3VolumeValues, meta: k8s.ObjectMeta) -> None:
        name = f"{values.namespace}-{values.name}-weights"
        capacity = {"storage": k8s.Quantity.from_string(s3.size)}
        options = [f"region {s3.region}"] + ([f"prefix {s3.prefix}"] if s3.prefix else [])
        attributes = {"bucketName": s3.bucket}
        if s3.cache_gib is not None:
            # CSI driver v2 volume attributes (awslabs/mountpoint-s3-csi-driver docs/CACHING.md); with a disk
            # medium the driver also caps Mountpoint's cache at this limit, so the Mountpoint Pod is not evicted.
            attributes |= {"cache": "emptyDir", "cacheEmptyDirSizeLimit": f"{s3.cache_gib}Gi"}
        k8s.KubePersistentVolume(
            self,
            "WeightsVolume",
            metadata=k8s.ObjectMeta(name=name, labels=meta.labels),
            spec=k8s.PersistentVolumeSpec(
                capacity=capacity,
                access_modes=["ReadOnlyMany"],
                persistent_volume_reclaim_policy="Retain",
                storage_class_name="",
                mount_options=options,
                csi=k8s.CsiPersistentVolumeSource(
                    driver=MOUNTPOINT_S3_DRIVER, volume_handle=name, volume_attributes=attributes
                ),
            ),
        )
        k8s.KubePersistentVolumeClaim(
            self,
            "WeightsClaim",
            metadata=k8s.ObjectMeta(name=f"{values.name}-weights", namespace=values.namespace, labels=meta.labels),
            spec=k8s.PersistentVolumeClaimSpec(
                access_modes=["ReadOnlyMany"],
                storage_class_name="",
                volume_name=name,
                resources=k8s.VolumeResourceRequirements(requests=capacity),
            ),
        )

    def _deployment(self, values: ModelServiceValues, labels: dict[str, str], meta: k8s.ObjectMeta) -> None:
        probe = k8s.HttpGetAction(path=HEALTH_PATH, port=k8s.IntOrString.from_string("http"))
        spread = [
            k8s.TopologySpreadConstraint(
                max_skew=1,
                topology_key=key,
                when_unsatisfiable="ScheduleAnyway",  # spread when possible, never block a scale-up
                label_selector=k8s.LabelSelector(match_labels=labels),
            )
            for key in ("topology.kubernetes.io/zone", "kubernetes.io/hostname")
        ]
        container = k8s.Container(
            name="server",
            image=values.image,
            command=list(values.command),
            args=list(values.args),
            env=[k8s.EnvVar(name=name, value=value) for name, value in sorted(values.env.items())]
            + [
                k8s.EnvVar(
                    name=name,
                    value_from=k8s.EnvVarSource(secret_key_ref=k8s.SecretKeySelector(name=secret, key=key)),
                )
                for name, (secret, key) in sorted(values.secret_env.items())
            ],
            ports=[k8s.ContainerPort(name="http", container_port=PORT)],
            resources=k8s.ResourceRequirements(
                requests={name: k8s.Quantity.from_string(q) for name, q in values.requests.items()},
                limits={name: k8s.Quantity.from_string(q) for name, q in values.limits.items()},
            ),
            # Model loading takes minutes: the startup probe holds off the others until the server is up.
            startup_probe=k8s.Probe(
                http_get=probe, period_seconds=10, failure_threshold=values.startup_failure_threshold
            ),
            readiness_probe=k8s.Probe(http_get=probe, period_seconds=5, failure_threshold=3),
            liveness_probe=k8s.Probe(http_get=probe, period_seconds=15, failure_threshold=4, timeout_seconds=5),
            lifecycle=k8s.Lifecycle(pre_stop=k8s.LifecycleHandler(sleep=k8s.SleepAction(seconds=DRAIN_SECONDS))),
            # As strict as vLLM allows: it runs as root and writes caches, so no runAsNonRoot or read-only root.
            security_context=k8s.SecurityContext(
                allow_privilege_escalation=False,
                capabilities=k8s.Capabilities(drop=["ALL"], add=list(values.capabilities) or None),
                seccomp_profile=k8s.SeccompProfile(type="RuntimeDefault"),
            ),
            volume_mounts=[k8s.VolumeMount(name="dshm", mount_path="/dev/shm")],
        )
        shm = k8s.EmptyDirVolumeSource(medium="Memory", size_limit=k8s.Quantity.from_string(values.shm_size))
        deployment = k8s.KubeDeployment(
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
                        labels=labels,
                        annotations=scrape_annotations(PORT, "/metrics"),
                    ),
                    spec=k8s.PodSpec(
                        service_account_name=values.name,
                        automount_service_account_token=False,
                        security_context=k8s.PodSecurityContext(
                            seccomp_profile=k8s.SeccompProfile(type="RuntimeDefault")
                        ),
                        node_selector=dict(values.node_selector),
                        tolerations=tolerations(values.tolerations),
                        topology_spread_constraints=spread,
                        termination_grace_period_seconds=values.termination_grace_seconds,
                        containers=[container],
                        volumes=[k8s.Volume(name="dshm", empty_dir=shm)],
                    ),
                ),
            ),
        )
        # Weight volumes arrive as plain Kubernetes JSON (a CSI claim, a PVC, or node-local scratch).
        for volume in values.volumes:
            deployment.add_json_patch(cdk8s.JsonPatch.add("/spec/template/spec/volumes/-", dict(volume)))
        for mount in values.volume_mounts:
            deployment.add_json_patch(
                cdk8s.JsonPatch.add("/spec/template/spec/containers/0/volumeMounts/-", dict(mount))
            )

    def _autoscaler(self, values: ModelServiceValues, meta: k8s.ObjectMeta) -> None:
        scaling = values.autoscaling
        behavior = _behavior(scaling)
        if scaling.keda is not None:
            self._scaled_object(values, scaling, scaling.keda, behavior)
            return
        queue_hpa(self, values.name, meta, scaling)

    def _scaled_object(
        self,
        values: ModelServiceValues,
        scaling: AutoscalingValues,
        keda: KedaPrometheusValues,
        behavior: dict[str, Any],
    ) -> None:
        """KEDA's prometheus trigger (kedacore/keda @ v2.20.2, pkg/scalers/prometheus_scaler.go: serverAddress,
        query, threshold, activationThreshold; metricType AverageValue divides the sum by the replicas, like
        the HPA's Pods metric) with the HPA's own scaling behaviour, which KEDA passes to the HPA it creates."""
        cdk8s.ApiObject(
            self,
            "ScaledObject",
            api_version="keda.sh/v1alpha1",
            kind="ScaledObject",
            metadata=cdk8s.ApiObjectMetadata(
                name=values.name, namespace=values.namespace, labels={APP_LABEL: values.name}
            ),
        ).add_json_patch(
            cdk8s.JsonPatch.add(
                "/spec",
                {
                    "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": values.name},
                    "minReplicaCount": scaling.min_replicas,
                    "maxReplicaCount": scaling.max_replicas,
                    # Applies only to the last replica (scale to zero); the behaviour paces the others.
                    "cooldownPeriod": scaling.scale_down_window_seconds,
                    "advanced": {"horizontalPodAutoscalerConfig": {"behavior": behavior}},
                    "triggers": [
                        {
                            "type": "prometheus",
                            "metricType": "AverageValue",
                            "metadata": {
                                "serverAddress": keda.server_address,
                                "query": keda.query,
                                "threshold": str(scaling.queue_target),
                                "activationThreshold": "0",
                                # No series while no replica runs: read as 0 instead of failing the scaler.
                                "ignoreNullValues": "true",
                            },
                        }
                    ],
                },
            )
        )

    def _ingress(self, values: ModelServiceValues, meta: k8s.ObjectMeta) -> None:
        k8s.KubeIngress(
            self,
            "Ingress",
            metadata=k8s.ObjectMeta(
                name=values.name,
                namespace=values.namespace,
                labels=meta.labels,
                annotations={
                    **values.ingress_annotations,
                    "alb.ingress.kubernetes.io/target-type": "ip",
                    "alb.ingress.kubernetes.io/healthcheck-path": HEALTH_PATH,
                    # Generation requests stream for minutes.
                    "alb.ingress.kubernetes.io/load-balancer-attributes": "idle_timeout.timeout_seconds=600",
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
                                            name=values.name, port=k8s.ServiceBackendPort(number=PORT)
                                        )
                                    ),
                                )
                            ]
                        )
                    )
                ],
            ),
        )


def queue_hpa(
    scope: Construct,
    name: str,
    meta: k8s.ObjectMeta,
    scaling: AutoscalingValues,
    *,
    scale_down_period_seconds: int = 120,
) -> None:
    """The autoscaling/v2 HPA of a model server (vLLM or Triton): waiting requests per replica, CPU as the
    fallback, and the behaviour of :func:`_behavior`."""
    hpa = k8s.KubeHorizontalPodAutoscalerV2(
        scope,
        "Autoscaler",
        metadata=meta,
        spec=k8s.HorizontalPodAutoscalerSpecV2(
            scale_target_ref=k8s.CrossVersionObjectReferenceV2(api_version="apps/v1", kind="Deployment", name=name),
            min_replicas=scaling.min_replicas,
            max_replicas=scaling.max_replicas,
            metrics=[
                # Queue depth per replica: requests waiting means the replicas are saturated.
                k8s.MetricSpecV2(
                    type="Pods",
                    pods=k8s.PodsMetricSourceV2(
                        metric=k8s.MetricIdentifierV2(name=scaling.queue_metric),
                        target=k8s.MetricTargetV2(
                            type="AverageValue", average_value=k8s.Quantity.from_number(scaling.queue_target)
                        ),
                    ),
                ),
                # Fallback when the queue metric is missing (adapter or Prometheus down).
                k8s.MetricSpecV2(
                    type="Resource",
                    resource=k8s.ResourceMetricSourceV2(
                        name="cpu",
                        target=k8s.MetricTargetV2(type="Utilization", average_utilization=scaling.cpu_target),
                    ),
                ),
            ],
        ),
    )
    hpa.add_json_patch(cdk8s.JsonPatch.add("/spec/behavior", _behavior(scaling, scale_down_period_seconds)))


def _behavior(scaling: AutoscalingValues, scale_down_period_seconds: int = 120) -> dict[str, Any]:
    """autoscaling/v2 behaviour: up fast (4 pods or double per minute), down one replica at a time after the
    stabilisation window (a removed replica costs a full model load to bring back)."""
    return {
        "scaleUp": {
            "stabilizationWindowSeconds": 0,
            "selectPolicy": "Max",
            "policies": [
                {"type": "Pods", "value": 4, "periodSeconds": 60},
                {"type": "Percent", "value": 100, "periodSeconds": 60},
            ],
        },
        "scaleDown": {
            "stabilizationWindowSeconds": scaling.scale_down_window_seconds,
            "policies": [{"type": "Pods", "value": 1, "periodSeconds": scale_down_period_seconds}],
        },
    }
