"""Capacity Block lifecycle: the block's window (validated), the watch that stops Kueue admitting onto the block
and tells jobs to checkpoint (its script run for real against a fake API server and a temporary directory), the
jobs that answer the signal (the example under torchrun on the CPU), and the plan's window and price."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import Duration
from rich.console import Console

from eks_ml import BaseClusterProps, MlVpc, MlVpcProps, ValidationError
from eks_ml.cli import render
from eks_ml.config import load_app_config
from eks_ml.errors import Problems
from eks_ml.placement import ClusterModel, workloads_from_objects
from eks_ml.plan import AppPlan, ClusterPlan
from eks_ml.training import (
    Capacity,
    CapacitySource,
    TeamQueue,
    TrainingCluster,
    TrainingClusterProps,
    TrainingNodeGroupProps,
)
from eks_ml.training.block_watch import block_watches
from eks_ml.training.capacity_block import BlockWindow
from eks_ml.training.jobs import workload_scripts
from eks_ml.training.workloads import capacity_block_watch as watch
from eks_ml.training.workloads import checkpoint_contract as contract

from .support import pod_security
from .support.manifests import validate_objects
from .support.synth import ROOT, library_stack

RESERVATION = "cr-0123456789abcdef0"
START, END = "2026-12-01T11:30:00Z", "2026-12-03T11:30:00Z"
WORKLOADS = ROOT / "eks_ml" / "training" / "workloads"


def block(**options: Any) -> Capacity:
    return Capacity.capacity_block(RESERVATION, start=START, end=END, **options)


def group_problems(capacity: Capacity, max_size: int = 2) -> list[str]:
    problems = Problems()
    TrainingNodeGroupProps(name="p5", desired_size=0, max_size=max_size, capacity=capacity).check("g", problems)
    return [str(problem) for problem in problems.found]


# ---- the window ----------------------------------------------------------------------------------------------


def test_the_schedule_follows_from_the_end_date() -> None:
    window = block(upfront_usd=2500.0).window
    assert window is not None and group_problems(block(upfront_usd=2500.0)) == []
    at = lambda text: datetime.fromisoformat(text).astimezone(UTC)  # noqa: E731
    # EC2 terminates from 30 minutes before the end; the defaults stop admitting 4 h before that and signal 30 min
    # before that.
    assert window.termination_starts == at("2026-12-03T11:00:00Z")
    assert window.stop_admitting_at == at("2026-12-03T07:00:00Z")
    assert window.checkpoint_at == at("2026-12-03T10:30:00Z")
    assert window.hours == 48
    assert window.usd_per_instance_hour(2) == pytest.approx(2500 / 96)
    longer = block(longest_job=Duration.hours(10), checkpoint_lead=Duration.minutes(45)).window
    assert longer is not None
    assert (longer.stop_admitting_at, longer.checkpoint_at) == (at("2026-12-03T01:00:00Z"), at("2026-12-03T10:15:00Z"))
    # Without a window a Capacity Block is what it was before: no lifecycle.
    assert Capacity.capacity_block(RESERVATION).window is None


@pytest.mark.parametrize(
    ("capacity", "max_size", "match"),
    [
        pytest.param(
            Capacity.capacity_block(RESERVATION, start="2026-12-01T11:30:00", end=END),
            2,
            r"g\.capacity\.window\.start='2026-12-01T11:30:00': allowed an ISO-8601 time in UTC",
            id="local-time",
        ),
        pytest.param(
            Capacity.capacity_block(RESERVATION, start=START, end="2026-12-03"),
            2,
            r"window\.end='2026-12-03': allowed an ISO-8601 time in UTC",
            id="bare-date",
        ),
        pytest.param(
            Capacity.capacity_block(RESERVATION, start="2026-12-01T13:30:00+02:00", end=END),
            2,
            r"window\.start=.*in UTC",
            id="other-offset",
        ),
        pytest.param(
            Capacity.capacity_block(RESERVATION, start=END, end=START),
            2,
            r"window\.end='2026-12-01T11:30:00Z': allowed a time after start",
            id="end-before-start",
        ),
        pytest.param(Capacity.capacity_block(RESERVATION, end=END), 2, r"window\.start=None", id="no-start"),
        pytest.param(
            block(upfront_usd=0.0), 2, r"window\.upfront_usd=0\.0: allowed the block's upfront fee", id="free"
        ),
        pytest.param(block(upfront_usd="2500"), 2, r"window\.upfront_usd='2500': allowed a number", id="price-string"),
        pytest.param(
            block(instance_count=1),
            2,
            r"window\.instance_count=1: allowed at least the node group's max_size",
            id="few",
        ),
        pytest.param(
            block(checkpoint_lead=Duration.minutes(5)),
            2,
            r"window\.checkpoint_lead='5 minutes': allowed at least 10 minutes",
            id="lead-shorter-than-two-watch-runs",
        ),
        pytest.param(
            block(longest_job=Duration.hours(48)),
            2,
            r"window\.longest_job='48 hours': allowed shorter than the block's usable time \(47\.5 hours",
            id="job-longer-than-the-block",
        ),
        pytest.param(block(longest_job=4), 2, r"window\.longest_job=4: allowed an aws_cdk\.Duration", id="bare-number"),
        pytest.param(
            Capacity(CapacitySource.CAPACITY_RESERVATION, RESERVATION, BlockWindow(start=START, end=END)),
            2,
            r"capacity\.window=.*a window only for a Capacity Block",
            id="window-on-a-reservation",
        ),
    ],
)
def test_a_wrong_window_is_refused(capacity: Capacity, max_size: int, match: str) -> None:
    found = group_problems(capacity, max_size)
    assert any(re.search(match, problem) for problem in found), found


def test_the_app_configuration_names_its_keys() -> None:
    keys = {
        "eks-ml:trainingCapacity": "capacityBlock",
        "eks-ml:trainingReservationId": RESERVATION,
        "eks-ml:trainingCapacityBlockStart": START,
        "eks-ml:trainingCapacityBlockEnd": END,
        "eks-ml:trainingCapacityBlockUpfrontUsd": "2500",
    }
    window = load_app_config(keys).training_node_group().capacity.window
    assert window is not None and (window.start, window.end, window.upfront_usd) == (START, END, 2500.0)
    with pytest.raises(ValidationError, match=r"eks-ml:trainingCapacityBlockEnd='2026-12-03T11:30:00\+01:00'"):
        load_app_config({**keys, "eks-ml:trainingCapacityBlockEnd": "2026-12-03T11:30:00+01:00"})
    with pytest.raises(ValidationError, match=r"eks-ml:trainingCapacityBlockUpfrontUsd='lots': allowed a number"):
        load_app_config({**keys, "eks-ml:trainingCapacityBlockUpfrontUsd": "lots"})
    # The fee is spread over the block's instances, not over the node group's (zero before the block starts).
    counted = load_app_config({**keys, "eks-ml:trainingNodeCount": 0, "eks-ml:trainingCapacityBlockInstanceCount": 4})
    assert counted.training_node_group().capacity.window.instance_count == 4  # type: ignore[union-attr]
    with pytest.raises(ValidationError, match=r"eks-ml:trainingCapacityBlockInstanceCount=1: allowed at least"):
        load_app_config({**keys, "eks-ml:trainingNodeCount": 2, "eks-ml:trainingCapacityBlockInstanceCount": 1})


# ---- the cluster: watch chart, jobs, model, plan -------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster() -> TrainingCluster:
    _, stack = library_stack()
    network = MlVpc(stack, "Network", MlVpcProps(availability_zones=("us-west-2a", "us-west-2b")))
    groups = [
        TrainingNodeGroupProps(name="p5", desired_size=0, max_size=2, capacity=block(upfront_usd=2500.0)),
        TrainingNodeGroupProps(name="od", desired_size=1, max_size=2),
    ]
    props = TrainingClusterProps(base=BaseClusterProps(vpc=network.vpc, cluster_name="train"), node_groups=groups)
    return TrainingCluster(stack, "Training", props)


def objects(cluster: TrainingCluster, kind: str, chart: str = "capacity") -> list[dict[str, Any]]:
    charts = {
        "capacity": cluster.capacity_block_chart,
        "queues": cluster.queues_chart,
        "runtimes": cluster.runtimes_chart,
        "jobs": cluster.jobs_chart,
    }
    found = charts[chart]
    assert found is not None
    return [obj for obj in found.to_json() if obj["kind"] == kind]


def watch_env(cluster: TrainingCluster) -> dict[str, str]:
    (cron_job,) = objects(cluster, "CronJob")
    (container,) = cron_job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    return {item["name"]: item["value"] for item in container["env"]}


def test_one_watch_for_the_group_on_the_block_with_its_schedule(cluster: TrainingCluster) -> None:
    assert [w.flavor for w in block_watches(list(cluster.node_groups.values()))] == ["p5"]  # not the On-Demand group
    (cron_job,) = objects(cluster, "CronJob")
    assert cron_job["metadata"]["name"] == "capacity-block-p5"
    assert cron_job["spec"]["schedule"] == "*/5 * * * *" and cron_job["spec"]["timeZone"] == "Etc/UTC"
    assert cron_job["spec"]["concurrencyPolicy"] == "Forbid"
    env = watch_env(cluster)
    assert {
        k: env[k] for k in ("RESERVATION_ID", "END", "STOP_ADMITTING_AT", "CHECKPOINT_AT", "TERMINATION_STARTS")
    } == {
        "RESERVATION_ID": RESERVATION,
        "END": END,
        "STOP_ADMITTING_AT": "2026-12-03T07:00:00Z",
        "CHECKPOINT_AT": "2026-12-03T10:30:00Z",
        "TERMINATION_STARTS": "2026-12-03T11:00:00Z",
    }


def test_the_watch_names_what_the_other_charts_apply(cluster: TrainingCluster) -> None:
    env = watch_env(cluster)
    (queue,) = objects(cluster, "ClusterQueue", "queues")
    assert env["CLUSTER_QUEUES"] == queue["metadata"]["name"]  # no teams: the production queue alone
    flavors = [f["name"] for group in queue["spec"]["resourceGroups"] for f in group["flavors"]]
    assert env["FLAVOR"] in flavors
    (config_map,) = objects(cluster, "ConfigMap", "runtimes")
    (cron_job,) = objects(cluster, "CronJob")
    pod = cron_job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    script = pod["containers"][0]["command"][-1]
    assert Path(script).name in config_map["data"] and "checkpoint_contract.py" in config_map["data"]
    assert Path(script).name not in workload_scripts()  # only clusters with a watch ship it
    assert {v["configMap"]["name"] for v in pod["volumes"] if "configMap" in v} == {config_map["metadata"]["name"]}
    # The signal goes where the jobs look, on the claim they mount.
    runtime = objects(cluster, "ClusterTrainingRuntime", "runtimes")[0]
    node_pod = runtime["spec"]["template"]["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"]
    runtime_env = {item["name"]: item["value"] for item in node_pod["containers"][0]["env"] if "value" in item}
    assert env["SIGNAL_ROOT"] == runtime_env[contract.CHECKPOINT_DIR_ENV]
    assert _claims(pod) == _claims(node_pod) != set()


def _claims(pod: dict[str, Any]) -> set[str]:
    return {v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if "persistentVolumeClaim" in v}


def test_the_watch_may_only_get_and_patch_its_cluster_queue(cluster: TrainingCluster) -> None:
    (role,) = objects(cluster, "ClusterRole")
    (queue,) = objects(cluster, "ClusterQueue", "queues")
    assert role["rules"] == [
        {
            "apiGroups": ["kueue.x-k8s.io"],
            "resources": ["clusterqueues"],
            "resourceNames": [queue["metadata"]["name"]],
            "verbs": ["get", "patch"],
        }
    ]
    (binding,) = objects(cluster, "ClusterRoleBinding")
    (cron_job,) = objects(cluster, "CronJob")
    pod = cron_job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": pod["serviceAccountName"], "namespace": cron_job["metadata"]["namespace"]}
    ]


def test_with_teams_the_watch_holds_the_block_in_every_queue_that_lists_it() -> None:
    # Team queues share the cohort: one left with quota on the block's flavor would go on admitting sweep trials
    # onto the block (or lending it) after production's queue stopped.
    _, stack = library_stack()
    network = MlVpc(stack, "Network", MlVpcProps(availability_zones=("us-west-2a", "us-west-2b")))
    groups = [
        TrainingNodeGroupProps(name="p5", desired_size=0, max_size=2, capacity=block()),
        TrainingNodeGroupProps(name="od", desired_size=1, max_size=2),
    ]
    teams = [TeamQueue(name="research", nodes={"p5": 1}), TeamQueue(name="nlp", nodes={"od": 1})]
    props = TrainingClusterProps(
        base=BaseClusterProps(vpc=network.vpc, cluster_name="train"), node_groups=groups, teams=teams
    )
    teamed = TrainingCluster(stack, "Training", props)
    queues = [
        *objects(teamed, "ClusterQueue", "queues"),
        *(o for o in teamed.teams_chart.to_json() if o["kind"] == "ClusterQueue"),
    ]  # type: ignore[union-attr]
    listing = [
        q["metadata"]["name"]
        for q in queues
        if any(f["name"] == "p5" for g in q["spec"]["resourceGroups"] for f in g["flavors"])
    ]
    assert listing == ["training", "research", "nlp"]
    assert watch_env(teamed)["CLUSTER_QUEUES"] == "training,research,nlp"
    (role,) = objects(teamed, "ClusterRole")
    assert role["rules"][0]["resourceNames"] == sorted(listing) and role["rules"][0]["verbs"] == ["get", "patch"]


def test_the_watch_pod_is_hardened_and_valid(cluster: TrainingCluster) -> None:
    (cron_job,) = objects(cluster, "CronJob")
    ((_, pod),) = pod_security.pod_specs(cron_job)
    # Root (to write beside the root-owned checkpoints) in the baseline training namespace, nothing more.
    assert pod_security.problems(pod, "baseline") == []
    assert [p for p in pod_security.problems(pod, "restricted") if "runAsNonRoot" not in p and "user 0" not in p] == []
    assert validate_objects([copy.deepcopy(o) for o in cluster.capacity_block_chart.to_json()]) == []  # type: ignore[union-attr]
    broken = copy.deepcopy(cron_job)
    broken["spec"]["timezone"] = "UTC"  # a misspelt field is refused, not ignored
    assert validate_objects([broken]) != []


def test_the_watch_lands_on_the_system_nodes_in_the_cluster_model(cluster: TrainingCluster) -> None:
    assert "CronJob training/capacity-block-p5 -> managed node group system (m7g.large)" in cluster.plan.placements
    (cron_job,) = objects(cluster, "CronJob")
    stray = copy.deepcopy(cron_job)
    stray["spec"]["jobTemplate"]["spec"]["template"]["spec"]["nodeSelector"] = {"eks-ml.io/node-role": "nowhere"}
    model = ClusterModel("test")
    for source in cluster.model.sources:
        model.add_source(source)
    model.add_workloads(workloads_from_objects([stray], "test"))
    with pytest.raises(ValidationError, match="CronJob training/capacity-block-p5"):
        model.prove()


def test_jobs_on_the_block_carry_its_reservation_and_kueues_maximum_execution_time(cluster: TrainingCluster) -> None:
    jobs = {job["metadata"]["name"]: job for job in objects(cluster, "TrainJob", "jobs")}
    for name in ("p5-example", "p5-fabric-test"):
        env = {item["name"]: item["value"] for item in jobs[name]["spec"]["trainer"]["env"]}
        assert env[contract.CAPACITY_BLOCK_ENV] == RESERVATION
        assert jobs[name]["metadata"]["labels"]["kueue.x-k8s.io/max-exec-time-seconds"] == str(4 * 3600)
    for name in ("od-example", "od-fabric-test"):
        env = {item["name"]: item["value"] for item in jobs[name]["spec"]["trainer"]["env"]}
        assert contract.CAPACITY_BLOCK_ENV not in env
        assert "kueue.x-k8s.io/max-exec-time-seconds" not in jobs[name]["metadata"]["labels"]


def test_the_plan_shows_the_window_and_the_price_beside_on_demand(cluster: TrainingCluster) -> None:
    (line,) = cluster.plan.capacity_blocks
    assert (line.group, line.instances, line.hours, line.start, line.end) == ("p5", 2, 48, START, END)
    assert line.usd_per_instance_hour == pytest.approx(2500 / 96, abs=1e-4)
    assert line.on_demand_usd_per_instance_hour == 55.04  # the catalog's p5.48xlarge price
    assert line.on_demand_usd == pytest.approx(55.04 * 96)
    assert line.saving_percent == pytest.approx(100 * (1 - (2500 / 96) / 55.04), abs=0.01)
    # Construct metadata drops nulls: a plan read back from the cloud assembly is the same plan.
    data = json.loads(json.dumps(cluster.plan.to_json()))
    assert ClusterPlan.from_json(data) == cluster.plan
    console = Console(record=True, width=400)
    render(AppPlan([cluster.plan]), console, 500)
    text = console.export_text()
    assert f"Capacity Block {RESERVATION} (p5: 2 x p5.48xlarge) {START} .. {END} (48 h)" in text
    assert "Kueue stops admitting onto it at 2026-12-03T07:00:00Z, jobs checkpoint at 2026-12-03T10:30:00Z" in text
    assert "$2,500.00 upfront = $26.04/instance-hour; On-Demand $55.04/instance-hour" in text
    assert "(the block is 53% cheaper)" in text


def test_a_block_without_a_price_says_so() -> None:
    from eks_ml.cli import capacity_block_line
    from eks_ml.plan import _capacity_block

    line = _capacity_block(TrainingNodeGroupProps(name="p5", desired_size=0, max_size=2, capacity=block()))
    assert line is not None and line.usd_per_instance_hour is None and line.saving_percent is None
    back = ClusterPlan.from_json(
        {
            "name": "n",
            "workload": "training",
            "path": "p",
            "nodes": [],
            "capacity_blocks": [{k: v for k, v in line.__dict__.items() if v is not None}],
        }
    )
    assert back.capacity_blocks == [line]
    assert "no price given (pass upfront_usd" in capacity_block_line(line)


def test_a_karpenter_pool_on_a_block_is_in_the_plan_too() -> None:
    from eks_ml.plan import training_plan
    from eks_ml.training.karpenter_pool import TrainingKarpenterPoolProps

    pools = [
        TrainingKarpenterPoolProps(name="kb", max_nodes=3, capacity=block(upfront_usd=2500.0)),
        TrainingKarpenterPoolProps(name="kc", max_nodes=2, capacity=block(instance_count=4)),
        TrainingKarpenterPoolProps(name="kod", max_nodes=2),  # On-Demand: no block line
    ]
    plan = training_plan("n", "p", system=None, groups=[], file_system=None, placements=[], karpenter_pools=pools)
    assert [(line.group, line.instances, line.reservation_id) for line in plan.capacity_blocks] == [
        ("kb", 3, RESERVATION),  # no instance_count: the pool's max_nodes
        ("kc", 4, RESERVATION),  # the block's own count
    ]
    (kb, _) = plan.capacity_blocks
    assert kb.usd_per_instance_hour == pytest.approx(2500 / (3 * 48), abs=1e-4) and kb.instance_type == "p5.48xlarge"


# ---- the watch script, run for real ---------------------------------------------------------------------------


def test_what_is_due_when() -> None:
    env = {"END": END, "STOP_ADMITTING_AT": "2026-12-03T07:00:00Z", "CHECKPOINT_AT": "2026-12-03T10:30:00Z"}
    at = watch.parse_utc
    assert watch.due(at("2026-12-03T06:59:59Z"), env) == []
    assert watch.due(at("2026-12-03T07:00:00Z"), env) == [watch.HOLD]
    assert watch.due(at("2026-12-03T10:30:00Z"), env) == [watch.HOLD, watch.CHECKPOINT]
    assert watch.due(at(END), env) == []  # the block is gone: nothing to hold, nobody to tell


def _queue(cohort: bool = False, name: str = "training") -> dict[str, Any]:
    def flavor(name: str, gpus: int) -> dict[str, Any]:
        resources = [{"name": "cpu", "nominalQuota": 384}, {"name": "nvidia.com/gpu", "nominalQuota": gpus}]
        return {"name": name, "resources": resources}

    spec: dict[str, Any] = {
        "resourceGroups": [
            {"coveredResources": ["cpu", "nvidia.com/gpu"], "flavors": [flavor("od", 16), flavor("p5", 16)]}
        ]
    }
    if cohort:
        spec["cohortName"] = "ml"
    return {"metadata": {"name": name, "resourceVersion": "7"}, "spec": spec}


def test_the_hold_zeroes_only_the_blocks_flavor_and_tests_what_it_read() -> None:
    patch = watch.hold_patch(_queue(), "p5")
    assert patch == [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "7"},
        {"op": "replace", "path": "/spec/resourceGroups/0/flavors/1/resources/0/nominalQuota", "value": 0},
        {"op": "replace", "path": "/spec/resourceGroups/0/flavors/1/resources/1/nominalQuota", "value": 0},
    ]
    in_cohort = watch.hold_patch(_queue(cohort=True), "p5")
    assert {"op": "add", "path": "/spec/resourceGroups/0/flavors/1/resources/1/borrowingLimit", "value": 0} in in_cohort
    assert watch.hold_patch(_queue(), "absent") == []


def _apply(document: dict[str, Any], patch: list[dict[str, Any]]) -> bool:
    """A JSON patch (test, replace, add), as the API server applies it; False when a test fails."""
    for operation in patch:
        *parents, last = operation["path"].strip("/").split("/")
        target: Any = document
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        key: Any = int(last) if isinstance(target, list) else last
        if operation["op"] == "test" and target[key] != operation["value"]:
            return False
        if operation["op"] in ("replace", "add"):
            target[key] = operation["value"]
    return True


class FakeApi:
    """ClusterQueues by name; the watch may read and patch those in ``allowed`` (its ClusterRole's resourceNames).
    ``conflicts`` PATCHes fail as a concurrent change."""

    def __init__(self, token: str) -> None:
        self.queues = {"training": _queue()}
        self.allowed = {"training"}
        self.token = token
        self.conflicts = 0
        self.requests: list[tuple[str, str]] = []

    @property
    def queue(self) -> dict[str, Any]:
        return self.queues["training"]


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[FakeApi, str]]:
    token = "secret-token"
    (tmp_path / "token").write_text(token)
    fake = FakeApi(token)

    class Handler(BaseHTTPRequestHandler):
        def _reply(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _allowed(self) -> bool:
            fake.requests.append((self.command, self.path))
            if self.headers.get("Authorization") != f"Bearer {fake.token}":
                self._reply(401, {"reason": "Unauthorized"})
                return False
            prefix, _, name = self.path.rpartition("/")
            if prefix != "/apis/kueue.x-k8s.io/v1beta2/clusterqueues" or name not in fake.allowed:
                self._reply(403, {"reason": "Forbidden"})  # the ClusterRole names these queues only
                return False
            return True

        def _name(self) -> str:
            return self.path.rpartition("/")[2]

        def do_GET(self) -> None:  # noqa: N802 (the http.server hook's name)
            if self._allowed():
                self._reply(200, fake.queues[self._name()])

        def do_PATCH(self) -> None:  # noqa: N802
            if not self._allowed():
                return
            patch = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            assert self.headers["Content-Type"] == "application/json-patch+json"
            name = self._name()
            current = fake.queues[name]
            if fake.conflicts:
                fake.conflicts -= 1
                current["metadata"]["resourceVersion"] = str(int(current["metadata"]["resourceVersion"]) + 1)
            updated = copy.deepcopy(current)
            if not _apply(updated, patch):
                self._reply(422, {"reason": "Invalid", "message": "the test operation failed"})
                return
            updated["metadata"]["resourceVersion"] = str(int(updated["metadata"]["resourceVersion"]) + 1)
            fake.queues[name] = updated
            self._reply(200, updated)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _quotas(fake: FakeApi, flavor: str, queue: str = "training") -> list[Any]:
    (entry,) = [f for f in fake.queues[queue]["spec"]["resourceGroups"][0]["flavors"] if f["name"] == flavor]
    return [resource["nominalQuota"] for resource in entry["resources"]]


def _run_watch(tmp_path: Path, server: str, now: str, **overrides: str) -> subprocess.CompletedProcess[str]:
    """The script as the CronJob runs it: from a directory holding it and the contract (the ConfigMap mount),
    with the environment the synthesized CronJob sets."""
    mount = tmp_path / "opt-eks-ml"
    if not mount.exists():
        mount.mkdir()
        for name in ("capacity_block_watch.py", "checkpoint_contract.py"):
            shutil.copy(WORKLOADS / name, mount / name)
    env = {
        "PATH": os.environ["PATH"],
        "RESERVATION_ID": RESERVATION,
        "END": END,
        "TERMINATION_STARTS": "2026-12-03T11:00:00Z",
        "STOP_ADMITTING_AT": "2026-12-03T07:00:00Z",
        "CHECKPOINT_AT": "2026-12-03T10:30:00Z",
        "CLUSTER_QUEUES": "training",
        "FLAVOR": "p5",
        "SIGNAL_ROOT": str(tmp_path / "checkpoints"),
        "API_SERVER": server,
        "TOKEN_FILE": str(tmp_path / "token"),
        "PYTHONDONTWRITEBYTECODE": "1",
        **overrides,
    }
    command = [sys.executable, str(mount / "capacity_block_watch.py"), "--now", now]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)


def test_the_environment_the_tests_use_is_the_cron_jobs(cluster: TrainingCluster) -> None:
    env = watch_env(cluster)
    for key in ("RESERVATION_ID", "END", "TERMINATION_STARTS", "STOP_ADMITTING_AT", "CHECKPOINT_AT", "FLAVOR"):
        assert (
            env[key]
            == {
                "RESERVATION_ID": RESERVATION,
                "END": END,
                "TERMINATION_STARTS": "2026-12-03T11:00:00Z",
                "STOP_ADMITTING_AT": "2026-12-03T07:00:00Z",
                "CHECKPOINT_AT": "2026-12-03T10:30:00Z",
                "FLAVOR": "p5",
            }[key]
        )


def test_the_watch_holds_the_block_then_signals_once(tmp_path: Path, api: tuple[FakeApi, str]) -> None:
    fake, server = api
    signal = contract.block_signal_path(tmp_path / "checkpoints", RESERVATION)

    early = _run_watch(tmp_path, server, "2026-12-03T06:55:00Z")
    assert early.returncode == 0, early.stderr
    assert "nothing due" in early.stdout and fake.requests == [] and not signal.exists()

    held = _run_watch(tmp_path, server, "2026-12-03T07:00:00Z")
    assert held.returncode == 0, held.stderr
    assert "flavor p5 admits nothing from now on" in held.stdout
    assert _quotas(fake, "p5") == [0, 0] and _quotas(fake, "od") == [384, 16]  # the On-Demand flavor still admits
    assert not signal.exists()  # too early for the checkpoint

    told = _run_watch(tmp_path, server, "2026-12-03T10:30:00Z")
    assert told.returncode == 0, told.stderr
    assert "told jobs on cr-0123456789abcdef0 to checkpoint now" in told.stdout
    assert "already admits nothing" in told.stdout
    written = json.loads(signal.read_text())
    assert written == {
        "reservation": RESERVATION,
        "end": END,
        "termination_starts": "2026-12-03T11:00:00Z",
        "written_at": "2026-12-03T10:30:00Z",
    }
    # What a job reads through the contract is exactly that signal.
    job_env = {contract.CHECKPOINT_DIR_ENV: str(tmp_path / "checkpoints"), contract.CAPACITY_BLOCK_ENV: RESERVATION}
    assert contract.block_ending(job_env) == written
    assert contract.block_ending({**job_env, contract.CAPACITY_BLOCK_ENV: "cr-00000000000000000"}) is None
    assert contract.block_ending({contract.CHECKPOINT_DIR_ENV: str(tmp_path / "checkpoints")}) is None

    patches = [r for r in fake.requests if r[0] == "PATCH"]
    again = _run_watch(tmp_path, server, "2026-12-03T10:35:00Z")
    assert again.returncode == 0, again.stderr
    assert "already told" in again.stdout
    assert json.loads(signal.read_text())["written_at"] == "2026-12-03T10:30:00Z"  # written once
    assert [r for r in fake.requests if r[0] == "PATCH"] == patches  # nothing left to patch

    after = _run_watch(tmp_path, server, END)
    assert after.returncode == 0 and "nothing due" in after.stdout


def test_a_concurrent_queue_change_is_retried_with_a_fresh_read(tmp_path: Path, api: tuple[FakeApi, str]) -> None:
    fake, server = api
    fake.conflicts = 1
    result = _run_watch(tmp_path, server, "2026-12-03T07:00:00Z")
    assert result.returncode == 0, result.stderr
    assert [method for method, _ in fake.requests] == ["GET", "PATCH", "GET", "PATCH"]
    assert _quotas(fake, "p5") == [0, 0]


def test_the_hold_covers_every_listed_queue_and_no_other(tmp_path: Path, api: tuple[FakeApi, str]) -> None:
    fake, server = api
    # Production and a team queue in one cohort list the block's flavor; a third queue lists it too but is not
    # the watch's (not in CLUSTER_QUEUES, nor in its ClusterRole).
    fake.queues = {name: _queue(cohort=True, name=name) for name in ("training", "team-a", "elsewhere")}
    fake.allowed = {"training", "team-a"}
    fake.conflicts = 1  # the first PATCH (production's) meets a concurrent change: re-read, then patched
    result = _run_watch(tmp_path, server, "2026-12-03T07:00:00Z", CLUSTER_QUEUES="training,team-a")
    assert result.returncode == 0, result.stderr
    assert "ClusterQueue training: flavor p5 admits nothing from now on" in result.stdout
    assert "ClusterQueue team-a: flavor p5 admits nothing from now on" in result.stdout
    for name in ("training", "team-a"):
        assert _quotas(fake, "p5", name) == [0, 0] and _quotas(fake, "od", name) == [384, 16]
        (entry,) = [f for f in fake.queues[name]["spec"]["resourceGroups"][0]["flavors"] if f["name"] == "p5"]
        assert [resource["borrowingLimit"] for resource in entry["resources"]] == [0, 0]  # borrows nothing either
    assert _quotas(fake, "p5", "elsewhere") == [384, 16]
    assert not any(path.endswith("/elsewhere") for _, path in fake.requests)
    # Idempotent: the next run finds both held and patches nothing.
    patches = [r for r in fake.requests if r[0] == "PATCH"]
    again = _run_watch(tmp_path, server, "2026-12-03T07:05:00Z", CLUSTER_QUEUES="training,team-a")
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("already admits nothing") == 2
    assert [r for r in fake.requests if r[0] == "PATCH"] == patches


def test_one_queue_failing_does_not_spare_the_others(tmp_path: Path, api: tuple[FakeApi, str]) -> None:
    fake, server = api
    fake.queues["team-a"] = _queue(cohort=True, name="team-a")
    fake.allowed = {"team-a"}  # production's queue refused (a ClusterRole out of date): the team's is still held
    result = _run_watch(tmp_path, server, "2026-12-03T07:00:00Z", CLUSTER_QUEUES="training,team-a")
    assert result.returncode != 0 and "failed training: HTTP Error 403" in result.stderr
    assert _quotas(fake, "p5", "team-a") == [0, 0] and _quotas(fake, "p5") == [384, 16]


def test_a_flavor_the_queue_does_not_have_fails_the_run(tmp_path: Path, api: tuple[FakeApi, str]) -> None:
    fake, server = api
    result = _run_watch(tmp_path, server, "2026-12-03T10:30:00Z", FLAVOR="p4d")
    assert result.returncode != 0
    assert "ClusterQueue training has no flavor p4d" in result.stderr
    # The signal went out first: a failing API call never keeps running jobs from saving their work.
    assert contract.block_signal_path(tmp_path / "checkpoints", RESERVATION).exists()
    assert _quotas(fake, "p5") == [384, 16]


def test_a_wrong_token_is_refused_and_changes_nothing(tmp_path: Path, api: tuple[FakeApi, str]) -> None:
    fake, server = api
    fake.token = "another"
    result = _run_watch(tmp_path, server, "2026-12-03T07:00:00Z")
    assert result.returncode != 0 and "401" in result.stderr
    assert _quotas(fake, "p5") == [384, 16]


# ---- the example answers the signal (torchrun, CPU) ---------------------------------------------------------

try:
    import torch
except ImportError:
    torch = None


@pytest.mark.skipif(
    torch is None, reason="torch is not installed (make install adds it: the dev extra pins the CPU build)"
)
def test_the_example_checkpoints_once_when_its_block_signals(tmp_path: Path) -> None:
    root = tmp_path / "checkpoints"
    contract.write_block_signal(root, RESERVATION, {"reservation": RESERVATION, "end": END})
    # The signal of another block is there too: it is not this job's and changes nothing.
    contract.write_block_signal(root, "cr-00000000000000000", {"reservation": "cr-00000000000000000", "end": END})
    env = {
        **os.environ,
        contract.CHECKPOINT_DIR_ENV: str(root),
        contract.JOB_NAME_ENV: "example",
        contract.CAPACITY_BLOCK_ENV: RESERVATION,
        "OMP_NUM_THREADS": "1",
    }
    # One rank: the signal is read and answered by rank 0 alone, with no collective. (Two gloo ranks sometimes
    # abort in their teardown under load, after the last step: the same flake hits test_checkpoint_resume.)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "1"]
    arguments = ["--backend", "gloo", "--steps", "4", "--checkpoint-every", "100", "--width", "16", "--batch", "4"]
    run = subprocess.run(
        [*command, str(WORKLOADS / "train_example.py"), *arguments],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    saved = [int(line.split()[1].rstrip(":")) for line in run.stdout.splitlines() if line.startswith("step ")]
    # Without the signal only the last step is saved (every 100 steps, of 4); with it, the first step after the
    # signal was seen is saved too, once (not at every later step), and the run trains on to the end.
    assert saved == [1, 4]
    assert run.stdout.count("checkpoint now") == 1
    assert f"capacity block {RESERVATION} ends {END}: checkpoint now (step 1)" in run.stdout
    assert contract.latest_complete(root / "example") == contract.Checkpoint(4, root / "example" / "step-000004.pt")
