"""The real-chart gate's machinery: every Helm release of a synthesized template, rendered with the real
pinned chart and the exact values eks-ml passes, and the checks run on the render.

Each check returns a list of problems (empty: passed) so the negative tests can prove it reports them.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from eks_ml.helm import ALL_CHARTS, HelmChartPin, PodValues

from . import charts
from .synth import joined, of_type

HELM_RELEASE = "Custom::AWSCDK-EKS-HelmChart"
POD_IDENTITY = "AWS::EKS::PodIdentityAssociation"
RENDERED_POD_KINDS = ("Deployment", "DaemonSet", "StatefulSet", "Job", "ReplicaSet")
Path = tuple[str, ...]


@dataclass(frozen=True)
class Release:
    """One Helm release as the kubectl provider will install it. ``values`` has every CDK token (queue
    names, VPC ids) replaced by the string "TOKEN": each sits inside a JSON string, so the structure is exact."""

    stack: str
    logical_id: str
    chart: str
    version: str
    namespace: str
    name: str
    values: dict[str, Any]

    @property
    def id(self) -> str:
        return f"{self.stack}/{self.name}"

    @property
    def pin(self) -> HelmChartPin | None:
        """The pin in eks_ml.helm.ALL_CHARTS this release installs (chart and version must both match)."""
        found = [p for p in ALL_CHARTS if (p.chart, p.version) == (self.chart, self.version)]
        return found[0] if found else None


def releases(templates: Mapping[str, Mapping[str, Any]]) -> list[Release]:
    """Every Helm release of every template, in stack then logical-id order."""
    found = []
    for stack, template in templates.items():
        for logical_id, resource in sorted(of_type(dict(template), HELM_RELEASE).items()):
            props = resource["Properties"]
            raw = props.get("Values")
            found.append(
                Release(
                    stack,
                    logical_id,
                    props["Chart"],
                    props["Version"],
                    props.get("Namespace", "default"),
                    props["Release"],
                    json.loads(joined(raw)) if raw is not None else {},
                )
            )
    return found


def canonical(values: Mapping[str, Any]) -> str:
    return json.dumps(values, sort_keys=True)


class Renderer:
    """``charts.render`` with a cache (the gate renders each values variant once) and a render failure
    kept as a result: a value that makes the chart fail is a value the chart reads."""

    def __init__(self) -> None:
        self._cache: dict[tuple[int, str], list[dict[str, Any]] | str] = {}
        self._fresh: dict[tuple[int, str], list[dict[str, Any]] | str] = {}
        self._lock = threading.Lock()
        self.renders = 0

    def __call__(self, pin: HelmChartPin, values: Mapping[str, Any]) -> list[dict[str, Any]] | str:
        key = (id(pin), canonical(values))
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        try:
            result: list[dict[str, Any]] | str = render(pin, values)
        except charts.RenderError as error:
            result = f"render failed: {error}"
        with self._lock:
            self._cache[key] = result
            self.renders += 1
        return result

    def fresh(self, pin: HelmChartPin, values: Mapping[str, Any]) -> list[dict[str, Any]] | str:
        """A second render made by helm, not a copy of the cached one (neither this cache nor the run's render
        cache answers it): a chart that generates certificates or passwords renders them anew, which is how
        the gate finds those fields. Made once per chart and values in this process."""
        key = (id(pin), canonical(values))
        with self._lock:
            if key in self._fresh:
                return self._fresh[key]
        try:
            result: list[dict[str, Any]] | str = render(pin, values, fresh=True)
        except charts.RenderError as error:
            result = f"render failed: {error}"
        with self._lock:
            self._fresh[key] = result
        return result


RENDER = Renderer()
# What every EKS cluster serves beyond helm's offline default set; without it prometheus-adapter falls back to
# apiregistration.k8s.io/v1beta1 APIServices, which no supported Kubernetes version serves.
CLUSTER_API_VERSIONS = ("apiregistration.k8s.io/v1",)


def render(pin: HelmChartPin, values: Mapping[str, Any], *, fresh: bool = False) -> list[dict[str, Any]]:
    """``charts.render`` as the kubectl provider's ``helm upgrade --install`` sees it against a cluster: with
    the cluster's API versions, and a ``v1 List`` (the load balancer controller's IngressClass and its
    params) applied as its items."""
    return _applied(charts.render(pin, values, api_versions=CLUSTER_API_VERSIONS, fresh=fresh))


def _applied(parsed: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    objects = []
    for obj in parsed:
        objects.extend(obj.get("items") or [] if obj.get("kind") == "List" else [obj])
    return objects


def render_documents(pin: HelmChartPin, values: Mapping[str, Any]) -> list[str] | str:
    """The YAML documents of :func:`render`'s helm output, unparsed ("render failed: ..." if helm fails)."""
    try:
        output = charts.render_text(pin, values, api_versions=CLUSTER_API_VERSIONS)
    except charts.RenderError as error:
        return f"render failed: {error}"
    return _DOCUMENT_START.split(output)


