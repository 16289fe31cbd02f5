"""The operating system of an inference pool's Karpenter nodes: the EKS-optimized AL2023 AMI or the
EKS-optimized Bottlerocket AMI, each pinned by a Karpenter alias (``family@version``, never ``@latest``).

NVIDIA pools default to Bottlerocket: its NVIDIA variant (``aws-k8s-<version>-nvidia``) runs the NVIDIA
Kubernetes device plugin as a host service, so the cluster needs no device-plugin release for those nodes
(EKS user guide, "Install Kubernetes device plugin for GPUs": "When using the EKS-optimized Bottlerocket AMIs
with NVIDIA GPUs, you do not need to install the NVIDIA Kubernetes device plugin, as it is already
included"). Bottlerocket is also a smaller, image-based OS with SELinux enforcing and a read-only root
(what EKS Auto Mode nodes run too). Neuron and CPU pools stay on AL2023: the Neuron device plugin is needed on
both AMIs, and eks-ml's Neuron setup (monitor, plugin values) is built and checked on AL2023.

Facts the Bottlerocket pools rely on, by source:

- Alias: ``bottlerocket@vX.Y.Z``, the release's GitHub tag; Karpenter resolves it from the SSM parameters
  ``/aws/service/bottlerocket/aws-k8s-<k8s>[-nvidia]/<arch>/<X.Y.Z>/image_id`` and takes the ``-nvidia`` image
  for NVIDIA instance types (aws/karpenter-provider-aws v1.14.1, pkg/providers/amifamily/bottlerocket.go).
- v1.64.0 (released 2026-08-05, bottlerocket-os/bottlerocket#4895) ships ``aws-k8s-1.33``, ``-1.34`` and
  ``-1.35`` NVIDIA variants (1.33 since v1.39.0, 1.35 since v1.53.0; 1.30 was dropped in July 2026, #4880):
  every version eks_ml.cluster.versions supports.
- Volumes: Bottlerocket boots from an OS volume ``/dev/xvda`` (Karpenter's default 4 GiB) and keeps images,
  logs and kubelet state on a data volume ``/dev/xvdb`` (default 20 GiB), where the pool's ``root_volume_gib``
  goes (karpenter.sh docs v1.14, concepts/nodeclasses "spec.blockDeviceMappings", Bottlerocket defaults).
- ``instanceStorePolicy: RAID0``: Karpenter adds the bootstrap commands ``apiclient ephemeral-storage init``
  and ``bind`` (karpenter-provider-aws v1.14.1, pkg/providers/amifamily/bootstrap/bottlerocket.go; docs: "only
  available on Bottlerocket v1.22.0 and later"). Before Bottlerocket 1.46.0 it names the directories
  (/var/lib/containerd, /var/lib/kubelet, /var/log/pods); from 1.46.0 ``bind`` takes Bottlerocket's default
  set, which on Kubernetes variants also holds those three (bottlerocket-core-kit#632). So images, emptyDirs
  (the Mountpoint cache of eks_ml.inference.cold_start) and logs live on the NVMe array.
- GPUs reach containers only through the device plugin's allocation: Bottlerocket sets the NVIDIA runtime's
  ``accept-nvidia-visible-devices-as-volume-mounts`` and ignores ``NVIDIA_VISIBLE_DEVICES`` in unprivileged
  containers (bottlerocket-os/bottlerocket#3718, #4052). dcgm-exporter still sees every GPU with
  ``CAP_SYS_ADMIN`` (bottlerocket#3992), which NVIDIA's dcgm-exporter chart 4.8.2 adds by default and the
  amazon-cloudwatch-observability chart since aws-observability/helm-charts#217 (checked there on
  Bottlerocket 1.40.0, aws-k8s-1.33-nvidia).
- The Mountpoint for Amazon S3 CSI driver runs on Bottlerocket since v1.4.0 (awslabs/mountpoint-s3-csi-driver
  #155, #160); v2 runs Mountpoint in unprivileged pods and supports SELinux-enforcing nodes (#169).

Multi-node (EFA) pools stay on AL2023 with the NVIDIA device plugin: Bottlerocket supports EFA from 1.28.0
(EKS user guide, "node-efa") and raises the memlock limit when an EFA device is attached
(bottlerocket-core-kit#141), but eks-ml's multi-node serving (efa-only interfaces, NCCL over libfabric in
the vLLM image) has only been reasoned about on AL2023; a pool that might not wire up is not worth one
fewer Helm release.
"""

from __future__ import annotations

import re
from enum import Enum

from ..catalog import NVIDIA_GPU_RESOURCE
from ..errors import Problems

# The EKS-optimized AL2023 AMI release pinned for Karpenter nodes (never @latest: a new AMI reaches nodes
# only when this changes). Karpenter picks the NVIDIA or Neuron variant of the release by instance type.
DEFAULT_AMI_ALIAS = "al2023@v20260728"
# The Bottlerocket release pinned for NVIDIA pools (see the module docstring for why this one).
DEFAULT_BOTTLEROCKET_AMI_ALIAS = "bottlerocket@v1.64.0"
# Set on every Karpenter inference node: the AL2023 nodes' NVIDIA device plugin selects on it, so no second
# copy runs beside the one Bottlerocket runs itself.
NODE_OS_LABEL = "eks-ml.io/node-os"
# The Kubernetes versions whose NVIDIA variant (aws-k8s-<version>-nvidia) the pinned Bottlerocket release ships
# (module docstring: v1.64.0 has 1.33, 1.34 and 1.35). Karpenter resolves the alias per cluster version, so a
# cluster version outside this set gets no NVIDIA node; tests hold eks_ml.cluster.versions to it.
PINNED_BOTTLEROCKET_NVIDIA_KUBERNETES = frozenset({"1.33", "1.34", "1.35"})
# The OS volume's size: eks_ml.k8s.karpenter_pools.BOTTLEROCKET_OS_VOLUME (with its sources).


class NodeOS(Enum):
    AL2023 = "al2023"
    BOTTLEROCKET = "bottlerocket"

    @property
    def builtin_device_resources(self) -> frozenset[str]:
        """Extended resources the OS advertises without a device plugin of the cluster's."""
        return frozenset({NVIDIA_GPU_RESOURCE}) if self is NodeOS.BOTTLEROCKET else frozenset()


_ALIASES = {
    NodeOS.AL2023: (re.compile(r"^al2023@v\d{8}$"), DEFAULT_AMI_ALIAS, "the EKS AMI release notes"),
    NodeOS.BOTTLEROCKET: (
        re.compile(r"^bottlerocket@v\d+\.\d+\.\d+$"),
        DEFAULT_BOTTLEROCKET_AMI_ALIAS,
        "the Bottlerocket releases (github.com/bottlerocket-os/bottlerocket/releases)",
    ),
}


def check_ami_alias(alias: str, family: NodeOS, field: str, problems: Problems) -> None:
    pattern, example, notes = _ALIASES[family]
    if not pattern.match(alias):
        problems.add(
            field,
            alias,
            f"a pinned {family.value} release such as {example} (never @latest)",
            f"pin a release from {notes}; roll it forward deliberately",
        )
