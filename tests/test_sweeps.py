"""Sweeps and fine-tuning: single-node types and runtime, team queues in a Kueue cohort, trial TrainJobs.

Every check here is shown failing on a broken input: a test that breaks the objects or the props and expects
the validator, the cluster model or a ValidationError to refuse them."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import yaml
from aws_cdk import assertions

from eks_ml import BaseClusterProps, MlVpc, MlVpcProps, ValidationError
from eks_ml.catalog import lookup
from eks_ml.k8s.kueue_teams import PRODUCTION_PRIORITY, SWEEP_PRIORITY
from eks_ml.k8s.training_jobs import DEFAULT_MAX_RESTARTS, failure_policy
from eks_ml.placement import workloads_from_objects
from eks_ml.training import (
    Capacity,
    SearchSpace,
    SweepProps,
    TeamQueue,
    TrainingCluster,
    TrainingClusterProps,
    TrainingNodeGroupProps,
    fine_tuning_instance_types,
)
from eks_ml.training.jobs import single_node_resources
from eks_ml.training.sweeps import EXAMPLE_HYPERPARAMETERS
from eks_ml.training.teams import check_teams

from .support.manifests import requires_chart_cache, validate_objects
from .support.synth import library_stack, of_type

GROUPS = (
    TrainingNodeGroupProps(name="p5", desired_size=2),
    TrainingNodeGroupProps(name="l40s", instance_type="g6e.xlarge", desired_size=0, max_size=4),
    TrainingNodeGroupProps(name="trn", instance_type="trn1.2xlarge", desired_size=0, max_size=2),
)
TEAMS = (
    TeamQueue(name="research", nodes={"l40s": 2}, lending_limit=1),
    TeamQueue(name="nlp", nodes={"p5": 1, "trn": 1}, borrowing_limit=1),
)
SWEEPS = (
    SweepProps(
        name="lr-grid",
        team="research",
        node_group="l40s",
        space=SearchSpace.grid({"lr": [1e-4, 3e-4], "batch": [32, 64]}),
    ),
    SweepProps(
        name="rand",
        team="nlp",
        node_group="trn",
        space=SearchSpace.random({"lr": [1e-4, 3e-4, 1e-3], "width": [512, 1024]}, trials=4, seed=7),
    ),
)


def build(**overrides: Any) -> tuple[TrainingCluster, dict[str, Any]]:
    _, stack = library_stack()
    network = MlVpc(stack, "Network", MlVpcProps(availability_zones=("us-west-2a", "us-west-2b")))
    props: dict[str, Any] = {
        "base": BaseClusterProps(vpc=network.vpc, cluster_name="train"),
        "node_groups": GROUPS,
        "teams": TEAMS,
        "sweeps": SWEEPS,
        **overrides,
    }
    cluster = TrainingCluster(stack, "Training", TrainingClusterProps(**props))
    return cluster, assertions.Template.from_stack(stack).to_json()


@pytest.fixture(scope="module")
def shared() -> tuple[TrainingCluster, dict[str, Any]]:
    return build()


def by_name(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def trials(cluster: TrainingCluster) -> dict[str, dict[str, Any]]:
    return by_name(cluster.sweeps_chart.to_json(), "TrainJob")


# Fine-tuning types and runtime


def test_the_brief_s_small_types_are_fine_tuning_types() -> None:
    types = fine_tuning_instance_types()
    assert {"p5.4xlarge", "trn1.2xlarge", "g6e.xlarge", "g6e.48xlarge"} <= set(types)
    assert "p5.48xlarge" not in types and "g6.xlarge" not in types  # whole-node training; inference only


def test_fine_tuning_runtime_is_single_node_without_fabric_settings(shared: Any) -> None:
    cluster, _ = shared
    runtimes = by_name(cluster.runtimes_chart.to_json(), "ClusterTrainingRuntime")
    # One per group of a fine-tuning type (g6e.xlarge, trn1.2xlarge), none for p5.48xlarge.
    assert {name for name in runtimes if name.startswith("eks-ml-finetune-")} == {
        "eks-ml-finetune-l40s",
        "eks-ml-finetune-trn",
    }
    for group in ("l40s", "trn"):
        fine_tune = runtimes[f"eks-ml-finetune-{group}"]
        assert fine_tune["spec"]["mlPolicy"]["numNodes"] == 1
        (node,) = fine_tune["spec"]["template"]["spec"]["replicatedJobs"]
        pod = node["template"]["spec"]["template"]["spec"]
        assert "FI_PROVIDER" not in {e["name"] for e in pod["containers"][0]["env"]}  # one node never talks EFA
        # Pinned to its group in the runtime, where Kueue sees it when it picks the flavor.
        assert pod["nodeSelector"] == {"eks-ml.io/node-group": group}
        # the same failure policy as every whole-node runtime
        assert fine_tune["spec"]["template"]["spec"]["failurePolicy"] == failure_policy(DEFAULT_MAX_RESTARTS)


def test_fine_tuning_jobs_take_one_node_without_efa(shared: Any) -> None:
    cluster, _ = shared
    jobs = by_name(cluster.jobs_chart.to_json(), "TrainJob")
    # No EFA on g6e.xlarge and trn1.2xlarge: no multi-node example or fabric test there, only fine-tuning.
    assert set(jobs) == {"p5-example", "p5-fabric-test", "l40s-fine-tune", "trn-fine-tune"}
    for group in ("l40s", "trn"):
        trainer = jobs[f"{group}-fine-tune"]["spec"]["trainer"]
        spec = cluster.node_groups[group].spec
        assert trainer["numNodes"] == 1 and trainer["numProcPerNode"] == spec.workers_per_node
        assert trainer["resourcesPerNode"]["requests"] == {k: str(v) for k, v in single_node_resources(spec).items()}
        assert "vpc.amazonaws.com/efa" not in trainer["resourcesPerNode"]["requests"]
    assert jobs["trn-fine-tune"]["spec"]["runtimeRef"]["name"] == "eks-ml-finetune-trn"
    assert not any("runtimePatches" in job["spec"] for job in jobs.values())  # Kueue 0.19.2 would not see them


def test_p5_4xlarge_gets_both_kinds_of_jobs() -> None:
    cluster, _ = build(
        node_groups=[TrainingNodeGroupProps(name="small", instance_type="p5.4xlarge", desired_size=2)],
        teams=(),
        sweeps=(),
    )
    jobs = by_name(cluster.jobs_chart.to_json(), "TrainJob")
    assert set(jobs) == {"small-example", "small-fabric-test", "small-fine-tune"}
    assert jobs["small-example"]["spec"]["trainer"]["resourcesPerNode"]["requests"]["vpc.amazonaws.com/efa"] == "1"
    assert lookup("p5.4xlarge").efa_interfaces == 1


# Kueue: cohort, team queues, priorities


def test_teams_share_the_nodes_in_one_cohort(shared: Any) -> None:
    cluster, _ = shared
    assert cluster.teams_chart is not None
    objects = cluster.teams_chart.to_json()
    assert list(by_name(objects, "Cohort")) == ["eks-ml-training"]
    priorities = by_name(objects, "WorkloadPriorityClass")
    assert priorities["eks-ml-production"]["value"] == PRODUCTION_PRIORITY > SWEEP_PRIORITY
    assert priorities["eks-ml-sweep"]["value"] == SWEEP_PRIORITY
    queues = by_name(objects, "ClusterQueue")
    production = by_name(cluster.queues_chart.to_json(), "ClusterQueue")["training"]
    assert {q["spec"]["cohortName"] for q in [*queues.values(), production]} == {"eks-ml-training"}
    # Quotas in whole nodes: research holds 2 of 4 l40s, nlp 1 of 2 p5 and 1 of 2 trn, production the rest.
    gpus = {
        name: {
            flavor["name"]: next(r for r in flavor["resources"] if r["name"] == "nvidia.com/gpu")
            for flavor in queue["spec"]["resourceGroups"][0]["flavors"]
        }
        for name, queue in {**queues, "training": production}.items()
    }
    assert gpus["research"]["l40s"] == {"name": "nvidia.com/gpu", "nominalQuota": 2, "lendingLimit": 1}
    assert gpus["nlp"]["p5"] == {"name": "nvidia.com/gpu", "nominalQuota": 8, "borrowingLimit": 8}
    assert gpus["training"]["p5"]["nominalQuota"] == 8 and gpus["training"]["l40s"]["nominalQuota"] == 2
    total = sum(g["p5"]["nominalQuota"] for g in gpus.values())
    assert total == 16  # the cohort never promises more than the 2 p5 nodes hold
    assert production["spec"]["preemption"]["borrowWithinCohort"]["maxPriorityThreshold"] == SWEEP_PRIORITY
    assert queues["research"]["spec"]["preemption"]["reclaimWithinCohort"] == "LowerPriority"
    local = by_name(objects, "LocalQueue")
    assert local["research"]["metadata"]["namespace"] == "team-research"


def test_trials_run_without_the_production_namespace_s_claim(shared: Any) -> None:
    cluster, _ = shared
    objects = cluster.runtimes_chart.to_json()
    runtimes = by_name(objects, "ClusterTrainingRuntime")
    for trial in trials(cluster).values():
        runtime = runtimes[trial["spec"]["runtimeRef"]["name"]]
        assert runtime["metadata"]["name"].startswith("eks-ml-sweep-")
        (node,) = runtime["spec"]["template"]["spec"]["replicatedJobs"]
        volumes = node["template"]["spec"]["template"]["spec"]["volumes"]
        # A PVC is namespaced and the static FSx volume binds one claim, in the production namespace.
        assert not any("persistentVolumeClaim" in v for v in volumes)
    assert any(
        "persistentVolumeClaim" in v
        for v in runtimes["eks-ml-finetune-l40s"]["spec"]["template"]["spec"]["replicatedJobs"][0]["template"]["spec"][
            "template"
        ]["spec"]["volumes"]
    )
    # The scripts ConfigMap sits in every namespace jobs run in (a pod mounts only its own namespace's).
    config_maps = {o["metadata"]["namespace"] for o in objects if o["kind"] == "ConfigMap"}
    job_namespaces = {j["metadata"]["namespace"] for j in [*cluster.jobs_chart.to_json(), *trials(cluster).values()]}
    assert job_namespaces == config_maps == {"training", "team-research", "team-nlp"}


def test_production_jobs_outrank_sweep_trials(shared: Any) -> None:
    cluster, _ = shared
    for job in cluster.jobs_chart.to_json():
        assert job["metadata"]["labels"]["kueue.x-k8s.io/priority-class"] == "eks-ml-production"
    for job in trials(cluster).values():
        assert job["metadata"]["labels"]["kueue.x-k8s.io/priority-class"] == "eks-ml-sweep"


def test_without_teams_nothing_changes_in_the_queues() -> None:
    cluster, _ = build(teams=(), sweeps=())
    assert cluster.teams_chart is None and cluster.sweeps_yaml() == ""
    production = by_name(cluster.queues_chart.to_json(), "ClusterQueue")["training"]
    assert "cohortName" not in production["spec"] and "preemption" not in production["spec"]
    assert all("kueue.x-k8s.io/priority-class" not in j["metadata"]["labels"] for j in cluster.jobs_chart.to_json())


@requires_chart_cache
def test_every_new_object_passes_the_validator_and_cel_gate(shared: Any) -> None:
    cluster, _ = shared
    assert cluster.teams_chart is not None
    objects = [
        *cluster.teams_chart.to_json(),
        *cluster.queues_chart.to_json(),
        *cluster.runtimes_chart.to_json(),
        *cluster.jobs_chart.to_json(),
        *cluster.sweeps_chart.to_json(),
    ]
    assert validate_objects(objects) == []


@requires_chart_cache
def test_the_validator_refuses_broken_team_and_trial_objects(shared: Any) -> None:
    cluster, _ = shared
    assert cluster.teams_chart is not None
    queue = copy.deepcopy(by_name(cluster.teams_chart.to_json(), "ClusterQueue")["nlp"])
    del queue["spec"]["cohortName"]  # borrowing without a cohort: Kueue's CEL rule refuses it
    assert any("borrowingLimit must be nil" in p for p in validate_objects([queue]))
    priority = copy.deepcopy(by_name(cluster.teams_chart.to_json(), "WorkloadPriorityClass")["eks-ml-sweep"])
    priority["spec"] = {"value": 1}  # the value sits at the top level, not in a spec
    assert validate_objects([priority]) != []
    runtime = copy.deepcopy(by_name(cluster.runtimes_chart.to_json(), "ClusterTrainingRuntime")["eks-ml-sweep-l40s"])
    pod = runtime["spec"]["template"]["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"]
    pod["nodeSelector"] = {"eks-ml.io/node-group": 4}  # a label value must be a string
    assert validate_objects([runtime]) != []


# Trials


def test_grid_trials_cover_every_combination_in_order(shared: Any) -> None:
    cluster, _ = shared
    found = trials(cluster)
    grid = [found[f"lr-grid-{i:03d}"] for i in range(4)]
    points = [cmd[cmd.index("--lr") :] for cmd in (t["spec"]["trainer"]["command"] for t in grid)]
    assert points == [
        ["--lr", "0.0001", "--batch", "32"],
        ["--lr", "0.0001", "--batch", "64"],
        ["--lr", "0.0003", "--batch", "32"],
        ["--lr", "0.0003", "--batch", "64"],
    ]
    env = {e["name"]: e["value"] for e in grid[1]["spec"]["trainer"]["env"]}
    assert env == {"EKS_ML_JOB_NAME": "lr-grid-001", "EKS_ML_HP_LR": "0.0001", "EKS_ML_HP_BATCH": "64"}
    labels = grid[1]["metadata"]["labels"]
    assert labels["kueue.x-k8s.io/queue-name"] == "research" and labels["eks-ml.io/sweep"] == "lr-grid"
    assert grid[1]["metadata"]["namespace"] == "team-research"


def test_random_trials_are_distinct_and_fixed_by_the_seed() -> None:
    values = {"lr": [1e-4, 3e-4, 1e-3, 3e-3], "batch": [16, 32, 64], "width": [256, 512, 1024]}
    drawn = SearchSpace.random(values, trials=10, seed=7).points()
    assert drawn == SearchSpace.random(values, trials=10, seed=7).points()
    assert drawn != SearchSpace.random(values, trials=10, seed=8).points()
    assert len({json.dumps(p, sort_keys=True) for p in drawn}) == 10
    assert all(p[name] in values[name] for p in drawn for name in values)
    # Every combination exactly once when all are drawn: the index decoding covers the grid.
    every = SearchSpace.random(values, trials=36, seed=1).points()
    grid = SearchSpace.grid(values).points()
    assert sorted(json.dumps(p, sort_keys=True) for p in every) == sorted(json.dumps(p, sort_keys=True) for p in grid)


def test_the_example_script_reads_every_sweepable_hyperparameter(shared: Any) -> None:
    cluster, _ = shared
    from eks_ml.training.workloads import train_example as script  # torch is imported only inside main()

    for trial in trials(cluster).values():
        command = trial["spec"]["trainer"]["command"]
        args = script.parse_args(command[2:])
        for flag in ("lr", "batch", "width"):
            if f"--{flag}" in command:
                assert str(getattr(args, flag)) == command[command.index(f"--{flag}") + 1]
    assert set(EXAMPLE_HYPERPARAMETERS) <= set(vars(script.parse_args([])))
    with pytest.raises(SystemExit):  # a flag the script lacks is refused, which is what the check relies on
        script.parse_args(["--momentum", "0.9"])
    with pytest.raises(SystemExit):
        script.parse_args(["--lr", "0"])


def test_trials_land_on_their_group_through_their_team_queue(shared: Any) -> None:
    cluster, _ = shared
    lines = [line for line in cluster.plan.placements if "team-" in line]
    assert len(lines) == 8
    assert all("in Kueue flavor l40s -> managed node group l40s" in line for line in lines if "lr-grid" in line)
    assert all("in Kueue flavor trn -> managed node group trn" in line for line in lines if "/rand-" in line)


def test_without_the_runtime_s_node_selector_a_trial_would_take_a_p5_node(shared: Any) -> None:
    cluster, _ = shared
    applied = [o for _, chart in cluster.applied_charts for o in chart.to_json()]
    trial = trials(cluster)["lr-grid-000"]
    (pinned,) = workloads_from_objects([*applied, trial], "test")[-1:]
    assert "flavor l40s" in pinned.name
    unpinned_runtimes = copy.deepcopy(applied)
    for obj in unpinned_runtimes:
        if obj["kind"] == "ClusterTrainingRuntime":
            obj["spec"]["template"]["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"].pop(
                "nodeSelector", None
            )
    (unpinned,) = workloads_from_objects([*unpinned_runtimes, trial], "test")[-1:]
    assert "flavor p5" in unpinned.name  # the first GPU flavor with quota: why the runtime pins the group


def test_a_pin_in_a_trainjob_runtime_patch_is_caught_as_invisible_to_kueue(shared: Any) -> None:
    # Kueue 0.19.2 picks the flavor without Trainer 2.3's runtimePatches: the model does the same, and a patched
    # selector that contradicts the flavor Kueue chose leaves the pod blocked.
    cluster, _ = shared
    applied = [copy.deepcopy(o) for _, chart in cluster.applied_charts for o in chart.to_json()]
    for obj in applied:
        if obj["kind"] == "ClusterTrainingRuntime":
            obj["spec"]["template"]["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"].pop(
                "nodeSelector", None
            )
    trial = copy.deepcopy(trials(cluster)["lr-grid-000"])
    pod_spec = {"nodeSelector": {"eks-ml.io/node-group": "l40s"}}
    node_job = {"name": "node", "template": {"spec": {"template": {"spec": pod_spec}}}}
    trial["spec"]["runtimePatches"] = [
        {"manager": "test", "trainingRuntimeSpec": {"template": {"spec": {"replicatedJobs": [node_job]}}}}
    ]
    (pod,) = workloads_from_objects([*applied, trial], "test")[-1:]
    assert pod.blocked and "which Kueue does not see when it picks a flavor" in pod.blocked


def test_borrowing_admits_what_the_nominal_quota_alone_cannot(shared: Any) -> None:
    cluster, _ = shared
    # Production keeps 1 of 2 p5 nodes; the 2-node example is admitted by borrowing nlp's idle node.
    assert any(
        line.startswith("TrainJob training/p5-example (node pods) in Kueue flavor p5")
        for line in cluster.plan.placements
    )
    applied = [o for _, chart in cluster.applied_charts for o in chart.to_json()]
    example = by_name(cluster.jobs_chart.to_json(), "TrainJob")["p5-example"]
    alone = [copy.deepcopy(o) for o in applied]
    for queue in alone:
        if queue["kind"] == "ClusterQueue":
            queue["spec"].pop("cohortName", None)
    (pod,) = workloads_from_objects([*alone, example], "test")[-1:]
    assert pod.blocked and "Kueue would never admit it" in pod.blocked


def test_a_trial_no_queue_can_ever_admit_fails_the_model() -> None:
    # research holds every l40s node and lends none; nlp has none and the production queue keeps none.
    teams = (
        TeamQueue(name="research", nodes={"l40s": 4}, lending_limit=0),
        TeamQueue(name="nlp", nodes={"p5": 1}),
    )
    sweep = SweepProps(name="s", team="nlp", node_group="l40s", space=SearchSpace.grid({"lr": [1e-4]}))
    with pytest.raises(ValidationError, match="TrainJob team-nlp/s-000"):
        build(teams=teams, sweeps=(sweep,))


def test_the_plan_shows_teams_quotas_and_sweeps(shared: Any) -> None:
    cluster, _ = shared
    notes = cluster.plan.notes
    assert "Kueue cohort: production queue keeps 1 of 2 p5 nodes, 2 of 4 l40s nodes, 1 of 2 trn nodes" in notes[-5]
    assert any(n.startswith("team research (namespace team-research): quota 0 p5, 2 l40s, 0 trn nodes") for n in notes)
    assert (
        "sweep lr-grid (team research, group l40s): 4 trials, up to 4 at once when the cohort has idle nodes" in notes
    )
    assert "sweep rand (team nlp, group trn): 4 trials, up to 2 at once when the cohort has idle nodes" in notes


def test_trials_are_rendered_not_applied(shared: Any) -> None:
    cluster, template = shared
    manifests = json.dumps(
        [r["Properties"]["Manifest"] for r in of_type(template, "Custom::AWSCDK-EKS-KubernetesResource").values()]
    )
    assert "lr-grid" not in manifests and "WorkloadPriorityClass" in manifests
    docs = list(yaml.safe_load_all(cluster.sweeps_yaml()))
    assert [d["metadata"]["name"] for d in docs] == [
        *(f"lr-grid-{i:03d}" for i in range(4)),
        *(f"rand-{i:03d}" for i in range(4)),
    ]


# Bad input

SPACE = SearchSpace.grid({"lr": [1e-4]})
BAD = [
    pytest.param({"teams": (TeamQueue(name="a"), TeamQueue(name="a"))}, r"teams\.name='a'", id="duplicate-team"),
    pytest.param({"teams": (TeamQueue(name="training"),)}, r"teams\.name='training'", id="team-named-production"),
    pytest.param(
        {"teams": (TeamQueue(name="a", namespace="training"),)},
        r"teams\.namespace='training'",
        id="team-in-production-ns",
    ),
    pytest.param(
        {"teams": (TeamQueue(name="a", nodes={"p6": 1}),)},
        r"teams\[0\]\.nodes='p6'.*node group of this cluster",
        id="unknown-group",
    ),
    pytest.param(
        {"teams": (TeamQueue(name="a", nodes={"p5": 2}), TeamQueue(name="b", nodes={"p5": 1}))},
        r"teams\.nodes=.*at most 2 nodes of group p5",
        id="over-quota",
    ),
    pytest.param(
        {"teams": (TeamQueue(name="a", nodes={"p5": -1}),)}, r"teams\[0\]\.nodes\[p5\]=-1", id="negative-nodes"
    ),
    pytest.param({"teams": (TeamQueue(name="A_b"),)}, r"teams\[0\]\.name='A_b'", id="bad-team-name"),
    pytest.param(
        {"teams": (TeamQueue(name="a", namespace="kueue-system"),)},
        r"teams\[0\]\.namespace='kueue-system': allowed a namespace of the team's own.*leave namespace unset",
        id="team-in-kueues-ns",
    ),
    pytest.param(
        {"teams": (TeamQueue(name="a", borrowing_limit=-1),)},
        r"teams\[0\]\.borrowing_limit=-1",
        id="negative-borrowing",
    ),
    pytest.param({"teams": ["a"]}, r"teams", id="team-not-a-teamqueue"),
    pytest.param(
        {"sweeps": (SweepProps(name="s", team="nobody", node_group="p5", space=SPACE),)},
        r"sweeps\[0\]\.team='nobody'",
        id="unknown-team",
    ),
    pytest.param(
        {"sweeps": (SweepProps(name="s", team="research", node_group="p6", space=SPACE),)},
        r"sweeps\[0\]\.node_group='p6'",
        id="sweep-unknown-group",
    ),
    pytest.param(
        {
            "teams": (TeamQueue(name="research", borrowing_limit=0),),
            "sweeps": (SweepProps(name="s", team="research", node_group="p5", space=SPACE),),
        },
        r"sweeps\[0\]\.node_group='p5'.*has nodes or may borrow",
        id="no-quota-no-borrowing",
    ),
    pytest.param(
        {
            "sweeps": (
                SweepProps(name="s", team="research", node_group="l40s", space=SearchSpace.grid({"momentum": [0.9]})),
            )
        },
        r"a flag of the example script: lr, batch, width, steps",
        id="unknown-hyperparameter",
    ),
    pytest.param(
        {
            "sweeps": (
                SweepProps(name="s", team="research", node_group="l40s", space=SearchSpace.grid({"batch": [1.5]})),
            )
        },
        r"values\[batch\]=1\.5.*positive whole numbers",
        id="fractional-batch",
    ),
    pytest.param(
        {"sweeps": (SweepProps(name="s", team="research", node_group="l40s", space=SearchSpace.grid({"lr": []})),)},
        r"values\[lr\]=\[\].*non-empty list",
        id="no-values",
    ),
    pytest.param(
        {
            "sweeps": (
                SweepProps(name="s", team="research", node_group="l40s", space=SearchSpace.grid({"lr": [1e-4, 1e-4]})),
            )
        },
        r"distinct values",
        id="repeated-value",
    ),
    pytest.param(
        {
            "sweeps": (
                SweepProps(
                    name="s",
                    team="research",
                    node_group="l40s",
                    space=SearchSpace.random({"lr": [1e-4, 3e-4]}, trials=3),
                ),
            )
        },
        r"space\.trials=3.*at most 2",
        id="too-many-random-trials",
    ),
    pytest.param(
        {
            "sweeps": (
                SweepProps(
                    name="s", team="research", node_group="l40s", space=SearchSpace(values={"lr": [1e-4]}, trials=2)
                ),
            )
        },
        r"no trial count with GRID",
        id="grid-with-trials",
    ),
    pytest.param(
        {
            "sweeps": (
                SweepProps(
                    name="s",
                    team="research",
                    node_group="l40s",
                    space=SearchSpace.grid({"width": list(range(1, 40)), "batch": list(range(1, 40))}),
                ),
            )
        },
        r"at most 1000 trials",
        id="too-many-trials",
    ),
    pytest.param(
        {
            "sweeps": (
                SweepProps(name="s", team="research", node_group="l40s", space=SPACE),
                SweepProps(name="s", team="nlp", node_group="trn", space=SPACE),
            )
        },
        r"sweeps\.name='s'",
        id="duplicate-sweep",
    ),
    pytest.param(
        {"sweeps": (SweepProps(name="S!", team="research", node_group="l40s", space=SPACE),)},
        r"sweeps\[0\]\.name='S!'",
        id="bad-sweep-name",
    ),
]


@pytest.mark.parametrize(("overrides", "message"), BAD)
def test_bad_teams_and_sweeps(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        build(**{"sweeps": (), **overrides})


def test_fine_tuning_jobs_and_trials_on_a_capacity_block_carry_its_settings() -> None:
    # Every job on a block is told when to checkpoint and ends before the block does, single-node ones too.
    block = Capacity.capacity_block(
        "cr-0123456789abcdef0", start="2026-12-01T11:30:00Z", end="2026-12-03T11:30:00Z", upfront_usd=900.0
    )
    groups = (
        TrainingNodeGroupProps(name="p5", desired_size=2),
        TrainingNodeGroupProps(name="trn", instance_type="trn1.2xlarge", desired_size=0, max_size=2, capacity=block),
    )
    sweep = SweepProps(name="blk", team="nlp", node_group="trn", space=SearchSpace.grid({"lr": [1e-4]}))
    cluster, _ = build(node_groups=groups, teams=(TeamQueue(name="nlp", nodes={"trn": 1}),), sweeps=(sweep,))
    jobs = [*cluster.jobs_chart.to_json(), *cluster.sweeps_chart.to_json()]
    on_block = {job["metadata"]["name"]: job for job in jobs if job["metadata"]["name"] in ("trn-fine-tune", "blk-000")}
    assert set(on_block) == {"trn-fine-tune", "blk-000"}
    for name, job in on_block.items():
        env = {item["name"]: item.get("value") for item in job["spec"]["trainer"]["env"]}
        assert env["EKS_ML_CAPACITY_BLOCK"] == "cr-0123456789abcdef0", name
        assert job["metadata"]["labels"]["kueue.x-k8s.io/max-exec-time-seconds"] == str(4 * 3600), name


def test_the_plan_counts_only_what_the_cohort_may_lend() -> None:
    # research owns 1 of 4 l40s nodes, nlp the other 3 and lends none, production keeps none: one trial at a time.
    teams = (
        TeamQueue(name="research", nodes={"l40s": 1}),
        TeamQueue(name="nlp", nodes={"l40s": 3}, lending_limit=0),
    )
    sweep = SweepProps(name="s", team="research", node_group="l40s", space=SearchSpace.grid({"lr": [1e-4, 3e-4]}))
    cluster, _ = build(teams=teams, sweeps=(sweep,))
    (summary,) = cluster.sweeps
    assert (summary.parallel, summary.borrowing) == (1, False)


@pytest.mark.parametrize(
    "namespace",
    ["default", "kueue-system", "kubeflow-system", "eks-ml-burn-in", "monitoring", "eks-ml-observability"],
)
def test_a_team_may_not_take_a_namespace_of_kubernetes_or_eks_ml(namespace: str) -> None:
    from eks_ml.errors import Problems

    groups = {group.name: group for group in GROUPS}
    problems = Problems()
    assert not check_teams(
        [TeamQueue(name="a", namespace=namespace)],
        groups,
        production_queue="training",
        production_namespace="training",
        problems=problems,
    )
    (problem,) = problems.found
    assert str(problem).startswith(f"teams[0].namespace={namespace!r}: allowed a namespace of the team's own")
    # Its own namespace is fine.
    assert check_teams(
        [TeamQueue(name="a")], groups, production_queue="training", production_namespace="training", problems=Problems()
    )


def test_the_reserved_namespaces_follow_the_releases_and_charts() -> None:
    from eks_ml import helm
    from eks_ml.training import burn_in
    from eks_ml.training.reserved_namespaces import reserved_namespaces

    reserved = reserved_namespaces()
    assert {helm.KUEUE.namespace, helm.KUBEFLOW_TRAINER.namespace, helm.PROMETHEUS.namespace} <= set(reserved)
    assert {"default", burn_in.NAMESPACE, helm.OBSERVABILITY_NAMESPACE} <= set(reserved)
    assert not any(name.startswith("kube-") for name in reserved)  # refused by check_namespace already
