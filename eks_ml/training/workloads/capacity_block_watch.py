"""Wind work down before a Capacity Block ends (a CronJob runs this every few minutes; python3 stdlib only).

Each run compares the time with the block's schedule (computed at synth from the block's end date, see
eks_ml/training/capacity_block.py) and does what is due, idempotently, so a missed run, a late deploy or a
redeploy that restored the queue is caught up by the next run:

- from STOP_ADMITTING_AT until END: Kueue stops admitting work onto the block. The block's flavor gets a
  nominal quota of 0 (and, in a cohort, a borrowing limit of 0) in every ClusterQueue that lists it (the
  production queue and, with teams, each team's: any one left would go on admitting, or lending, onto the
  block). Admitted workloads keep
  running (Kueue does not evict when a quota shrinks below usage); pending ones go to another flavor of the
  queue or wait. A ClusterQueue stopPolicy would stop every flavor of the queue, not just the block's.
- from CHECKPOINT_AT until END: jobs on the block are told to checkpoint now, through the signal file of the
  checkpoint contract (checkpoint_contract.py, shipped beside this script), written once.
- after END: nothing (the block and its nodes are gone).

Environment: RESERVATION_ID, END, TERMINATION_STARTS, STOP_ADMITTING_AT, CHECKPOINT_AT (ISO-8601 UTC),
CLUSTER_QUEUES (comma-separated), FLAVOR; SIGNAL_ROOT (the jobs' EKS_ML_CHECKPOINT_DIR; unset: the cluster has
no shared file system, so no signal); API_SERVER (default: the in-cluster service), TOKEN_FILE and CA_FILE (default: the
service account's). ``--now`` replays a given time (a drill, or a test).
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import sys
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

try:  # imported from the eks_ml package (tests, type checks)
    from . import checkpoint_contract as contract
except ImportError:  # run as a script from the ConfigMap mount: the contract module sits beside it
    import checkpoint_contract as contract  # type: ignore[no-redef]

KUEUE_PATH = "/apis/kueue.x-k8s.io/v1beta2/clusterqueues"
SERVICE_ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
ATTEMPTS = 5
HOLD = "hold"
CHECKPOINT = "checkpoint"


def parse_utc(text: str) -> datetime:
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None or parsed.utcoffset() != timedelta(0):
        raise ValueError(f"{text} is not in UTC")
    return parsed.astimezone(UTC)


def due(now: datetime, env: dict[str, str]) -> list[str]:
    """What the schedule asks for at ``now``: nothing before the first time and after the end."""
    end = parse_utc(env["END"])
    if now >= end:
        return []
    actions = []
    if now >= parse_utc(env["STOP_ADMITTING_AT"]):
        actions.append(HOLD)
    if now >= parse_utc(env["CHECKPOINT_AT"]):
        actions.append(CHECKPOINT)
    return actions


def hold_patch(queue: dict[str, Any], flavor: str) -> list[dict[str, Any]]:
    """A JSON patch that zeroes the flavor's quota wherever the ClusterQueue lists it; empty when it already is.

    It tests the resourceVersion it read, so a concurrent change fails it (and the caller reads again) instead of
    zeroing a quota at an index that has meanwhile moved to another flavor.
    """
    spec = queue.get("spec") or {}
    in_cohort = bool(spec.get("cohortName"))
    operations: list[dict[str, Any]] = []
    for g, group in enumerate(spec.get("resourceGroups") or ()):
        for f, entry in enumerate(group.get("flavors") or ()):
            if entry.get("name") != flavor:
                continue
            for r, resource in enumerate(entry.get("resources") or ()):
                path = f"/spec/resourceGroups/{g}/flavors/{f}/resources/{r}"
                if str(resource.get("nominalQuota")) != "0":
                    operations.append({"op": "replace", "path": f"{path}/nominalQuota", "value": 0})
                if in_cohort and str(resource.get("borrowingLimit")) != "0":
                    operations.append({"op": "add", "path": f"{path}/borrowingLimit", "value": 0})
    if not operations:
        return []
    version = {"op": "test", "path": "/metadata/resourceVersion", "value": queue["metadata"]["resourceVersion"]}
    return [version, *operations]


def _api() -> str:
    server = os.environ.get("API_SERVER")
    if server:
        return server.rstrip("/")
    return f"https://{os.environ['KUBERNETES_SERVICE_HOST']}:{os.environ['KUBERNETES_SERVICE_PORT']}"


def _request(method: str, path: str, patch: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    token = Path(os.environ.get("TOKEN_FILE", f"{SERVICE_ACCOUNT}/token")).read_text().strip()
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    data = None
    if patch is not None:
        data = json.dumps(patch).encode()
        headers["Content-Type"] = "application/json-patch+json"
    request = urllib.request.Request(f"{_api()}{path}", data=data, method=method, headers=headers)
    context = None
    if _api().startswith("https://"):
        context = ssl.create_default_context(cafile=os.environ.get("CA_FILE", f"{SERVICE_ACCOUNT}/ca.crt"))
    with urllib.request.urlopen(request, context=context, timeout=30) as response:
        result: dict[str, Any] = json.loads(response.read())
        return result


def hold(cluster_queue: str, flavor: str) -> str:
    """Zero the flavor in one ClusterQueue; idempotent, retried with a fresh read when the queue changed."""
    path = f"{KUEUE_PATH}/{cluster_queue}"
    for _ in range(ATTEMPTS):
        queue = _request("GET", path)
        patch = hold_patch(queue, flavor)
        if not patch:
            found = any(
                entry.get("name") == flavor
                for group in (queue.get("spec") or {}).get("resourceGroups") or ()
                for entry in group.get("flavors") or ()
            )
            if not found:
                raise RuntimeError(f"ClusterQueue {cluster_queue} has no flavor {flavor}")
            return f"ClusterQueue {cluster_queue}: flavor {flavor} already admits nothing"
        try:
            _request("PATCH", path, patch)
        except urllib.error.HTTPError as error:
            # A failed test operation is 422 (k8s.io/apiserver, pkg/endpoints/handlers/patch.go applyJSPatch), a
            # conflicting write 409: either way someone changed the queue since it was read; read it again.
            if error.code in (409, 422):
                continue
            raise
        return f"ClusterQueue {cluster_queue}: flavor {flavor} admits nothing from now on"
    raise RuntimeError(f"ClusterQueue {cluster_queue} kept changing; gave up after {ATTEMPTS} attempts")


def hold_all(cluster_queues: str, flavor: str) -> list[str]:
    """Zero the flavor in each listed ClusterQueue. Every queue is tried even when one fails (a queue left
    admitting is what the hold is against); the run then fails naming each failure."""
    names = [name.strip() for name in cluster_queues.split(",") if name.strip()]
    if not names:
        raise RuntimeError("CLUSTER_QUEUES names no ClusterQueue")
    done, failed = [], []
    for name in names:
        try:
            done.append(hold(name, flavor))
        except (RuntimeError, OSError) as error:  # urllib's errors are OSErrors
            failed.append(f"{name}: {error}")
    if failed:
        raise RuntimeError("; ".join([*done, *(f"failed {line}" for line in failed)]))
    return done


def signal(root: Path, env: dict[str, str], now: datetime) -> str:
    reservation = env["RESERVATION_ID"]
    payload = {
        "reservation": reservation,
        "end": env["END"],
        "termination_starts": env["TERMINATION_STARTS"],
        "written_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if contract.write_block_signal(root, reservation, payload):
        return f"told jobs on {reservation} to checkpoint now ({contract.block_signal_path(root, reservation)})"
    return f"jobs on {reservation} were already told to checkpoint"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--now", type=parse_utc, default=None, help="act as if it were this time (ISO-8601 UTC)")
    args = parser.parse_args(argv)
    now = args.now or datetime.now(UTC)
    env = dict(os.environ)
    actions = due(now, env)
    if not actions:
        print(f"{now:%Y-%m-%dT%H:%M:%SZ}: nothing due for {env['RESERVATION_ID']} (ends {env['END']})")
    # The checkpoint signal first: a failing API call must not keep running jobs from saving their work.
    if CHECKPOINT in actions:
        root = env.get("SIGNAL_ROOT")
        print(signal(Path(root), env, now) if root else "no shared file system: jobs cannot be told to checkpoint")
    if HOLD in actions:
        print("\n".join(hold_all(env["CLUSTER_QUEUES"], env["FLAVOR"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
