"""TrainingCluster: the EKS base plus EFA-wired training node groups (and, as they land, FSx and jobs)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

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
from ..guards import expect_all, expect_bool, expect_instance, expect_int, expect_list_of, expect_str, expect_str_map
from ..inference.karpenter import Karpenter
from ..k8s import TrainingQueuesChart, TrainingQueuesValues, TrainingRuntimesChart, TrainJobsChart
from ..k8s.kueue_queues import covered_resources
from ..k8s.kueue_teams import (
    COHORT,
    PRIORITY_CLASS_LABEL,
    PRODUCTION_PREEMPTION,
    PRODUCTION_PRIORITY_CLASS,
    TeamQueuesChart,
)
from ..k8s.training_jobs import DEFAULT_MAX_RESTARTS, JobValues
from ..kube_names import check_namespace
from ..manifest_bundle import PRELUDE, WORKLOADS, ManifestBundle
from ..network.rules import private_subnets
from ..network.vpc import KARPENTER_DISCOVERY_TAG
from ..placement import ClusterModel, managed_node_group, workloads_from_objects
from ..placement.nodes import existing_nodes
from .block_watch import block_watch_chart, block_watches
from .burn_in import burn_in_chart
from .efa import efa_security_group
from .jobs import group_jobs, runtime_keys, runtimes, topology_notes, workload_scripts
from .karpenter_nodes import add_karpenter_pools, check_karpenter_pools
from .karpenter_pool import TrainingKarpenterPool, TrainingKarpenterPoolProps
from .lustre import LustreProps, TrainingFileSystem
from .node_group import TrainingNodeGroup, TrainingNodeGroupProps, TrainingNodes, is_fine_tuning_type
from .queues import flavor_quota
from .software import TrainingSoftware
from .storage import TrainingStorage
from .storage_classes import StorageClassesProps
from .sweeps import SweepProps, SweepSummary, trial_jobs
from .teams import TeamQueue, check_teams, node_quota, production_nodes, team_notes, team_values


@dataclass(frozen=True, kw_only=True)
class TrainingClusterProps:
    """Props of :class:`TrainingCluster`: give ``base`` to create the cluster, or ``cluster`` to use one.

    node_groups: the training node groups. Default: one group "p5" of two p5.48xlarge nodes.
    file_system: FSx for Lustre for data and checkpoints, in the node groups' AZ. Default: 4800 GiB at
        500 MB/s/TiB. None: no file system.
    namespace: where training jobs run: Kueue LocalQueue "training" and the file system claim live there.
    karpenter_pools: training pools provisioned by Karpenter beside the node groups (eks_ml.training.karpenter_pool);
        installs Karpenter. Needs ``base`` without Auto Mode. Default: none.
    karpenter_subnet_tags: tags of the private subnets Karpenter launches into (the pools keep to the node
        groups' AZ). Default: karpenter.sh/discovery=eks-ml, as MlVpc tags them.
    max_restarts: how many times a training job's whole gang is recreated after a failure (a node died, a pod
        was evicted or crashed) before the TrainJob fails for good; each restart resumes from the newest
        complete checkpoint. Default 3.
    storage_classes: StorageClasses for claims that create their own volume: FSx for Lustre ``fsx-scratch``
        and ``fsx-persistent`` in the node groups' AZ, and ``gp3`` (the default class). None: no classes.
    teams: teams that share the node groups through Kueue (TeamQueue: quota in whole nodes, borrowing and
        lending limits). With teams, the production queue joins their cohort, keeps the nodes the teams do not
        hold, and its jobs get the production priority class. Default: none (one queue holds every node).
    sweeps: hyperparameter sweeps (SweepProps), rendered as trial TrainJobs in their team's queue (see
        ``sweeps_yaml``). Default: none.
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
    storage_classes: StorageClassesProps | None = field(default_factory=StorageClassesProps)
    teams: Sequence[TeamQueue] = ()
    sweeps: Sequence[SweepProps] = ()
    karpenter_pools: Sequence[TrainingKarpenterPoolProps] = ()
    karpenter_subnet_tags: Mapping[str, str] = field(default_factory=lambda: {KARPENTER_DISCOVERY_TAG: "eks-ml"})
    topology_aware: bool = True


