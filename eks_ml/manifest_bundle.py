"""Many Kubernetes objects applied by one kubectl-provider custom resource.

Every ``eks.KubernetesManifest`` is a Lambda-backed custom resource: on each deploy that touches it, a
Lambda invocation that logs in to the cluster and runs kubectl, and a CloudFormation wait. Objects that
belong at the same point of a cluster's install order share one instead. A cluster construct keeps two:
its *prelude*, applied before its Helm releases (their labelled namespaces, deploy-time values, CRD upgrade
Jobs, the serving namespace), and its *workloads*, applied after them (node pools, queues, runtimes, model
servers). kubectl applies a manifest's objects in the order given, so a Namespace added first exists before
the objects that live in it.

Objects can be added until the app is synthesized: the manifest text is resolved when the template is
written. A bundle that nothing was added to creates no resource at all.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import cdk8s
import jsii
from aws_cdk import CfnResource, IResolvable, IResolveContext, Stack, Token
from aws_cdk import aws_eks_v2 as eks
from constructs import Construct, IConstruct, IDependable

# aws_eks_v2.KubernetesManifest labels the objects it applies with this prefix plus its node address, and on
# update runs `kubectl apply --prune -l <label>`; objects without the label would be skipped by that selector.
# tests/test_manifest_bundle.py checks the label here equals the PruneLabel the construct writes.
PRUNE_LABEL_PREFIX = "aws.cdk.eks/prune-"
# That handler passes no --prune-allowlist, so kubectl prunes only its default kinds (kubernetes/kubectl
# pkg/util/prune/prune.go: defaultNamespacedPruneResources and defaultNonNamespacedPruneResources). An object
# of any other kind that leaves a bundle (a pool or a model removed from the config) stays in the cluster
# until someone deletes it; ManifestBundle.unpruned_kinds names them and the README says how to clean up.
KUBECTL_DEFAULT_PRUNE = frozenset(
    {
        ("", "ConfigMap"),
        ("", "Endpoints"),
        ("", "PersistentVolumeClaim"),
        ("", "Pod"),
        ("", "ReplicationController"),
        ("", "Secret"),
        ("", "Service"),
        ("batch", "Job"),
        ("batch", "CronJob"),
        ("networking.k8s.io", "Ingress"),
        ("apps", "DaemonSet"),
        ("apps", "Deployment"),
        ("apps", "ReplicaSet"),
        ("apps", "StatefulSet"),
        ("", "Namespace"),
        ("", "PersistentVolume"),
    }
)


class ManifestBundle(Construct):
    """One manifest for ``cluster`` holding every object added to it, in the order added. ``after``: what
    the manifest is applied after (it never inherits its objects' other dependencies, so the constructs that
    depend on a bundle cannot form a cycle through it)."""

    def __init__(
        self, scope: Construct, construct_id: str, *, cluster: eks.ICluster, after: Sequence[IDependable] = ()
    ) -> None:
        super().__init__(scope, construct_id)
        self.cluster = cluster
        self.objects: list[dict[str, Any]] = []
        self.manifest: eks.KubernetesManifest | None = None
        if after:
            self.node.add_dependency(*after)

    def add(self, objects: Iterable[Mapping[str, Any]]) -> None:
        """Append ``objects``; one already in the bundle unchanged is applied once, and a different object
        with the same identity is refused (one would silently overwrite the other at every deploy)."""
        for obj in objects:
            existing = next((o for o in self.objects if identity(o) == identity(obj)), None)
            if existing is None:
                self.objects.append(dict(obj))
            elif existing != obj:
                raise ValueError(f"{self.node.path}: two different {identity(obj)} objects")  # internal invariant
        if self.manifest is None and self.objects:
            # overwrite: apply, not create, on the first deploy too (namespaces may exist from before eks-ml
            # labelled them; objects move between bundles when eks-ml reorganizes them).
            self.manifest = eks.KubernetesManifest(self, "Default", cluster=self.cluster, manifest=[], overwrite=True)
            resource = self.manifest.node.default_child
            assert isinstance(resource, CfnResource)  # the custom resource aws_eks_v2 makes
            # Written when the template is: every object added until then.
            resource.add_property_override("Manifest", Token.as_string(_ManifestText(self)))

    def add_chart(self, chart: cdk8s.Chart) -> None:
        self.add(chart.to_json())

    @property
    def prune_label(self) -> str | None:
        return None if self.manifest is None else f"{PRUNE_LABEL_PREFIX}{self.manifest.node.addr}"

    def unpruned_kinds(self) -> list[str]:
        """The kinds in this bundle that a later deploy does not delete when they leave it ("Kind.group", or
        "Kind" for the core group), sorted: see KUBECTL_DEFAULT_PRUNE."""
        kinds = {identity(obj)[:2] for obj in self.objects} - KUBECTL_DEFAULT_PRUNE
        return sorted(f"{kind}.{group}" if group else kind for group, kind in kinds)

    def labelled_objects(self) -> list[dict[str, Any]]:
        """The objects as applied: each carries the prune label (see PRUNE_LABEL_PREFIX)."""
        label = self.prune_label
        labelled = []
        for obj in self.objects:
            copied = copy.deepcopy(obj)
            if label is not None:
                metadata = copied.setdefault("metadata", {})
                metadata["labels"] = {label: "", **(metadata.get("labels") or {})}
            labelled.append(copied)
        return labelled


@jsii.implements(IResolvable)
class _ManifestText:
    """The bundle's objects as JSON text, resolved when the template is written. (A Lazy producer would do, but
    aws-cdk-lib calls it without the context argument jsii requires from Python.)"""

    creation_stack: list[str] = []

    def __init__(self, bundle: ManifestBundle) -> None:
        self._bundle = bundle
        self._text: tuple[int, str] | None = None  # (how many objects, their JSON token) as last resolved

    def resolve(self, context: IResolveContext) -> str:
        # A synth resolves every template value twice (to find cross-stack references, then to write it); the
        # token Stack.to_json_string returns resolves alike each time, so the objects cross to Node.js once
        # unless one was added since (bundles only grow).
        count = len(self._bundle.objects)
        if self._text is None or self._text[0] != count:
            self._text = (count, Stack.of(self._bundle).to_json_string(self._bundle.labelled_objects()))
        return self._text[1]

    def to_string(self) -> str:
        return f"<manifest of {self._bundle.node.path}>"


def identity(obj: Mapping[str, Any]) -> tuple[str, str, str, str]:
    """What Kubernetes tells objects apart by: API group, kind, namespace and name."""
    group = str(obj.get("apiVersion", "")).rpartition("/")[0]
    metadata = obj.get("metadata") or {}
    return group, str(obj.get("kind")), str(metadata.get("namespace", "")), str(metadata.get("name"))


def nearest_bundle(scope: IConstruct, name: str, cluster: eks.ICluster) -> ManifestBundle | None:
    """The bundle called ``name`` for ``cluster`` on ``scope`` or its closest ancestor that has one."""
    cluster_path = None  # read once, and only when a bundle was made for another object than ``cluster``
    for ancestor in reversed(scope.node.scopes):
        found = ancestor.node.try_find_child(name)
        if not isinstance(found, ManifestBundle):
            continue
        if found.cluster is cluster:  # the same object: the same construct (each node read is a jsii call)
            return found
        cluster_path = cluster_path or cluster.node.path
        if found.cluster.node.path == cluster_path:
            return found
    return None


def prelude_of(scope: Construct, cluster: eks.ICluster) -> ManifestBundle:
    """The prelude (objects applied before Helm releases) that releases installed from ``scope`` share: the
    nearest one a cluster construct made, else one made here."""
    return nearest_bundle(scope, PRELUDE, cluster) or ManifestBundle(scope, PRELUDE, cluster=cluster)


PRELUDE = "Prelude"
WORKLOADS = "Workloads"
