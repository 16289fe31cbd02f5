"""Whether a model service's start-up budget (load_timeout, which sizes its startup probe) covers the start
it is expected to make, and whether its Mountpoint cache fits the node's disk."""

from __future__ import annotations

from ..errors import Problems
from .cold_start import StartEstimate, estimate, node_cache_gib, node_disk_gib
from .model_service import HubWeights, ModelServiceProps, S3Weights
from .pools import NodePoolProps

# The cache may take this share of the node's ephemeral disk: the image, logs and other pods need the rest.
CACHE_DISK_SHARE = 0.5


def first_start(service: ModelServiceProps) -> StartEstimate:
    """The slowest start the probe must allow: weights not on the node yet and, on Neuron, a compile (the
    first start compiles even with a compile cache). Claim weights (FSx, EFS) are estimated as S3 reads."""
    path = "hub" if isinstance(service.weights, HubWeights) else "s3"
    weights = service.weights_gib
    # The startup probe counts from the container's start, after the image pull.
    return estimate(path, spec=service.spec(), weights_gib=weights, image_cached=True, compiled=False)


def start_budget_warning(service: ModelServiceProps, pool: NodePoolProps) -> str | None:
    """A warning when load_timeout is shorter than the estimated first start (an estimate: the start may
    still fit, but a probe that gives up too early restarts the download or compile in a loop)."""
    first = first_start(service)
    budget = int(service.load_timeout.to_seconds())
    if budget >= first.total_s:
        return None
    return (
        f"model service {service.name}: load_timeout is {budget // 60} min but its first start is estimated at "
        f"{first.minutes} min (weights {first.weights_s} s, compile {first.compile_s} s, server start "
        f"{first.init_s} s; eks_ml.inference.cold_start). The startup probe would restart the server before it "
        f"is up: raise load_timeout (e.g. Duration.minutes({int(first.total_s // 60) + 5}))."
    )


def check_node_cache(service: ModelServiceProps, pool: NodePoolProps, field: str, problems: Problems) -> None:
    """The Mountpoint cache holds all the weights on the node's ephemeral disk (NVMe RAID0, or the root volume
    on types without instance store such as inf2): it must fit beside the image."""
    weights = service.weights
    if not isinstance(weights, S3Weights) or not weights.node_cache:
        return
    spec = service.spec()
    cache = node_cache_gib(service.weights_gib)
    disk = node_disk_gib(spec, pool.values().root_volume_gib)
    if cache > disk * CACHE_DISK_SHARE:
        where = "instance-store NVMe" if spec.local_nvme_gib else f"root volume of pool {pool.name}"
        problems.add(
            f"{field}.weights.node_cache",
            f"{cache} GiB cache",
            f"at most {CACHE_DISK_SHARE:.0%} of the node's ephemeral disk ({disk} GiB {where})",
            f"raise pool {pool.name}'s root_volume_gib to at least {int(cache / CACHE_DISK_SHARE) + 1}, "
            "or set node_cache=False",
        )