class TrainingCluster(Construct):
    """Attributes: ``base`` (BaseCluster or None), ``cluster``, ``vpc``, ``efa_security_group``,
    ``node_groups`` (name -> TrainingNodeGroup), ``karpenter_pools`` (name -> TrainingKarpenterPool),
    ``karpenter`` (the Karpenter install, or None), ``karpenter_pools_chart`` (applied, or None),
    ``software`` (device plugins, Kueue, Trainer),
    ``burn_in_chart`` (the burn-in DaemonSets that lift the nodes' startup taint, applied), ``queues_chart``,
    ``file_system`` (TrainingFileSystem or None), ``runtimes_chart`` (applied), ``prelude`` and ``workloads``
    (the manifests applied before and after the Helm releases),
    ``capacity_block_chart`` (the Capacity Block watch CronJobs, applied; None without a block window),
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
        names += [pool.name for pool in props.karpenter_pools if isinstance(pool, TrainingKarpenterPoolProps)]
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
        pool_specs = check_karpenter_pools(props.karpenter_pools, props.base, problems)
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
        if props.storage_classes is not None:
            props.storage_classes.check(problems)
            zones = sorted({s.availability_zone for s in subnets if s is not None})
            if props.storage_classes.lustre and len(zones) > 1 and props.file_system is None:
                problems.add(
                    "node_groups.availability_zone",
                    zones,
                    "one AZ for every node group when the cluster has FSx for Lustre storage classes",
                    "put the groups in one AZ, or set storage_classes=StorageClassesProps(lustre=[])",
                )
        groups_by_name = {group.name: group for group in props.node_groups if isinstance(group.name, str)}
        if check_teams(
            props.teams,
            groups_by_name,
            production_queue=TrainingQueuesValues.cluster_queue,
            production_namespace=props.namespace,
            problems=problems,
        ):
            _check_sweeps(props, problems)
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
        self.karpenter_pools: dict[str, TrainingKarpenterPool] = {}
        self.karpenter_pools_chart: cdk8s.Chart | None = None  # the pools' EC2NodeClasses and NodePools
        self.karpenter: Karpenter | None = None  # installed only for Karpenter pools
        # Objects applied before the Helm releases, and after them (eks_ml.manifest_bundle).
        after_system = [self.base.system_nodes] if self.base and self.base.system_nodes else []
        self.prelude = ManifestBundle(self, PRELUDE, cluster=cluster, after=after_system)
        self.workloads = ManifestBundle(self, WORKLOADS, cluster=cluster)
        if props.karpenter_pools and props.base is not None:
            zone = subnets[0].availability_zone if subnets[0] is not None else None
            self.karpenter, self.karpenter_pools, pools_chart = add_karpenter_pools(
                self,
                props.karpenter_pools,
                pool_specs,
                cluster=cluster,
                base=props.base,
                model=self.model,
                placement=placement,
                efa_security_group=self.efa_security_group,
                subnet_tags=props.karpenter_subnet_tags,
                zone=None if zone is None or Token.is_unresolved(zone) else zone,
                after=after_system,
            )
            self.workloads.add_chart(pools_chart)
            self.karpenter_pools_chart = pools_chart
            self.workloads.node.add_dependency(self.karpenter.chart)  # its CRDs and webhooks first
        nodes: list[TrainingNodes] = [*self.node_groups.values(), *self.karpenter_pools.values()]
        self.software = TrainingSoftware(
            self,
            "Software",
            cluster=cluster,
            model=self.model,
            placement=placement,
            groups=nodes,
            efa_image_repository=f"{eks_image_registry(Stack.of(self).region)}/eks/aws-efa-k8s-device-plugin",
            after=after_system,
        )
        # Every node joins with the startup taint; this lifts it on nodes that pass their burn-in.
        self.burn_in_chart = burn_in_chart(nodes)
        self.prelude.add_chart(self.burn_in_chart)  # with the releases' namespaces: it needs no release
        groups = list(self.node_groups.values())
        # Kueue's topology-aware scheduling places a gang only on nodes that exist when it admits the job; Karpenter
        # launches pool nodes after admission, so only managed node groups get a Topology and topology requests.
        topology_groups = set(self.node_groups) if props.topology_aware else set()
        flavors = [flavor_quota(source, topology_aware=source.name in topology_groups) for source in nodes]
        if props.teams:  # the production queue keeps what the teams do not hold, and shares in their cohort
            by_name = {group.name: group for group in groups}  # teams hold nodes of managed groups only
            flavors = [
                replace(flavor, quotas=node_quota(owner, production_nodes(owner, props.teams)))
                if (owner := by_name.get(flavor.name)) is not None
                else flavor
                for flavor in flavors
            ]
        self.queues_chart = TrainingQueuesChart(
            cdk8s.App(),
            "TrainingQueues",
            TrainingQueuesValues(
                namespace=props.namespace,
                flavors=flavors,
                cohort=COHORT if props.teams else None,
                preemption=PRODUCTION_PREEMPTION if props.teams else None,
            ),
        )
        # Kueue's webhooks validate these objects: apply them once its controller is serving. The queues chart
        # holds the jobs' namespace, so it comes first.
        self.workloads.add_chart(self.queues_chart)
        self.workloads.node.add_dependency(self.software.kueue)
        # Teams' queues, the cohort and the priority classes (rendered only with teams).
        self.teams_chart = (
            TeamQueuesChart(
                cdk8s.App(),
                "TeamQueues",
                teams=[team_values(team, groups) for team in props.teams],
                resources=covered_resources(flavors),
            )
            if props.teams
            else None
        )
        if self.teams_chart is not None:
            self.workloads.add_chart(self.teams_chart)

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

        # StorageClasses for claims that create their own volume; the file systems land in the first group's
        # subnet (every group shares its AZ when there are FSx classes).
        self.storage = (
            TrainingStorage(
                self,
                "Storage",
                cluster=cluster,
                cluster_name=self.base_cluster_name,
                vpc=vpc,
                subnet=first_subnet,
                clients=self.efa_security_group,
                props=props.storage_classes,
                fsx_csi_role=self.file_system.csi_role if self.file_system is not None else None,
                fsx_csi_addon=self.file_system.csi_addon if self.file_system is not None else None,
            )
            if props.storage_classes is not None and first_subnet is not None
            else None
        )
        if self.storage is not None:
            self.workloads.add_chart(self.storage.chart)

        claim = props.file_system.claim_name if props.file_system is not None else None
        self.runtimes_chart = TrainingRuntimesChart(
            cdk8s.App(),
            "TrainingRuntimes",
            namespace=props.namespace,
            scripts=workload_scripts(capacity_block_watch=bool(block_watches(nodes))),
            runtimes=runtimes(
                self,
                runtime_keys(nodes, topology_groups),
                claim,
                max_restarts=props.max_restarts,
                fine_tuning=[group for group in nodes if is_fine_tuning_type(group.spec)],
                sweeps=[self.node_groups[name] for name in sorted({sweep.node_group for sweep in props.sweeps})],
            ),
            other_namespaces=[team.resolved_namespace for team in props.teams],
        )
        self.workloads.add_chart(self.runtimes_chart)
        self.workloads.node.add_dependency(self.software.trainer)  # its webhook validates the runtimes
        # Nodes on a Capacity Block with a known window (node groups and Karpenter pools alike): stop admitting
        # and signal a checkpoint before it ends.
        self.capacity_block_chart = block_watch_chart(
            nodes,
            namespace=props.namespace,
            # Production's queue and the teams': each that lists a block's flavor stops admitting onto it.
            queue_charts=[self.queues_chart, *([self.teams_chart] if self.teams_chart is not None else [])],
            claim_name=claim,
            placement=placement,
        )
        if self.capacity_block_chart is not None:  # after the runtimes: its pods mount their scripts ConfigMap
            self.workloads.add_chart(self.capacity_block_chart)
        # Every chart the stack applies, in apply order, for GitOps export (eks_ml.gitops).
        self.applied_charts: list[tuple[str, cdk8s.Chart]] = [
            ("burn-in", self.burn_in_chart),
            *([("training-node-pools", self.karpenter_pools_chart)] if self.karpenter_pools_chart else []),
            ("training-queues", self.queues_chart),
            *([("team-queues", self.teams_chart)] if self.teams_chart is not None else []),
            *([("lustre-volume", self.file_system.chart)] if self.file_system is not None else []),
            *([("storage-classes", self.storage.chart)] if self.storage is not None else []),
            ("training-runtimes", self.runtimes_chart),
            *([("capacity-block-watch", self.capacity_block_chart)] if self.capacity_block_chart is not None else []),
        ]
        # Jobs are not applied by the stack (a finished TrainJob cannot be re-run by a redeploy): they are
        # rendered for kubectl or GitOps, see ``jobs_yaml``.
        self.jobs_chart = TrainJobsChart(
            cdk8s.App(),
            "TrainJobs",
            [
                _production(job, ranked=bool(props.teams))
                for group in nodes
                for job in group_jobs(
                    group,
                    namespace=props.namespace,
                    queue=self.queues_chart.local_queue,
                    topology_aware=group.name in topology_groups,
                )
            ],
        )
        teams = {team.name: team for team in props.teams}
        self.sweeps_chart = TrainJobsChart(
            cdk8s.App(),
            "Sweeps",
            [
                job
                for sweep in props.sweeps
                for job in trial_jobs(
                    sweep,
                    self.node_groups[sweep.node_group],
                    namespace=teams[sweep.team].resolved_namespace,
                    queue=sweep.team,
                )
            ],
        )
        self.sweeps = [
            _summary(sweep, teams[sweep.team], self.node_groups[sweep.node_group], props.teams)
            for sweep in props.sweeps
        ]
        # Everything this construct runs must land on its nodes; jobs are resolved against the runtimes
        # and admitted through the Kueue queues, as Trainer and Kueue do it.
        applied = [obj for _, chart in self.applied_charts for obj in chart.to_json()]
        rendered = [*self.jobs_chart.to_json(), *self.sweeps_chart.to_json()]
        self.model.add_workloads(workloads_from_objects([*applied, *rendered], "eks-ml training"))
        placements = self.model.prove()
        system, notes = plan.system_nodes_of(props.base)
        self.plan = plan.training_plan(
            self.model.name,
            self.node.path,
            system=system,
            groups=props.node_groups,
            karpenter_pools=props.karpenter_pools,
            file_system=props.file_system,
            placements=placements,
            notes=[
                *notes,
                *topology_notes(nodes, topology_groups, topology_aware=props.topology_aware),
                *team_notes(props.teams, groups),
                *(summary.line() for summary in self.sweeps),
            ],
            max_restarts=props.max_restarts,
            storage_classes=props.storage_classes,
        )
        plan.record(self, self.plan)

    @property
    def base_cluster_name(self) -> str:
        return self.base.cluster_name if self.base else self.cluster.cluster_name

    def jobs_yaml(self) -> str:
        """The example and fabric-test TrainJobs of every node group, as one multi-document YAML."""
        return cdk8s.Yaml.stringify(*self.jobs_chart.to_json())

    def sweeps_yaml(self) -> str:
        """Every sweep's trial TrainJobs, as one multi-document YAML (empty without sweeps)."""
        objects = self.sweeps_chart.to_json()
        return cdk8s.Yaml.stringify(*objects) if objects else ""

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


