"""Cold starts of a model server: where its weights and compiled graphs are cached, and how long a start
is expected to take on each path.

Weights from S3 are read through Mountpoint for Amazon S3 with its local data cache: the cache is an
``emptyDir`` of the Mountpoint Pod, which the CSI driver (v2) runs in its own namespace and shares between
every workload pod on the node that mounts the same PersistentVolume with the same options
(awslabs/mountpoint-s3-csi-driver docs/CACHING.md "emptyDir", docs/MOUNTPOINT_POD_SHARING.md). The
``emptyDir`` lives in the kubelet's directory, which Karpenter's ``instanceStorePolicy: RAID0`` puts on the
instance-store NVMe array (karpenter.sh docs, concepts/nodeclasses, spec.instanceStorePolicy) on both node
OSes: on AL2023 through nodeadm's NodeConfig, on Bottlerocket (the NVIDIA pools) through the bootstrap commands
``apiclient ephemeral-storage init`` and ``bind`` (aws/karpenter-provider-aws v1.14.1,
pkg/providers/amifamily/bootstrap/bottlerocket.go), whose default set on Kubernetes variants (Bottlerocket
1.46.0 and later; eks_ml.inference.node_os pins 1.64.0) includes /var/lib/kubelet, /var/lib/containerd and
/var/log/pods (bottlerocket-os/bottlerocket-core-kit#632). A hostPath
cache keyed by model would also survive the last replica leaving the node, but hostPath is refused by the
baseline Pod Security level the NVIDIA serving namespace enforces (eks_ml.k8s.pod_security): it would
force that namespace to privileged. The Mountpoint cache keeps the serving pods' level unchanged.

Neuron's compiled model is stored where ``NEURON_COMPILED_ARTIFACTS`` points: vLLM on Neuron loads it from
there when it is present, and otherwise compiles and writes it there; a present artifact is loaded whatever
the server's flags (AWS Neuron docs, "vLLM User Guide for NxD Inference", Loading pre-compiled models).
So the directory on the persistent claim is keyed by everything that shapes the compiled graphs.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..catalog import InstanceSpec
from ..errors import Problems
from ..guards import expect_all, expect_str
from ..kube_names import check_dns_subdomain

COMPILED_DIR = "/compiled"  # where a CompileCache claim is mounted in the server
# Room above the weights' size in the Mountpoint cache: tokenizer, config and index files, and the
# cache's own block metadata.
CACHE_HEADROOM = 1.1
CACHE_EXTRA_GIB = 2


@dataclass(frozen=True, kw_only=True)
class CompileCache:
    """A PersistentVolumeClaim of the serving namespace (e.g. Amazon EFS, ReadWriteMany) that keeps Neuron's
    compiled model across restarts and replicas, so only the first start compiles.

    path: a directory on the claim. Default: its root. Each service writes under
    ``<path>/<service>/<key>``, the key being a hash of the image and the server's flags (model, tensor
    parallel degree, sequence limits, extra arguments).
    """

    claim_name: str
    path: str = ""

    def check(self, field: str, problems: Problems) -> None:
        if not expect_all(
            expect_str(self.claim_name, f"{field}.claim_name", problems),
            isinstance(self.path, str) or expect_str(self.path, f"{field}.path", problems),
        ):
            return
        check_dns_subdomain(self.claim_name, f"{field}.claim_name", problems)
        if self.path.startswith("/") or ".." in self.path.split("/"):
            problems.add(
                f"{field}.path",
                self.path,
                "a relative directory on the claim, without ..",
                "drop the leading / (the claim is mounted for you)",
            )


def compiled_key(*, source: str, image: str, args: Sequence[str]) -> str:
    """A short, stable name for one compiled configuration: where the weights come from (S3 and claim weights
    are all served from the same mount path, so ``--model`` alone does not tell them apart), the image (its
    Neuron SDK compiles) and every server flag (tensor parallel degree, sequence limits, extra Neuron config).
    A change gets a new directory instead of loading graphs compiled for another model or shape."""
    text = "\n".join([source, image, *args])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def node_cache_gib(weights_gib: float) -> int:
    """Size limit of the Mountpoint cache for weights of ``weights_gib``: all of them, with headroom."""
    return math.ceil(weights_gib * CACHE_HEADROOM) + CACHE_EXTRA_GIB


def node_disk_gib(spec: InstanceSpec, root_volume_gib: int) -> int:
    """Where the kubelet keeps emptyDirs: the instance-store RAID0 when the type has NVMe, else the root
    volume."""
    return spec.local_nvme_gib or root_volume_gib


# ---- Start-time estimates ---------------------------------------------------------------------------------
# Nothing here was measured: no deployment happened. Each figure is an estimate from a size and a bandwidth,
# or a published figure, named beside it. The README's table is computed from these.
MIB_PER_GIB = 1024
# A fresh node: EC2 launch, boot, kubelet registration and device plugin (Karpenter); an estimate.
NODE_READY_S = 120
# The server images (vLLM, Neuron DLC) are about 10 GiB compressed; the AWS post on SOCI for the Deep
# Learning Containers reports 4-6 minutes for a standard pull of 15-20 GB, about 60 MiB/s pull and unpack.
IMAGE_GIB = 10
IMAGE_PULL_MIB_S = 60
# Hugging Face Hub downloads without hf_transfer: an estimate of one node's sustained rate.
HUB_MIB_S = 100
# Mountpoint reads from S3 at up to the instance's network bandwidth; this share is an estimate.
S3_SHARE_OF_NETWORK = 0.8
# Reading cached weights from the instance-store RAID0 (or gp3 root volume at its 125 MiB/s baseline).
NVME_MIB_S = 2000
GP3_MIB_S = 125
# Loading weights into accelerator memory, CUDA graph capture and warm-up once the bytes are local: estimate.
SERVER_INIT_S = 90
# NxD Inference: "a small-ish model of 15GB might take around 15min to compile" (AWS Neuron docs, vLLM User
# Guide for NxD Inference): about one minute per GB of weights.
NEURON_COMPILE_S_PER_GB = 60
GB_PER_GIB = 1.073741824


@dataclass(frozen=True)
class StartEstimate:
    """Seconds from a pod's scheduling to a ready server, on a node that already runs (a fresh node adds
    NODE_READY_S)."""

    path: str
    image_s: int
    weights_s: int
    compile_s: int
    init_s: int = SERVER_INIT_S

    @property
    def total_s(self) -> int:
        return self.image_s + self.weights_s + self.compile_s + self.init_s

    @property
    def minutes(self) -> float:
        return round(self.total_s / 60, 1)


def _seconds(gib: float, mib_s: float) -> int:
    return math.ceil(gib * MIB_PER_GIB / mib_s)


def estimate(
    path: str, *, spec: InstanceSpec, weights_gib: float, image_cached: bool, compiled: bool = True
) -> StartEstimate:
    """``path``: hub (download), s3 (Mountpoint, first read), cached (Mountpoint cache on the node).
    ``compiled``: False when a Neuron server must compile before it serves."""
    image_s = 0 if image_cached else _seconds(IMAGE_GIB, IMAGE_PULL_MIB_S)
    disk_mib_s = NVME_MIB_S if spec.local_nvme_gib else GP3_MIB_S
    if path == "hub":
        weights_s = _seconds(weights_gib, HUB_MIB_S)
    elif path == "s3":
        network_mib_s = spec.network_bandwidth_mbps / 8 * 1_000_000 / 1024 / 1024 * S3_SHARE_OF_NETWORK
        weights_s = _seconds(weights_gib, network_mib_s)
    elif path == "cached":
        weights_s = _seconds(weights_gib, disk_mib_s)
    else:
        raise ValueError(f"unknown path {path!r}: hub, s3 or cached")
    compile_s = 0
    if spec.is_neuron and not compiled:
        compile_s = math.ceil(weights_gib * GB_PER_GIB * NEURON_COMPILE_S_PER_GB)
    return StartEstimate(path, image_s, weights_s, compile_s)
