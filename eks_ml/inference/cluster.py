"""InferenceCluster: the EKS base plus Karpenter pools for model servers (and, as they land, model
services with autoscaling)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import cdk8s
from aws_cdk import Annotations, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from constructs import Construct

from .. import helm, plan
from .._naming import check_unique_ids, pascal
from ..cluster import BaseCluster, BaseClusterProps
from ..cluster._typing import as_icluster
from ..cluster.base import check_base_props
from ..cluster.device_plugins import install_device_plugins
from ..cluster.registries import eks_image_registry
from ..errors import Problems
from ..guards import expect_all, expect_bool, expect_instance, expect_list_of, expect_str, expect_str_map
from ..k8s.benchmark_job import BenchmarkJobChart
from ..k8s.image_prepull import ImagePrePullChart, PrePullValues
from ..k8s.inference_namespace import InferenceNamespaceChart
from ..k8s.karpenter_pools import NodeClassValues, NodePoolsChart
from ..k8s.model_service import ModelServiceChart, ModelServiceValues
from ..k8s.triton import TritonChart
from ..kube_names import check_namespace
from ..manifest_bundle import PRELUDE, WORKLOADS, ManifestBundle
from ..network import KARPENTER_DISCOVERY_TAG
from ..placement import FargateSelector, Taint, karpenter_pool, workloads_from_objects
from ..placement.nodes import AUTO_MODE_DEVICE_RESOURCES
from .batch import BatchInference, BatchInferenceJobProps
from .benchmark_job import BenchmarkJobProps, cpu_pool
from .exposure import load_balancer_cidrs, subnet_cidrs
from .fargate import FargateCapacity, FargateProfileProps, fargate_labels
from .karpenter import Karpenter, check_cluster_name_for_karpenter
from .keda import Keda, add_queue_workers
from .load_balancer import LoadBalancerController
from .metrics import MetricsPipeline
from .model_service import SCALED_TO_ZERO_WARNING, Autoscaler, ModelServiceProps, S3Weights
from .multi_node import MultiNodeServiceProps, check_services, efa_instance_types
from .multi_node_serving import MultiNodeServing, efa_group_tags
from .node_os import DEFAULT_AMI_ALIAS, DEFAULT_BOTTLEROCKET_AMI_ALIAS, NODE_OS_LABEL, NodeOS, check_ami_alias
from .pools import POOL_LABEL, NodePoolProps, PoolKind, default_pools, plugin_vendors
from .queue_worker import QueueWorkerProps
from .start_budget import check_node_cache, start_budget_warning
from .triton import ROLE_NAME_MAX, TritonModelAccess, TritonServiceProps, role_arn
from .weights import S3WeightsDriver

PRIVATE = ec2.SubnetType.PRIVATE_WITH_EGRESS


@dataclass(frozen=True, kw_only=True)
class InferenceClusterProps:
    """Props of :class:`InferenceCluster`.

    base: the EKS base cluster to create (Auto Mode there swaps Karpenter for EKS Auto Mode NodePools).
    pools: Default: an NVIDIA pool (g5/g6/g6e) on Bottlerocket, an Inferentia2 pool and a CPU pool on AL2023
        (each pool's ``os``; eks_ml.inference.node_os).
    ami_alias: the AL2023 release of AL2023 pools. Default: al2023@v20260728.
    bottlerocket_ami_alias: the Bottlerocket release of Bottlerocket pools. Default: bottlerocket@v1.64.0.
    subnet_tags: tags of the subnets Karpenter launches into. Default: karpenter.sh/discovery=eks-ml,
        which MlVpc puts on its private subnets.
    model_services: vLLM servers, each autoscaled on its queue depth. Default: none.
    namespace: where model services run. Default: inference.
    managed_scraper_access: let the Amazon Managed Service for Prometheus scraper (ObservabilityAddon with
        Backend.PROMETHEUS) through the serving namespace's default-deny NetworkPolicies, from the private
        subnets its network interfaces use. Default: False.
    benchmarks: load sweeps against model services (eks_ml.inference.benchmark_job), rendered for
        ``benchmarks_yaml`` (and export-gitops), never applied by the stack. Default: none.
    batch_jobs: offline vLLM passes over prompts in S3 (eks_ml.inference.batch), queued through Kueue, which
        is installed only when there is one. Default: none.
    queue_workers: workers scaled by KEDA on an SQS queue's depth or an MSK topic's consumer lag, to zero when
        idle (eks_ml.inference.queue_worker); KEDA is installed only when there are some. Default: none.
    prepull_images: keep each model service's image on every node of its pool with a DaemonSet that runs it
        asleep (eks_ml.k8s.image_prepull). Default: True.
    fargate: a Fargate profile for serverless CPU serving (its pods are proven to fit Fargate's rules).
        Default: none.
    triton_services: NVIDIA Triton servers for non-LLM models, on a GPU pool or (instance_type None) on the
        Fargate profile, each autoscaled on its pending requests. Default: none.
    multi_node_services: models bigger than one node, each served by LeaderWorkerSet groups of EFA-wired
        nodes from a Karpenter pool of its own (eks_ml.inference.multi_node). Default: none (no LWS install).
    multi_node_namespace: where they run. Default: multi-node.
    """

    base: BaseClusterProps
    pools: Sequence[NodePoolProps] = field(default_factory=default_pools)
    ami_alias: str = DEFAULT_AMI_ALIAS
    bottlerocket_ami_alias: str = DEFAULT_BOTTLEROCKET_AMI_ALIAS
    subnet_tags: Mapping[str, str] = field(default_factory=lambda: {KARPENTER_DISCOVERY_TAG: "eks-ml"})
    model_services: Sequence[ModelServiceProps] = ()
    namespace: str = "inference"
    managed_scraper_access: bool = False
    benchmarks: Sequence[BenchmarkJobProps] = ()
    batch_jobs: Sequence[BatchInferenceJobProps] = ()
    queue_workers: Sequence[QueueWorkerProps] = ()
    prepull_images: bool = True
    fargate: FargateProfileProps | None = None
    triton_services: Sequence[TritonServiceProps] = ()
    multi_node_services: Sequence[MultiNodeServiceProps] = ()
    multi_node_namespace: str = "multi-node"


class InferenceCluster(Construct):
    """Attributes: ``base``, ``cluster``, ``karpenter`` (None with Auto Mode), ``pools_chart``,
    ``service_charts`` (name -> chart), ``applied_charts`` ((file stem, chart) in apply order),
    ``namespace`` (of the model services), ``pool_specs`` (every instance type a pool may launch),
    ``device_plugins`` (name -> HelmChart; none with Auto Mode), ``model`` (the cluster model); with
    model services also ``load_balancer`` (None with Auto Mode), ``metrics`` and ``s3_weights`` (None
    without S3 weights), ``prepull_chart`` (None without it); ``admits_managed_scraper``
    (props.managed_scraper_access)."""

    def __init__(self, scope: Construct, construct_id: str, props: InferenceClusterProps) -> None:
        super().__init__(scope, construct_id)
        problems = Problems()
        _check_props(props, problems, region=Stack.of(self).region)
        problems.raise_if_any()

        self.base = BaseCluster(self, "Base", props.base)
        self.cluster = self.base.cluster
        self.model = self.base.model
        self.namespace = props.namespace
        self.pool_specs = [spec for pool in props.pools for spec in pool.specs()]
        cluster = as_icluster(self.cluster)
        auto_mode = props.base.auto_mode
        # Objects applied before the Helm releases, and after them (eks_ml.manifest_bundle).
        self.prelude = ManifestBundle(
            self, PRELUDE, cluster=cluster, after=[self.base.system_nodes] if self.base.system_nodes else []
        )
        self.workloads = ManifestBundle(self, WORKLOADS, cluster=cluster)
        # One Job upgrades the CRDs of every chart here that ships them in crds/ (Auto Mode brings its own).
        if not auto_mode:
            helm.upgrade_crds(
                self.prelude,
                [helm.KARPENTER, *([helm.AWS_LOAD_BALANCER_CONTROLLER] if _serves(props) else [])],
                placement=self.base.system_placement.values(),
                model=self.model,
            )
        self.karpenter = (
            None
            if auto_mode
            else Karpenter(
                self,
                "Karpenter",
                cluster=cluster,
                cluster_name=props.base.cluster_name,
                model=self.model,
                placement=self.base.system_placement,
                after=[self.base.system_nodes] if self.base.system_nodes else [],
            )
        )
        pool_values = [pool.values(auto_mode=auto_mode) for pool in props.pools]
        # Each multi-node service's own pool, with EFA interfaces (eks_ml.inference.multi_node).
        efa_tags = efa_group_tags(props.base.cluster_name)
        all_pools = [*props.pools, *(service.pool() for service in props.multi_node_services)]
        pool_values += [service.pool_values(efa_tags) for service in props.multi_node_services]
        self.pool_specs += [spec for service in props.multi_node_services for spec in service.pool().specs()]
        for pool, values in zip(all_pools, pool_values, strict=True):
            self.model.add_source(
                karpenter_pool(
                    pool.name,
                    specs=pool.specs(),
                    labels=values.labels,
                    taints=[Taint(t["key"], t.get("value"), t["effect"]) for t in values.taints],
                    capacity_types=pool.capacity_types,
                    builtin_resources=AUTO_MODE_DEVICE_RESOURCES
                    if auto_mode
                    else pool.node_os.builtin_device_resources,
                    kind="EKS Auto Mode NodePool" if auto_mode else "Karpenter NodePool",
                )
            )
        # Auto Mode nodes bring their own device plugins, and so do Bottlerocket's NVIDIA nodes; Karpenter's AL2023
        # nodes have drivers only.
        self.device_plugins = (
            {}
            if auto_mode
            else install_device_plugins(
                self,
                cluster=cluster,
                model=self.model,
                vendors=plugin_vendors(all_pools),
                nvidia_node_selector={NODE_OS_LABEL: NodeOS.AL2023.value},
                efa_instance_types=efa_instance_types(props.multi_node_services),
                efa_image_repository=(
                    f"{eks_image_registry(Stack.of(self).region)}/eks/aws-efa-k8s-device-plugin"
                    if props.multi_node_services
                    else ""
                ),
            )
        )
        for chart in self.device_plugins.values():
            for dependency in [self.base.system_nodes] if self.base.system_nodes else []:
                chart.node.add_dependency(dependency)
        # Fargate takes only pods created after its profile exists: the workloads wait for it.
        self.fargate = (
            FargateCapacity(
                self,
                "Fargate",
                cluster=self.cluster,
                cluster_name=props.base.cluster_name,
                props=props.fargate,
                serving_namespace=props.namespace,
                model=self.model,
            )
            if props.fargate
            else None
        )
        if self.fargate:
            self.workloads.node.add_dependency(self.fargate.profile)
        node_class = (
            NodeClassValues(
                ami_aliases={
                    NodeOS.AL2023.value: props.ami_alias,
                    NodeOS.BOTTLEROCKET.value: props.bottlerocket_ami_alias,
                },
                role=self.karpenter.node_role_name,
                subnet_tags=props.subnet_tags,
                # EKS tags the cluster security group it creates with the cluster's name.
                security_group_tags={"aws:eks:cluster-name": props.base.cluster_name},
                tags={"eks-ml.io/cluster": props.base.cluster_name},
            )
            if self.karpenter
            else None
        )
        self.pools_chart = NodePoolsChart(
            cdk8s.App(),
            "NodePools",
            pools=pool_values,
            node_class=node_class,
        )
        self.workloads.add_chart(self.pools_chart)
        # Every chart the stack applies, in apply order, for GitOps export (eks_ml.gitops).
        self.applied_charts: list[tuple[str, cdk8s.Chart]] = [("node-pools", self.pools_chart)]
        if self.karpenter:
            self.workloads.node.add_dependency(self.karpenter.chart)  # CRDs and controller first
        self.service_charts: dict[str, ModelServiceChart] = {}
        self.prepull_chart: ImagePrePullChart | None = None
        self.model_services: tuple[ModelServiceProps, ...] = tuple(props.model_services)
        self.admits_managed_scraper = props.managed_scraper_access
        self.namespace_chart: InferenceNamespaceChart | None = None
        # KEDA only where something uses it: queue workers, or model services it scales.
        self.keda: Keda | None = None
        if props.queue_workers or any(s.autoscaler is Autoscaler.KEDA for s in props.model_services):
            self.keda = Keda(
                self,
                "Keda",
                cluster=cluster,
                cluster_name=props.base.cluster_name,
                model=self.model,
                placement=self.base.system_placement,
                after=[self.base.system_nodes] if self.base.system_nodes else [],
            )
            self.workloads.node.add_dependency(self.keda.chart)  # CRDs and admission webhooks first
        self.triton_charts: dict[str, TritonChart] = {}
        if _serves(props):
            self._add_model_services(props, cluster)
        self.benchmarks_chart = self._benchmarks(props)
        self.batch = self._add_batch_jobs(props, cluster) if props.batch_jobs else None
        if self.keda:
            self._add_queue_workers(props, cluster, self.keda)
        self.multi_node = self._add_multi_node_services(props, cluster) if props.multi_node_services else None
        applied = [obj for _, chart in self.applied_charts for obj in chart.to_json()]
        # The benchmark Jobs are rendered, not applied, but must land on this cluster's nodes all the same.
        rendered = self.benchmarks_chart.to_json()
        self.model.add_workloads(workloads_from_objects([*applied, *rendered], "eks-ml inference"))
        placements = self.model.prove()
        system, notes = plan.system_nodes_of(props.base)
        self.plan = plan.inference_plan(
            self.model.name,
            self.node.path,
            system=system,
            services=props.model_services,
            triton=props.triton_services,
            pools=props.pools,
            ami_aliases=node_class.ami_aliases if node_class else None,
            placements=placements,
            notes=[
                *notes,
                *(f"benchmark {b.job_name}: rendered for kubectl apply, not deployed" for b in props.benchmarks),
            ],
        )
        plan.record(self, self.plan)

    def _benchmarks(self, props: InferenceClusterProps) -> BenchmarkJobChart:
        services = {service.name: service for service in props.model_services}
        pool = cpu_pool(props.pools) or ""  # checked: a benchmark needs a CPU pool
        region = Stack.of(self).region
        jobs = [
            b.values(services[b.service], namespace=props.namespace, region=region, pool=pool) for b in props.benchmarks
        ]
        return BenchmarkJobChart(cdk8s.App(), "Benchmarks", jobs)

    def benchmarks_yaml(self) -> str:
        """Every benchmark Job and its NetworkPolicies, as one multi-document YAML (empty without benchmarks)."""
        objects = self.benchmarks_chart.to_json()
        return cdk8s.Yaml.stringify(*objects) if objects else ""

    def _add_batch_jobs(self, props: InferenceClusterProps, cluster: eks.ICluster) -> BatchInference:
        batch = BatchInference(
            self,
            "Batch",
            cluster=cluster,
            model=self.model,
            placement=self.base.system_placement,
            jobs=props.batch_jobs,
            pools=props.pools,
            after=[self.base.system_nodes] if self.base.system_nodes else [],
        )
        for stem, chart in (("batch-queues", batch.queues_chart), ("batch-jobs", batch.jobs_chart)):
            self.workloads.add_chart(chart)
            self.applied_charts.append((stem, chart))
        # Kueue's webhooks validate the queues and suspend queued Jobs on creation: its controller serves first.
        self.workloads.node.add_dependency(batch.kueue)
        # EKS injects Pod Identity credentials only into pods created after their association exists.
        self.workloads.node.add_dependency(*batch.associations)
        return batch

    def _add_namespace(self, props: InferenceClusterProps, capabilities: set[str]) -> None:
        """The serving namespace, once, at the level every model service and queue worker there needs."""
        self.namespace_chart = InferenceNamespaceChart(
            cdk8s.App(),
            "InferenceNamespace",
            namespace=props.namespace,
            auto_mode=props.base.auto_mode,
            added_capabilities=sorted(capabilities | {c for w in props.queue_workers for c in w.capabilities()}),
        )
        self.prelude.add_chart(self.namespace_chart)
        self.applied_charts.append(("inference-namespace", self.namespace_chart))

    def _add_queue_workers(self, props: InferenceClusterProps, cluster: eks.ICluster, keda: Keda) -> None:
        if self.namespace_chart is None:
            self._add_namespace(props, set())
        pools = {worker.instance_type or "": _worker_pool(worker, props.pools) or "" for worker in props.queue_workers}
        for stem, chart, association in add_queue_workers(
            self, cluster=cluster, keda=keda, workers=props.queue_workers, namespace=props.namespace, pools=pools
        ):
            self.applied_charts.append((stem, chart))
            self.workloads.add_chart(chart)
            # EKS injects Pod Identity credentials only into pods created after their association exists.
            self.workloads.node.add_dependency(association)

    def _add_triton_services(
        self, props: InferenceClusterProps, cluster: eks.ICluster, scraper_cidrs: Sequence[str]
    ) -> None:
        region = Stack.of(self).region
        for service in props.triton_services:
            role_name = service.role_name(props.base.cluster_name)
            access = TritonModelAccess(
                self,
                f"{_triton_id(service.name)}Access",
                cluster=cluster,
                role_name=role_name,
                namespace=props.namespace,
                service_account=service.name,
                repository=service.model_repository,
            )
            pool = (
                None
                if service.on_fargate
                else next(p.name for p in props.pools if p.allows(str(service.instance_type)))
            )
            values = service.values(
                namespace=props.namespace,
                region=region,
                role_arn=role_arn(access, role_name),
                load_balancer_cidrs=load_balancer_cidrs(self.cluster.vpc, public=service.public),
                scraper_cidrs=scraper_cidrs,
                pool=pool,
            )
            chart = TritonChart(cdk8s.App(), f"Triton-{service.name}", values)
            self.triton_charts[service.name] = chart
            self.applied_charts.append((f"triton-{service.name}", chart))
            self.workloads.add_chart(chart)
            self.workloads.node.add_dependency(access.role)  # the role exists before pods ask for it
            if service.public:
                Annotations.of(self.workloads).add_warning_v2(
                    "eks-ml:public-model-endpoint", service.exposure().warning(service.name)
                )

    def _add_multi_node_services(self, props: InferenceClusterProps, cluster: eks.ICluster) -> MultiNodeServing:
        serving = MultiNodeServing(
            self,
            "MultiNode",
            cluster=cluster,
            cluster_name=props.base.cluster_name,
            vpc=self.cluster.vpc,
            services=props.multi_node_services,
            namespace=props.multi_node_namespace,
            model=self.model,
            placement=self.base.system_placement.values(),
            after=[self.base.system_nodes] if self.base.system_nodes else [],
        )
        self.applied_charts.append(("multi-node-namespace", serving.namespace_chart))
        for name, chart in serving.service_charts.items():
            self.applied_charts.append((f"multi-node-{name}", chart))
            self.workloads.add_chart(chart)
        self.workloads.node.add_dependency(serving.lws)  # its CRD and webhooks before any LeaderWorkerSet
        return serving

    def _add_model_services(self, props: InferenceClusterProps, cluster: eks.ICluster) -> None:
        auto_mode = props.base.auto_mode
        after_system = [self.base.system_nodes] if self.base.system_nodes else []
        region = Stack.of(self).region
        # The managed scraper's network interfaces sit in the private subnets (eks_ml.observability.prometheus).
        scraper_cidrs = (
            subnet_cidrs(self.cluster.vpc, self.cluster.vpc.select_subnets(subnet_type=PRIVATE).subnets)
            if props.managed_scraper_access
            else []
        )
        values = {
            service.name: service.values(
                namespace=props.namespace,
                region=region,
                pool=next(p.name for p in props.pools if service.instance_type in {s.name for s in p.specs()}),
                load_balancer_cidrs=load_balancer_cidrs(self.cluster.vpc, public=service.public),
                scraper_cidrs=scraper_cidrs,
            )
            for service in props.model_services
        }
        self._add_namespace(props, {c for v in values.values() for c in v.capabilities})
        self.load_balancer = (
            None
            if auto_mode  # Auto Mode runs its own load balancing controller
            else LoadBalancerController(
                self,
                "LoadBalancer",
                cluster=cluster,
                cluster_name=props.base.cluster_name,
                model=self.model,
                placement=self.base.system_placement,
                after=after_system,
            )
        )
        self.metrics = MetricsPipeline(
            self,
            "Metrics",
            cluster=cluster,
            model=self.model,
            placement=self.base.system_placement,
            after=after_system,
            triton=bool(props.triton_services),
        )
        s3_sources = [s.weights for s in props.model_services if isinstance(s.weights, S3Weights)]
        self.s3_weights = (
            S3WeightsDriver(self, "S3Weights", cluster=cluster, sources=s3_sources) if s3_sources else None
        )
        for service in props.model_services:
            pool = next(p for p in props.pools if p.allows(service.instance_type))
            warning = start_budget_warning(service, pool)
            if warning:
                Annotations.of(self).add_warning_v2("eks-ml:model-start-budget", warning)
            chart = ModelServiceChart(cdk8s.App(), f"Model-{service.name}", values[service.name])
            self.service_charts[service.name] = chart
            self.applied_charts.append((f"model-{service.name}", chart))
            self.workloads.add_chart(chart)
            if service.public:
                Annotations.of(self.workloads).add_warning_v2(
                    "eks-ml:public-model-endpoint", service.exposure().warning(service.name)
                )
            if service.min_replicas == 0:
                Annotations.of(self.workloads).add_warning_v2(
                    "eks-ml:model-service-at-zero", SCALED_TO_ZERO_WARNING.format(name=service.name)
                )
        if props.prepull_images:
            self._add_prepull(props, values)
        self._add_triton_services(props, cluster, scraper_cidrs)
        if self.load_balancer:
            self.workloads.node.add_dependency(self.load_balancer.chart)  # its webhooks admit Services/Ingresses
        if self.s3_weights:
            self.workloads.node.add_dependency(self.s3_weights.addon)

    def _add_prepull(self, props: InferenceClusterProps, values: Mapping[str, ModelServiceValues]) -> None:
        pulls = [
            PrePullValues(
                pool=service.node_selector[POOL_LABEL],
                image=service.image,
                node_selector={POOL_LABEL: service.node_selector[POOL_LABEL]},
                tolerations=service.tolerations,
            )
            for service in values.values()
        ]
        chart = ImagePrePullChart(cdk8s.App(), "ImagePrePull", namespace=props.namespace, pulls=pulls)
        self.prepull_chart = chart
        self.applied_charts.append(("image-prepull", chart))
        self.workloads.add_chart(chart)


def _serves(props: InferenceClusterProps) -> bool:
    """Whether the cluster runs model servers (and so the namespace, load balancer and metrics they need)."""
    return bool(props.model_services or props.triton_services)


def _check_props(props: InferenceClusterProps, problems: Problems, *, region: str) -> None:
    if not expect_all(
        expect_instance(props.base, BaseClusterProps, "base", problems, fix="pass base=BaseClusterProps(...)"),
        expect_list_of(props.pools, NodePoolProps, "pools", problems),
        expect_list_of(props.model_services, ModelServiceProps, "model_services", problems),
        expect_str(props.ami_alias, "ami_alias", problems),
        expect_str(props.bottlerocket_ami_alias, "bottlerocket_ami_alias", problems),
        expect_str_map(props.subnet_tags, "subnet_tags", problems),
        expect_str(props.namespace, "namespace", problems),
        expect_bool(props.managed_scraper_access, "managed_scraper_access", problems),
        expect_list_of(props.benchmarks, BenchmarkJobProps, "benchmarks", problems),
        expect_list_of(props.batch_jobs, BatchInferenceJobProps, "batch_jobs", problems),
        expect_bool(props.prepull_images, "prepull_images", problems),
        expect_list_of(props.multi_node_services, MultiNodeServiceProps, "multi_node_services", problems),
        expect_str(props.multi_node_namespace, "multi_node_namespace", problems),
    ):
        return
    check_base_props(props.base, problems, prefix="base.")
    check_namespace(props.namespace, "namespace", problems)
    if props.base.auto_mode is False:
        check_cluster_name_for_karpenter(props.base.cluster_name, "base.cluster_name", problems)
    if not props.pools:
        problems.add("pools", [], "at least one node pool", "add a NodePoolProps or keep the defaults")
    names = [pool.name for pool in props.pools if isinstance(pool.name, str)]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.add("pools.name", name, "unique pool names", "rename one of the pools")
    pools_ok = all([pool.check(f"pools[{index}]", problems) for index, pool in enumerate(props.pools)])
    if pools_ok and props.base.auto_mode is True:
        # Auto Mode picks its own AMI: an explicit os would be silently dropped.
        for index, given in enumerate(props.pools):
            if given.os is not None:
                problems.add(
                    f"pools[{index}].os",
                    given.os.value,
                    "no os with EKS Auto Mode (its nodes run the AMI Auto Mode picks)",
                    "drop os from the pool, or turn auto_mode off to choose the node OS",
                )
    check_ami_alias(props.ami_alias, NodeOS.AL2023, "ami_alias", problems)
    check_ami_alias(props.bottlerocket_ami_alias, NodeOS.BOTTLEROCKET, "bottlerocket_ami_alias", problems)
    services = [service.name for service in props.model_services if isinstance(service.name, str)]
    for name in sorted({n for n in services if services.count(n) > 1}):
        problems.add("model_services.name", name, "unique service names", "rename one of the services")
    for index, service in enumerate(props.model_services):
        field_name = f"model_services[{index}]"
        if not service.check(field_name, problems) or not pools_ok:
            continue
        service.exposure().check_placement(field_name, problems, region=region, vpc=props.base.vpc)
        with problems.collecting():
            load_balancer_cidrs(props.base.vpc, public=service.public is True)
        pool = next((pool for pool in props.pools if pool.allows(service.instance_type)), None)
        if pool is None:
            problems.add(
                f"{field_name}.instance_type",
                service.instance_type,
                "a type some node pool may launch",
                "add the type (or its family's default pool) to pools",
            )
        else:
            check_node_cache(service, pool, field_name, problems)
    # Each service's manifest is a child of the cluster construct, named Model<PascalName>.
    check_unique_ids(services, _service_id, "model_services.name", problems)
    benchmarked = [b.service for b in props.benchmarks]
    for name in sorted({n for n in benchmarked if isinstance(n, str) and benchmarked.count(n) > 1}):
        problems.add("benchmarks.service", name, "one benchmark per service", "merge the sweeps into one")
    for index, benchmark in enumerate(props.benchmarks):
        benchmark.check(f"benchmarks[{index}]", props.model_services, props.pools, problems)
    _check_batch_jobs(props, problems, pools_ok=pools_ok)
    if expect_list_of(props.queue_workers, QueueWorkerProps, "queue_workers", problems) and pools_ok:
        _check_queue_workers(props, services, problems)
    _check_triton(props, problems, region=region, pools_ok=pools_ok, model_services=services)
    check_services(
        props.multi_node_services,
        pool_names=[pool.name for pool in props.pools if isinstance(pool.name, str)],
        auto_mode=bool(props.base.auto_mode),
        namespace=props.multi_node_namespace,
        problems=problems,
    )
    if props.multi_node_services and props.multi_node_namespace == props.namespace and props.model_services:
        problems.add(
            "multi_node_namespace",
            props.multi_node_namespace,
            "a namespace other than the model services' (each serving namespace is created with its own policies)",
            "keep the default multi-node, or rename one of the two",
        )


def _check_batch_jobs(props: InferenceClusterProps, problems: Problems, *, pools_ok: bool) -> None:
    names = [job.name for job in props.batch_jobs if isinstance(job.name, str)]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.add("batch_jobs.name", name, "unique batch job names", "rename one of the jobs")
    for index, job in enumerate(props.batch_jobs):
        field_name = f"batch_jobs[{index}]"
        if job.check(field_name, problems) and pools_ok and not any(p.allows(job.instance_type) for p in props.pools):
            problems.add(
                f"{field_name}.instance_type",
                job.instance_type,
                "a type some node pool may launch",
                "add the type (or its family's default pool) to pools",
            )
    # Each job's role and association are named Role<PascalName> and Identity<PascalName>.
    check_unique_ids(names, lambda name: f"Role{pascal(name)}", "batch_jobs.name", problems)


def _check_queue_workers(props: InferenceClusterProps, services: list[str], problems: Problems) -> None:
    names = [worker.name for worker in props.queue_workers if isinstance(worker.name, str)]
    # Workers, model services and Triton services all name their Deployment, ServiceAccount and NetworkPolicy
    # after themselves in the serving namespace.
    tritons = props.triton_services if isinstance(props.triton_services, (list, tuple)) else ()  # checked later
    servers = {*services, *(t.name for t in tritons if isinstance(t, TritonServiceProps))}
    for name in sorted({n for n in names if names.count(n) > 1 or n in servers}):
        problems.add(
            "queue_workers.name",
            name,
            "names unique among queue workers, model services and triton_services (they share the namespace)",
            "rename one of them",
        )
    for index, worker in enumerate(props.queue_workers):
        field_name = f"queue_workers[{index}]"
        if worker.check(field_name, problems) and _worker_pool(worker, props.pools) is None:
            problems.add(
                f"{field_name}.instance_type",
                worker.instance_type,
                "a type some node pool may launch (None: a CPU pool)",
                "add the type to a pool, or a NodePoolProps(kind=PoolKind.CPU) for CPU workers",
            )
    check_unique_ids(names, lambda name: f"Worker{pascal(name)}", "queue_workers.name", problems)


def _worker_pool(worker: QueueWorkerProps, pools: Sequence[NodePoolProps]) -> str | None:
    """The first pool that launches the worker's instance type (a CPU pool for a CPU worker)."""
    for pool in pools:
        if (worker.instance_type is None and pool.kind is PoolKind.CPU) or (
            worker.instance_type is not None and pool.allows(worker.instance_type)
        ):
            return pool.name
    return None


def _service_id(name: str) -> str:
    return f"Model{pascal(name)}"


def _check_triton(
    props: InferenceClusterProps, problems: Problems, *, region: str, pools_ok: bool, model_services: Sequence[str]
) -> None:
    if not expect_list_of(props.triton_services, TritonServiceProps, "triton_services", problems):
        return
    if props.fargate is not None and (
        expect_instance(props.fargate, FargateProfileProps, "fargate", problems, fix="pass FargateProfileProps(...)")
    ):
        props.fargate.check("fargate", problems)
    names = [service.name for service in props.triton_services if isinstance(service.name, str)]
    # Triton and vLLM services share the namespace: their objects are named after the service.
    for name in sorted({n for n in names if [*names, *model_services].count(n) > 1}):
        problems.add(
            "triton_services.name", name, "names unique among triton_services and model_services", "rename one"
        )
    for index, service in enumerate(props.triton_services):
        field_name = f"triton_services[{index}]"
        if not service.check(field_name, problems):
            continue
        service.exposure().check_placement(field_name, problems, region=region, vpc=props.base.vpc)
        with problems.collecting():
            load_balancer_cidrs(props.base.vpc, public=service.public is True)
        role = service.role_name(props.base.cluster_name)
        if len(role) > ROLE_NAME_MAX:
            problems.add(
                f"{field_name}.name",
                service.name,
                f"a name that keeps its IAM role name {role!r} within {ROLE_NAME_MAX} characters",
                "shorten the service (or cluster) name",
            )
        if (
            service.on_fargate
            and isinstance(props.fargate, FargateProfileProps)
            and not any(
                selector.matches(props.namespace, fargate_labels())
                for selector in props.fargate.resolved_selectors(props.namespace)
                if isinstance(selector, FargateSelector)
            )
        ):
            problems.add(
                f"{field_name}.instance_type",
                None,
                f"a Fargate profile selector that takes its pods (namespace {props.namespace}, "
                f"labels {dict(fargate_labels())})",
                "add FargateSelector(namespace=<the serving namespace>, labels={'eks-ml.io/compute': 'fargate'}) "
                "or keep the profile's default selectors",
            )
        if service.on_fargate and props.fargate is None:
            problems.add(
                f"{field_name}.instance_type",
                None,
                "a GPU instance type of a node pool, or a Fargate profile on the cluster (fargate=...)",
                "set fargate=FargateProfileProps() to serve on Fargate, or give an instance_type",
            )
        elif (
            not service.on_fargate
            and pools_ok
            and not any(pool.allows(str(service.instance_type)) for pool in props.pools)
        ):
            problems.add(
                f"{field_name}.instance_type",
                service.instance_type,
                "a type some node pool may launch",
                "add the type (or its family's default pool) to pools",
            )
    check_unique_ids(names, _triton_id, "triton_services.name", problems)


def _triton_id(name: str) -> str:
    return f"Triton{pascal(name)}"