def _production(job: JobValues, *, ranked: bool) -> JobValues:
    """With teams, production jobs carry the priority class that lets them preempt sweep trials."""
    return replace(job, labels={**job.labels, PRIORITY_CLASS_LABEL: PRODUCTION_PRIORITY_CLASS}) if ranked else job


def _check_sweeps(props: TrainingClusterProps, problems: Problems) -> None:
    teams = {team.name: team for team in props.teams}
    groups = [group.name for group in props.node_groups]
    names: list[str] = []
    for index, sweep in enumerate(props.sweeps):
        field = f"sweeps[{index}]"
        if not sweep.check(field, list(teams), groups, problems):
            continue
        names.append(sweep.name)
        team = teams[sweep.team]
        if team.nodes.get(sweep.node_group, 0) == 0 and team.borrowing_limit == 0:
            problems.add(
                f"{field}.node_group",
                sweep.node_group,
                f"a group where team {team.name} has nodes or may borrow them",
                f"give the team nodes of {sweep.node_group} or a borrowing_limit above 0",
            )
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.add("sweeps.name", name, "unique sweep names (they prefix the trial TrainJobs)", "rename a sweep")


def _summary(
    sweep: SweepProps, team: TeamQueue, group: TrainingNodeGroup, all_teams: Sequence[TeamQueue]
) -> SweepSummary:
    own = team.nodes.get(group.name, 0)
    # What the rest of the cohort can lend at most: production's nodes (it lends all it leaves idle) and each other
    # team's, up to its lending limit; the team takes at most its borrowing limit of it (Kueue's cohort rules).
    lendable = production_nodes(group, all_teams) + sum(
        other.nodes.get(group.name, 0)
        if other.lending_limit is None
        else min(other.lending_limit, other.nodes.get(group.name, 0))
        for other in all_teams
        if other.name != team.name
    )
    borrowable = lendable if team.borrowing_limit is None else min(lendable, team.borrowing_limit)
    return SweepSummary(
        name=sweep.name,
        team=team.name,
        node_group=group.name,
        trials=len(sweep.space.points()),
        parallel=own + borrowable,
        borrowing=borrowable > 0,
    )