# A line that starts a YAML document (helm template starts each with "---"). A block scalar cannot hold one
# (its lines are indented) and YAML forbids one inside a quoted or plain scalar; ignored_keys still checks,
# per chart, that the documents parse to the very objects the whole output parses to before it relies on them.
_DOCUMENT_START = re.compile(r"^(?=---(?:[ \t].*)?$)", re.MULTILINE)


# ---- b. every value key eks-ml passes changes the output ------------------------------------------------


def leaf_paths(values: Any, prefix: Path = ()) -> list[Path]:
    """Dotted paths of every leaf: a scalar, a list (one leaf: Helm replaces lists whole) or an empty map."""
    if isinstance(values, Mapping) and values:
        return [path for key, value in values.items() for path in leaf_paths(value, (*prefix, str(key)))]
    return [prefix]


def _get(values: Mapping[str, Any], path: Path) -> Any:
    node: Any = values
    for part in path:
        node = node[part]
    return node


def without(values: Mapping[str, Any], path: Path) -> dict[str, Any]:
    """``values`` with the leaf at ``path`` removed (and parents it leaves empty, as if never given)."""
    result = copy.deepcopy(dict(values))
    parents = [result]
    for part in path[:-1]:
        parents.append(parents[-1][part])
    del parents[-1][path[-1]]
    for depth in range(len(path) - 1, 0, -1):
        if parents[depth]:
            break
        del parents[depth - 1][path[depth - 1]]
    return result


