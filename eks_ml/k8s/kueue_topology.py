"""Kueue Topology-Aware Scheduling: the Topology of the EC2 network and the podset annotations jobs ask with.

Facts (kubernetes-sigs/kueue @ v0.19.2):
- Topology is ``kueue.x-k8s.io/v1beta2`` (served and stored), ``spec.levels[].nodeLabel``, 1..16 levels,
  unique, ``kubernetes.io/hostname`` only as the lowest level (charts/kueue CRD kueue.x-k8s.io_topologies.yaml).
  A ResourceFlavor names it in ``spec.topologyName`` and then needs at least one node label (CEL rule of
  kueue.x-k8s.io_resourceflavors.yaml).
- Annotations on a podset's pod template (apis/kueue/v1beta2/topology_types.go):
  ``kueue.x-k8s.io/podset-required-topology`` and ``kueue.x-k8s.io/podset-preferred-topology``, value a level's
  node label. The JobSet integration reads them from ``replicatedJobs[].template.spec.template.metadata``
  (pkg/controller/jobs/jobset/jobset_controller.go, PodSets), and the TrainJob integration builds that JobSet
  from the runtime's template (pkg/controller/jobs/trainjob/trainjob_controller.go, getChildJobSet, with the
  Trainer v2.2.1 types it vendors), so the annotation belongs in the ClusterTrainingRuntime's pod template.
  Trainer 2.3's TrainJob ``runtimePatches`` are not known to those v2.2.1 types, hence not in the TrainJob.
- Feature gates (pkg/features/kube_features.go): TopologyAwareScheduling Beta, on by default since 0.14;
  TASFailedNodeReplacement, TASFailedNodeReplacementFailFast and TASReplaceNodeOnPodTermination Beta, on by
  default since 0.14. eks-ml therefore sets no gate: the pinned chart's defaults give TAS and the replacement
  of a failed node of an admitted TAS workload.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import cdk8s
from constructs import Construct

from ..catalog.topology import network_node_labels

KUEUE_API = "kueue.x-k8s.io/v1beta2"
HOSTNAME_LABEL = "kubernetes.io/hostname"
REQUIRED_ANNOTATION = "kueue.x-k8s.io/podset-required-topology"
PREFERRED_ANNOTATION = "kueue.x-k8s.io/podset-preferred-topology"


class TopologyMode(enum.Enum):
    REQUIRED = "required"
    PREFERRED = "preferred"


@dataclass(frozen=True)
class TopologyRequest:
    """One podset annotation: keep all pods of the gang in one domain of ``level`` (or try to)."""

    mode: TopologyMode
    level: str

    def annotations(self) -> dict[str, str]:
        key = REQUIRED_ANNOTATION if self.mode is TopologyMode.REQUIRED else PREFERRED_ANNOTATION
        return {key: self.level}

    @property
    def suffix(self) -> str:
        """A short name part for the runtime that carries this request, e.g. ``prefer-nnl3``."""
        verb = "require" if self.mode is TopologyMode.REQUIRED else "prefer"
        return f"{verb}-nnl{self.level.rsplit('-', 1)[-1]}"


def topology_name(layers: int) -> str:
    return f"aws-network-{layers}-layers"


def topology_levels(layers: int) -> list[str]:
    """The network layers top-down, then the node itself, as the Kueue TAS docs recommend for the lowest level."""
    if layers < 1:
        raise ValueError(f"a Topology needs at least one network layer, got {layers}")
    return [*network_node_labels(layers), HOSTNAME_LABEL]


def training_request(layers: int) -> TopologyRequest:
    """Training prefers the bottom network layer: Kueue places the gang under one bottom node when it fits and
    otherwise climbs to the next layer up, so the job is never refused for it."""
    return TopologyRequest(TopologyMode.PREFERRED, network_node_labels(layers)[-1])


def fabric_test_request(layers: int) -> TopologyRequest:
    """The fabric test requires one top-layer domain, so every run measures paths inside one network block and
    results compare. Nodes per domain are not published by EC2 and not known at synth time, so a tighter
    required level could leave the test inadmissible for a group larger than one bottom-layer domain."""
    return TopologyRequest(TopologyMode.REQUIRED, network_node_labels(layers)[0])


def add_topology(scope: Construct, layers: int) -> cdk8s.ApiObject:
    obj = cdk8s.ApiObject(
        scope,
        f"Topology-{layers}",
        api_version=KUEUE_API,
        kind="Topology",
        metadata=cdk8s.ApiObjectMetadata(name=topology_name(layers)),
    )
    obj.add_json_patch(
        cdk8s.JsonPatch.add("/spec", {"levels": [{"nodeLabel": label} for label in topology_levels(layers)]})
    )
    return obj
