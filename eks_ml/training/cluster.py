"""TrainingCluster: the EKS base plus EFA-wired training node groups (and, as they land, FSx and jobs)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cdk8s
from aws_cdk import Stack, Token
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from constructs import Construct

from .. import plan
from .._naming import check_unique_ids, pascal
from ..catalog import InstanceSpec
from ..cluster import BaseCluster, BaseClusterProps
from ..cluster._typing import as_icluster
from ..cluster.base import check_base_props
from ..cluster.registries import eks_image_registry
from ..cluster.system_nodes import SystemPlacement
from ..errors import Problems
from ..guards import expect_all, expect_bool, expect_instance, expect_int, expect_list_of, expect_str
from ..k8s import TrainingQueuesChart, TrainingQueuesValues, TrainingRuntimesChart, TrainJobsChart
from ..k8s.training_jobs import DEFAULT_MAX_RESTARTS
from ..kube_names import check_namespace
from ..manifest_bundle import PRELUDE, WORKLOADS, ManifestBundle
from ..network.rules import private_subnets
from ..placement import ClusterModel, managed_node_group, workloads_from_objects
from ..placement.nodes import existing_nodes
from .burn_in import burn_in_chart
from .efa import efa_security_group
from .jobs import group_jobs, runtime_keys, runtimes, workload_scripts
from .lustre import LustreProps, TrainingFileSystem
from .node_group import TrainingNodeGroup, TrainingNodeGroupProps
from .queues import flavor_quota
from .software import TrainingSoftware


@dataclass(frozen=True, kw_only=True)
class TrainingClusterProps:
    """Props of :class:`TrainingCluster`: give ``base`` to create the cluster, or ``cluster`` to use one.

    node_groups: the training node groups. Default: one group "p5" of two p5.48xlarge nodes.
    file_system: FSx for Lustre for data and checkpoints, in the node groups' AZ. Default: 4800 GiB at
        500 MB/s/TiB. None: no file system.
    namespace: where training jobs run: Kueue LocalQueue "training" and the file system claim live there.
    max_restarts: how many times a training job's whole gang is recreated after a failure (a node died, a pod
        was evicted or crashed) before the TrainJob fails for good; each restart resumes from the newest
        complete checkpoint. Default 3.
    topology_aware: Kueue Topology-Aware Scheduling for node groups whose instance type EKS labels with its
        EC2 network place: a Kueue Topology, the flavor's topologyName, and jobs that keep their gang close in
        the network (eks_ml.k8s.kueue_topology). Default True. False: no Topology and no topology requests.
    """

    base: BaseClusterProps | None = None
    cluster: eks.ICluster | None = None
    node_groups: Sequence[TrainingNodeGroupProps] = field(default_factory=lambda: (TrainingNodeGroupProps(name="p5"),))
    file_system: LustreProps | None = field(default_factory=LustreProps)
    namespace: str = "training"
    max_restarts: int = DEFAULT_MAX_RESTARTS
    topology_aware: bool = True


class TrainingCluster(Construct):
    """Attributes: ``base`` (BaseCluster or None), ``cluster``, ``vpc``, ``efa_security_group``,
    ``node_groups`` (name -> TrainingNodeGroup), ``software`` (device plugins, Kueue, Trainer),
    ``burn_in_chart`` (the burn-in DaemonSets that lift the nodes' startup taint, applied), ``queues_chart``,
    ``file_system`` (TrainingFileSystem or None), ``runtimes_chart`` (applied), ``prelude`` and ``workloads``
    (the manifests applied before and after the Helm releases),
    ``jobs_chart`` (rendered, not applied), ``namespace`` (where jobs run), ``applied_charts`` ((file stem,
    chart) in apply order), ``model`` (the cluster model: node sources and workloads, proven placeable)."""

    def __init__(self, scope: Construct, construct_id: str, props: TrainingClusterProps) -> None:
        super().__init__(scope, construct_id)
        problems = Problems()
        if not _check_shapes(props, problems):
            problems.raise_if_any()
        if props.base is not None:
            check_base_props(props.base, problems, prefix="base.")
        check_namespace(props.namespace, "namespace", problems)
        if (props.base is None) == (props.cluster is None):
            problems.add(
                "base/cluster",
                "both" if props.base else "neither",
                "exactly one of base (create a cluster) or cluster (use an existing one)",
                "pass base=BaseClusterProps(...) or cluster=<an aws_eks_v2 cluster>",
            )
        if props.cluster is not None and not _has_security_group(props.cluster):
            problems.add(
                "cluster",
                "an imported cluster without cluster_security_group_id",
                "a cluster whose security group is known (training nodes join it)",
                "import it with Cluster.from_cluster_attributes(..., cluster_security_group_id=...)",
            )
        if props.cluster is not None and props.cluster.kubectl_provider is None:
            problems.add(
                "cluster",
                "an imported cluster without a kubectl provider",
                "a cluster eks-ml can install device plugins, Kueue and Trainer into",
                "import it with kubectl_provider=KubectlProvider.from_kubectl_provider_attributes(...)",
            )
        if not props.node_groups:
            problems.add("node_groups", [], "at least one training node group", "add a TrainingNodeGroupProps")
        names = [group.name for group in props.node_groups if isinstance(group.name, str)]
        for name in sorted({n for n in names if names.count(n) > 1}):
            problems.add("node_groups.name", name, "unique group names", "rename one of the groups")
        check_unique_ids(names, _group_id, "node_groups.name", problems, taken=_FIXED_CHILDREN)
        vpc = props.base.vpc if props.base else props.cluster.vpc if props.cluster else None
        if props.cluster is not None and vpc is not None:
            private_subnets(vpc, "cluster.vpc", problems)
        specs: list[InstanceSpec | None] = []
        subnets: list[ec2.ISubnet | None] = []
        for index, group in enumerate(props.node_groups):
            specs.append(group.check(f"node_groups[{index}]", problems))
            subnets.append(self._subnet(vpc, group, f"node_groups[{index}].availability_zone", problems))
        if props.file_system is not None:
            props.file_system.check(problems)
            zones = sorted({s.availability_zone for s in subnets if s is not None})
            if len(zones) > 1:
                problems.add(
                    "node_groups.availability_zone",
                    zones,
                    "one AZ for every node group when the cluster has a Lustre file system",
                    "put the groups in the file system's AZ, or set file_system=None",
                )
            elif zones and not Token.is_unresolved(zones[0]):
                props.file_system.check_replacement(zones[0], problems)
        problems.raise_if_any()

        self.base = BaseCluster(self, "Base", props.base) if props.base else None
        cluster = as_icluster(self.base.cluster) if self.base else props.cluster
        assert cluster is not None and vpc is not None
        self.cluster: eks.ICluster = cluster
        if self.base:
            self.model = self.base.model
            placement = self.base.system_placement
        else:
            # eks-ml cannot see an imported cluster's nodes: controllers go wherever its scheduler puts them.
            self.model = ClusterModel(cluster.cluster_name)
            self.model.add_source(existing_nodes())
            placement = SystemPlacement({})
        node_networking = self.base.add_node_group_networking() if self.base else []
        self.vpc = vpc
        self.namespace = props.namespace
        self.efa_security_group = efa_security_group(self, "EfaSecurityGroup", vpc)
        group_ids = [self.efa_security_group.security_group_id, cluster.cluster_security_group_id]
        self.node_groups: dict[str, TrainingNodeGroup] = {}
        for group, spec, subnet in zip(props.node_groups, specs, subnets, strict=True):
            assert spec is not None and subnet is not None
            # The id is the group's name on purpose: a group's identity is its name.
            self.node_groups[group.name] = TrainingNodeGroup(
                self,
                _group_id(group.name),
                cluster=cluster,
                subnet=subnet,
                security_group_ids=group_ids,
                spec=spec,
                props=group,
            )
            node_group = self.node_groups[group.name]
            for addon in node_networking:  # nodes become Ready only with networking in place
                node_group.nodegroup.node.add_dependency(addon)
            self.model.add_source(managed_node_group(group.name, [spec.name], node_group.labels, node_group.taints))
        # Objects applied before the Helm releases, and after them (eks_ml.manifest_bundle).
        after_system = [self.base.system_nodes] if self.base and self.base.system_nodes else []
        self.prelude = ManifestBundle(self, PRELUDE, cluster=cluster, after=after_system)
        self.workloads = ManifestBundle(self, WORKLOADS, cluster=cluster)
        self.software = TrainingSoftware(
            self,
            "Software",
            cluster=cluster,
            model=self.model,
            placement=placement,
            groups=list(self.node_groups.values()),
            efa_image_repository=f"{eks_image_registry(Stack.of(self).region)}/eks/aws-efa-k8s-device-plugin",
            after=after_system,
        )
        # Every node joins with the startup taint; this lifts it on nodes that pass their burn-in.
        self.burn_in_chart = burn_in_chart(list(self.node_groups.values()))
        self.prelude.add_chart(self.burn_in_chart)  # with the releases' namespaces: it needs no release
        self.queues_chart = TrainingQueuesChart(
            cdk8s.App(),
            "TrainingQueues",
            TrainingQueuesValues(
                namespace=props.namespace,
                flavors=[
                    flavor_quota(group, topology_aware=props.topology_aware) for group in self.node_groups.values()
                ],
            ),
        )
        # Kueue's webhooks validate these objects: apply them once its controller is serving. The queues chart
        # holds the jobs' namespace, so it comes first.
        self.workloads.add_chart(self.queues_chart)
        self.workloads.node.add_dependency(self.software.kueue)

        first_subnet = subnets[0]
        self.file_system = (
            TrainingFileSystem(
                self,
                "FileSystem",
                cluster=cluster,
                vpc=vpc,
                subnet=first_subnet,
                clients=self.efa_security_group,
                namespace=props.namespace,
                props=props.file_system,
            )
            if props.file_system is not None and first_subnet is not None
            else None
        )
        if self.file_system is not None:
            self.workloads.add_chart(self.file_system.chart)
            self.workloads.node.add_dependency(self.file_system.csi_addon)

        claim = props.file_system.claim_name if props.file_system is not None else None
        self.runtimes_chart = TrainingRuntimesChart(
            cdk8s.App(),
            "TrainingRuntimes",
            namespace=props.namespace,
            scripts=workload_scripts(),
            runtimes=runtimes(
                self,
                runtime_keys([group.spec for group in self.node_groups.values()], topology_aware=props.topology_aware),
                claim,
                max_restarts=props.max_restarts,
            ),
        )
        self.workloads.add_chart(self.runtimes_chart)
        self.workloads.node.add_dependency(self.software.trainer)  # its webhook validates the runtimes
        # Every chart the stack applies, in apply order, for GitOps export (eks_ml.gitops).
        self.applied_charts: list[tuple[str, cdk8s.Chart]] = [
            ("burn-in", self.burn_in_chart),
            ("training-queues", self.queues_chart),
            *([("lustre-volume", self.file_system.chart)] if self.file_system is not None else []),
            ("training-runtimes", self.runtimes_chart),
        ]
        # Jobs are not applied by the stack (a finished TrainJob cannot be re-run by a redeploy): they are
        # rendered for kubectl or GitOps, see ``jobs_yaml``.
        self.jobs_chart = TrainJobsChart(
            cdk8s.App(),
            "TrainJobs",
            [
                job
                for group in self.node_groups.values()
                for job in group_jobs(
                    group,
                    namespace=props.namespace,
                    queue=self.queues_chart.local_queue,
                    topology_aware=props.topology_aware,
                )
            ],
        )
        # Everything this construct runs must land on its nodes; jobs are resolved against the runtimes
        # and admitted through the Kueue queues, as Trainer and Kueue do it.
        applied = [obj for _, chart in self.applied_charts for obj in chart.to_json()]
        self.model.add_workloads(workloads_from_objects([*applied, *self.jobs_chart.to_json()], "eks-ml training"))
        placements = self.model.prove()
        system, notes = plan.system_nodes_of(props.base)
        self.plan = plan.training_plan(
            self.model.name,
            self.node.path,
            system=system,
            groups=props.node_groups,
            file_system=props.file_system,
            placements=placements,
            notes=notes,
        )
        plan.record(self, self.plan)

    @property
    def base_cluster_name(self) -> str:
        return self.base.cluster_name if self.base else self.cluster.cluster_name

    def jobs_yaml(self) -> str:
        """The example and fabric-test TrainJobs of every node group, as one multi-document YAML."""
        return cdk8s.Yaml.stringify(*self.jobs_chart.to_json())

    @staticmethod
    def _subnet(
        vpc: ec2.IVpc | None, group: TrainingNodeGroupProps, field: str, problems: Problems
    ) -> ec2.ISubnet | None:
        """The one private subnet of the group's AZ: EFA and placement groups need a single AZ."""
        if vpc is None or not hasattr(vpc, "select_subnets"):
            return None  # reported by the VPC's own check
        subnets = private_subnets(vpc, field, Problems())  # a VPC without them is reported by the VPC check
        if not subnets:
            return None  # reported once by the base cluster's or the imported cluster's VPC check
        if not isinstance(group.availability_zone, str):  # None, or a wrong type reported by the group's check
            return subnets[0] if group.availability_zone is None else None
        for subnet in subnets:
            if subnet.availability_zone == group.availability_zone:
                return subnet
        problems.add(
            field,
            group.availability_zone,
            f"an AZ with a private subnet of the VPC: {', '.join(s.availability_zone for s in subnets)}",
            "choose the AZ of your capacity that the VPC covers, or add it to the VPC's AZs",
        )
        return None


def _has_security_group(cluster: eks.ICluster) -> bool:
    try:
        cluster.cluster_security_group_id  # noqa: B018  (an imported cluster raises when it was not given)
    except RuntimeError:
        return False
    return True


MAX_RESTARTS_LIMIT = 100

# Children of TrainingCluster with fixed ids; a group id (<Name>Group) must not take one of them.
_FIXED_CHILDREN = ("Base", "EfaSecurityGroup", "Software", "FileSystem", PRELUDE, WORKLOADS)


def _group_id(name: str) -> str:
    return f"{pascal(name)}Group"


def _check_shapes(props: TrainingClusterProps, problems: Problems) -> bool:
    return expect_all(
        props.cluster is None or _expect_cluster(props.cluster, problems),
        props.base is None
        or expect_instance(props.base, BaseClusterProps, "base", problems, fix="pass base=BaseClusterProps(...)"),
        expect_list_of(props.node_groups, TrainingNodeGroupProps, "node_groups", problems),
        props.file_system is None
        or expect_instance(
            props.file_system, LustreProps, "file_system", problems, fix="pass LustreProps(...) or None"
        ),
        expect_str(props.namespace, "namespace", problems),
        # Bounded: a job that failed this often has a bug or a bad image, not bad luck; it should stop.
        expect_int(props.max_restarts, "max_restarts", problems, minimum=0, maximum=MAX_RESTARTS_LIMIT),
        expect_bool(props.topology_aware, "topology_aware", problems),
    )


def _expect_cluster(cluster: object, problems: Problems) -> bool:
    # jsii interfaces cannot be isinstance-checked: an aws_eks_v2 cluster is recognized by its shape.
    if hasattr(cluster, "cluster_name") and hasattr(cluster, "add_cdk8s_chart"):
        return True
    problems.add(
        "cluster",
        cluster,
        f"an aws_eks_v2 cluster (got {type(cluster).__name__})",
        "pass eks.Cluster.from_cluster_attributes(...) (not the cluster's name or its eks-ml construct)",
    )
    return False