def changed(value: Any) -> Any:
    """A different value of the same type."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value + 0.5
    if isinstance(value, str):
        return value + "-gate"
    if isinstance(value, list):
        return value[:-1] if value else [{"key": "eks-ml.io/gate", "operator": "Exists"}]
    if isinstance(value, Mapping):
        return {"eks-ml.io/gate": "gate"}
    return "gate"


def with_changed(values: Mapping[str, Any], path: Path) -> dict[str, Any]:
    result = copy.deepcopy(dict(values))
    node = result
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = changed(node[path[-1]])
    return result


def _random_paths(first: Any, second: Any, prefix: Path = ()) -> set[Path]:
    """Where two renders of the same values differ: generated certificates and passwords."""
    if isinstance(first, Mapping) and isinstance(second, Mapping):
        return {
            p for k in first.keys() | second.keys() for p in _random_paths(first.get(k), second.get(k), (*prefix, k))
        }
    if isinstance(first, list) and isinstance(second, list) and len(first) == len(second):
        return {
            p
            for i, (a, b) in enumerate(zip(first, second, strict=True))
            for p in _random_paths(a, b, (*prefix, str(i)))
        }
    return set() if first == second else {prefix}


def _masked(render: list[dict[str, Any]] | str, random: set[Path]) -> str:
    if isinstance(render, str):
        return render
    objects = copy.deepcopy(render)
    for path in random:
        node: Any = objects
        for part in path[:-1]:
            if isinstance(node, list):
                node = node[int(part)] if int(part) < len(node) else None
            else:
                node = node.get(part) if isinstance(node, dict) else None
            if node is None:
                break
        else:
            last = path[-1]
            if isinstance(node, list) and int(last) < len(node):
                node[int(last)] = "<random>"
            elif isinstance(node, dict) and last in node:
                node[last] = "<random>"
    return json.dumps(objects, sort_keys=True)


def ignored_keys(
    pin: HelmChartPin,
    values: Mapping[str, Any],
    render: Callable[[HelmChartPin, Mapping[str, Any]], list[dict[str, Any]] | str] = RENDER,
    *,
    workers: int = 8,
) -> list[str]:
    """Dotted paths of the value keys the chart ignores: neither removing the key nor changing it (when
    removing it only restores an equal chart default) changes the render."""
    base = render(pin, values)
    if isinstance(base, str):
        return [base]
    # A second, uncached render of the same values exposes randomly generated fields (a cached one would be the
    # same object, and every changed-value render would then differ from the base by its new certificates).
    again = render.fresh(pin, values) if isinstance(render, Renderer) else render(pin, values)
    random = _random_paths(base, again)
    reference = _masked(base, random)
    paths = [p for p in leaf_paths(values) if p]
    by_document = _DocumentComparison.of(pin, values, base) if isinstance(render, Renderer) and not random else None

    def same(variant: Mapping[str, Any]) -> bool:
        if by_document is not None:
            verdict = by_document.same(render_documents(pin, variant))
            if verdict is not None:
                return verdict
        return _masked(render(pin, variant), random) == reference

    def ignored(path: Path) -> bool:
        return same(without(values, path)) and same(with_changed(values, path))

    with ThreadPoolExecutor(workers) as pool:
        verdicts = list(pool.map(ignored, paths))
    return [".".join(path) for path, bad in zip(paths, verdicts, strict=True) if bad]


class _DocumentComparison:
    """Whether a render equals the base render, parsing only the documents whose text differs from the base's.

    A chart such as kueue renders ~1.7 MB of YAML (its CRDs are templates), and parsing it was most of the
    gate's CPU time while a value key changes one or two small documents. The answer is exact, for a chart
    without generated fields (ignored_keys uses this only when the base and a fresh render agree): equal
    texts parse to equal objects, and while every differing document keeps its object count the objects
    stay aligned, so the first differing object decides. Anything else (a document appears or disappears, an
    object count changes, helm fails) returns None and the caller compares the whole parse as before."""

    def __init__(self, documents: list[str], objects: list[list[dict[str, Any]]]) -> None:
        self.documents = documents
        self.objects = objects

    @classmethod
    def of(cls, pin: HelmChartPin, values: Mapping[str, Any], base: list[dict[str, Any]]) -> _DocumentComparison | None:
        documents = render_documents(pin, values)
        if isinstance(documents, str):
            return None
        objects = [_applied(charts.parse(document)) for document in documents]
        # The split must give exactly the objects of the whole output, or it is not used for this chart.
        if _dumped([o for each in objects for o in each]) != _dumped(base):
            return None
        return cls(documents, objects)

    def same(self, documents: list[str] | str) -> bool | None:
        if isinstance(documents, str) or len(documents) != len(self.documents):
            return None
        for text, base_text, base_objects in zip(documents, self.documents, self.objects, strict=True):
            if text == base_text:
                continue
            objects = _applied(charts.parse(text))
            if len(objects) != len(base_objects):
                return None
            if _dumped(objects) != _dumped(base_objects):
                return False
        return True


def _dumped(objects: list[dict[str, Any]]) -> list[str]:
    """Each object as _masked writes it (JSON with sorted keys): equal lists of these are equal masked renders."""
    return [json.dumps(obj, sort_keys=True) for obj in objects]


# ---- c. placement matches the declaration -------------------------------------------------------------


def _required(affinity: Mapping[str, Any] | None) -> Any:
    return ((affinity or {}).get("nodeAffinity") or {}).get("requiredDuringSchedulingIgnoredDuringExecution") or {}


def placement_problems(pin: HelmChartPin, values: Mapping[str, Any], objects: Sequence[Mapping[str, Any]]) -> list[str]:
    """Differences between each rendered pod-running object and its PodValues declaration."""
    declared = {(p.kind, p.name.format(release=pin.release)): p for p in pin.pods}
    problems = []
    rendered = set()
    for obj in objects:
        kind, name = obj.get("kind"), (obj.get("metadata") or {}).get("name")
        if kind not in RENDERED_POD_KINDS:
            continue
        rendered.add((kind, name))
        pod: PodValues | None = declared.get((kind, name))
        if pod is None:
            problems.append(f"{kind} {name} is rendered but not declared in {pin.chart}'s pods")
            continue
        if not pod.is_enabled(values):
            problems.append(f"{kind} {name} is rendered but its declaration says {pod.enabled} turns it off")
            continue
        problems.extend(_compare(f"{kind} {name}", pod.pod_spec(values), obj["spec"]["template"].get("spec") or {}))
    for (kind, name), pod in declared.items():
        if (kind, name) not in rendered and pod.is_enabled(values) and not pod.optional:
            problems.append(f"{kind} {name} is declared (enabled) but the chart does not render it")
    return problems


def _compare(what: str, expected: Mapping[str, Any], actual: Mapping[str, Any]) -> list[str]:
    problems = []
    pairs = {
        "nodeSelector": (expected["nodeSelector"] or {}, actual.get("nodeSelector") or {}),
        "required node affinity": (_required(expected["affinity"]), _required(actual.get("affinity"))),
        "tolerations": (list(expected["tolerations"] or []), list(actual.get("tolerations") or [])),
    }
    containers = {c["name"]: c for c in [*(actual.get("containers") or []), *(actual.get("initContainers") or [])]}
    for container in expected["containers"]:
        got = containers.get(container["name"])
        if got is None:
            problems.append(f"{what}: declared container {container['name']} is not rendered")
            continue
        pairs[f"container {container['name']} resources"] = (container["resources"] or {}, got.get("resources") or {})
    for field, (want, got) in pairs.items():
        if _normal(want) != _normal(got):
            problems.append(f"{what}: {field} declared {json.dumps(want)} but rendered {json.dumps(got)}")
    return problems


def _normal(value: Any) -> Any:
    """Compare as the API server would: quantities and numbers as strings, dict key order ignored."""
    if isinstance(value, Mapping):
        return {k: _normal(v) for k, v in value.items() if v not in (None, {}, [])}
    if isinstance(value, list):
        return [_normal(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    return str(value)


# ---- e. Pod Identity service accounts exist and are used -------------------------------------------------


def pod_identity_problems(
    template: Mapping[str, Any], objects: Iterable[Mapping[str, Any]], default_namespaces: Mapping[int, str]
) -> list[str]:
    """Each EKS Pod Identity association's service account must be rendered and used by some pod.

    ``objects`` are every object the stack installs (rendered releases and applied manifests);
    ``default_namespaces`` maps id(object) to the namespace Helm installs it in when it names none."""

    def namespace(obj: Mapping[str, Any]) -> str:
        return (obj.get("metadata") or {}).get("namespace") or default_namespaces.get(id(obj), "default")

    objects = list(objects)
    accounts = {(namespace(o), o["metadata"]["name"]) for o in objects if o.get("kind") == "ServiceAccount"}
    used = {
        (namespace(o), (o["spec"]["template"].get("spec") or {}).get("serviceAccountName") or "default")
        for o in objects
        if o.get("kind") in RENDERED_POD_KINDS
    }
    problems = []
    for logical_id, association in sorted(of_type(dict(template), POD_IDENTITY).items()):
        props = association["Properties"]
        key = (joined(props["Namespace"]), joined(props["ServiceAccount"]))
        if key not in accounts:
            problems.append(
                f"{logical_id}: service account {key[0]}/{key[1]} is not created by any release or manifest"
            )
        if key not in used:
            problems.append(f"{logical_id}: no pod runs as service account {key[0]}/{key[1]}")
    return problems
