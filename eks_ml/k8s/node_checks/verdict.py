"""The burn-in DaemonSet's Kubernetes API steps on its own node (python3 of the training image, stdlib only).

    verdict.py gate     before the checks: a node already labelled passed is not checked again (a restarted
                        pod must not run diagnostics under a training job)
    verdict.py report   after the checks: passed -> remove the startup taint, label passed, drop an old
                        reason; failed -> label failed, the reason in an annotation, the taint stays

Only the node named by NODE_NAME (the pod's own node, from the downward API) is read and patched, with
one GET and one JSON merge patch carrying the resourceVersion read (a concurrent change is retried).

Environment: NODE_NAME; RESULTS (the pod's shared directory); TAINT_KEY, LABEL_KEY, REASON_ANNOTATION;
API_SERVER (default: the in-cluster service), TOKEN_FILE and CA_FILE (default: the projected token).
"""

from __future__ import annotations

import json
import os
import ssl
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

PASSED = "passed"
FAILED = "failed"
MAX_REASON = 1024  # an annotation may hold far more; a reason is one line
ATTEMPTS = 5


def _api() -> str:
    server = os.environ.get("API_SERVER")
    if server:
        return server.rstrip("/")
    return f"https://{os.environ['KUBERNETES_SERVICE_HOST']}:{os.environ['KUBERNETES_SERVICE_PORT']}"


def _request(method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    token = Path(os.environ.get("TOKEN_FILE", "/var/run/secrets/eks-ml/token")).read_text().strip()
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/merge-patch+json"
    request = urllib.request.Request(f"{_api()}{path}", data=data, method=method, headers=headers)
    context = None
    if _api().startswith("https://"):
        context = ssl.create_default_context(cafile=os.environ.get("CA_FILE", "/var/run/secrets/eks-ml/ca.crt"))
    with urllib.request.urlopen(request, context=context, timeout=30) as response:
        result: dict[str, Any] = json.loads(response.read())
        return result


def _node_path() -> str:
    return f"/api/v1/nodes/{os.environ['NODE_NAME']}"


def gate(results: Path) -> str:
    labels = _request("GET", _node_path())["metadata"].get("labels") or {}
    if labels.get(os.environ["LABEL_KEY"]) == PASSED:
        (results / "skip").write_text("passed before\n")
        return "the node passed burn-in before: skipping the checks"
    return "the node has not passed burn-in: running the checks"


def verdict_patch(node: dict[str, Any], reason: str | None) -> dict[str, Any]:
    """The merge patch that records the verdict on ``node``: for a pass, its taints without the startup taint
    (a merge patch replaces the whole list, so the others are carried over as read)."""
    taint_key, label_key, annotation = (os.environ[k] for k in ("TAINT_KEY", "LABEL_KEY", "REASON_ANNOTATION"))
    metadata: dict[str, Any] = {"resourceVersion": node["metadata"]["resourceVersion"]}
    if reason is None:
        metadata["labels"] = {label_key: PASSED}
        metadata["annotations"] = {annotation: None}
        taints = [t for t in node.get("spec", {}).get("taints") or [] if t.get("key") != taint_key]
        return {"metadata": metadata, "spec": {"taints": taints}}
    metadata["labels"] = {label_key: FAILED}
    metadata["annotations"] = {annotation: reason[:MAX_REASON]}
    return {"metadata": metadata}


def report(results: Path) -> str:
    if (results / "skip").exists():
        return "the node passed burn-in before: left as it is"
    failed = results / "failed"
    reason = (failed.read_text().strip() or "a check failed without a reason") if failed.exists() else None
    for attempt in range(ATTEMPTS):
        node = _request("GET", _node_path())
        try:
            _request("PATCH", _node_path(), verdict_patch(node, reason))
            break
        except urllib.error.HTTPError as error:
            if error.code != 409 or attempt == ATTEMPTS - 1:  # 409: the node changed since it was read
                raise
    if reason is None:
        return "burn-in passed: startup taint removed, node labelled passed"
    return f"burn-in failed: {reason} (node labelled failed, taint kept)"


def main(argv: list[str]) -> int:
    steps = {"gate": gate, "report": report}
    if len(argv) != 2 or argv[1] not in steps:
        print("usage: verdict.py gate|report", file=sys.stderr)
        return 2
    print(steps[argv[1]](Path(os.environ.get("RESULTS", "/results"))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