# Children of TrainingCluster with fixed ids; a group id (<Name>Group) must not take one of them.
_FIXED_CHILDREN = (
    "Base", "EfaSecurityGroup", "Software", "FileSystem", "Storage", "KarpenterNodes", PRELUDE, WORKLOADS
)


def _group_id(name: str) -> str:
    return f"{pascal(name)}Group"


def _check_shapes(props: TrainingClusterProps, problems: Problems) -> bool:
    return expect_all(
        props.cluster is None or _expect_cluster(props.cluster, problems),
        props.base is None
        or expect_instance(props.base, BaseClusterProps, "base", problems, fix="pass base=BaseClusterProps(...)"),
        expect_list_of(props.node_groups, TrainingNodeGroupProps, "node_groups", problems),
        expect_list_of(props.karpenter_pools, TrainingKarpenterPoolProps, "karpenter_pools", problems),
        expect_str_map(props.karpenter_subnet_tags, "karpenter_subnet_tags", problems),
        props.file_system is None
        or expect_instance(
            props.file_system, LustreProps, "file_system", problems, fix="pass LustreProps(...) or None"
        ),
        expect_str(props.namespace, "namespace", problems),
        props.storage_classes is None
        or expect_instance(
            props.storage_classes,
            StorageClassesProps,
            "storage_classes",
            problems,
            fix="pass StorageClassesProps(...) or None",
        ),
        # Bounded: a job that failed this often has a bug or a bad image, not bad luck; it should stop.
        expect_int(props.max_restarts, "max_restarts", problems, minimum=0, maximum=MAX_RESTARTS_LIMIT),
        expect_list_of(props.teams, TeamQueue, "teams", problems),
        expect_list_of(props.sweeps, SweepProps, "sweeps", problems),
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
