"""Training runtimes and jobs sized from the catalog: what one node of a group can give one pod."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from importlib import resources

from aws_cdk import Stack
from constructs import Construct

from ..catalog import AcceleratorVendor, InstanceSpec
from ..catalog.spec import EFA_RESOURCE
from ..catalog.topology import network_layers
from ..k8s.kueue_topology import TopologyRequest, fabric_test_request, topology_name, training_request
from ..k8s.training_jobs import FSX_PATH, WORKLOADS_PATH, JobValues, RuntimeValues
from .node_group import NODE_GROUP_LABEL, TrainingNodes, is_fine_tuning_type
from .workloads.checkpoint_contract import CAPACITY_BLOCK_ENV

# AWS Deep Learning Containers with PyTorch, NCCL, EFA and aws-ofi-nccl (NVIDIA) or the Neuron SDK.
NVIDIA_IMAGE = "public.ecr.aws/deep-learning-containers/pytorch-training:2.8.0-gpu-py312-cu129-ubuntu22.04-ec2"
NEURON_IMAGE_REPOSITORY = "pytorch-training-neuronx"
NEURON_IMAGE_TAG = "2.8.0-neuronx-py311-sdk2.26.1-ubuntu22.04"
DLC_REGISTRY_ACCOUNT = "763104351884"  # the DLC registry account in most commercial regions
# Leave room for the kubelet's reservation and the DaemonSets (CNI, device plugins, monitoring).
CPU_FRACTION = 0.9
MEMORY_FRACTION = 0.85
# train_example.py imports checkpoint_contract.py from its own directory (the ConfigMap mount).
SCRIPTS = ("allreduce_bench.py", "checkpoint_contract.py", "train_example.py")
# Run by the Capacity Block watch CronJob (eks_ml.k8s.capacity_block_watch), shipped only to clusters that have one.
BLOCK_WATCH_SCRIPT = "capacity_block_watch.py"
# Only the settings current aws-ofi-nccl and Neuron collectives need: use the EFA libfabric provider.
FABRIC_ENV = {"FI_PROVIDER": "efa"}
# Where jobs checkpoint (EKS_ML_CHECKPOINT_DIR) when the cluster has a shared file system.
CHECKPOINT_ROOT = f"{FSX_PATH}/checkpoints"


# A multi-node runtime is one group's image and node pin, optionally with one Kueue topology request on its pod
# template. Per group, not per vendor: Kueue admits a job into the first flavor with quota whose node labels agree
# with the pods' node selector, so without the pin a Capacity Block pool's jobs could run on an On-Demand group of
# the same type (and the On-Demand group's jobs, which carry no block settings, on the block).
RuntimeKey = tuple[TrainingNodes, TopologyRequest | None]


def runtime_name(group: str, request: TopologyRequest | None = None) -> str:
    base = f"eks-ml-torch-{group}"
    return f"{base}-{request.suffix}" if request else base


def job_requests(spec: InstanceSpec, *, topology_aware: bool) -> tuple[TopologyRequest | None, TopologyRequest | None]:
    """The topology requests of (the example training job, the fabric test) on nodes of this type: none when EKS
    does not label the type with its network place (a request on a flavor without a Topology is inadmissible)."""
    layers = network_layers(spec.name) if topology_aware else 0
    if not layers:
        return None, None
    return training_request(layers), fabric_test_request(layers)


def topology_notes(groups: Sequence[TrainingNodes], topology_groups: set[str], *, topology_aware: bool) -> list[str]:
    """For ``eks-ml plan``: how Kueue places each multi-node group's gangs in the EC2 network. ``topology_groups``:
    the groups whose flavors may have a Topology (see TrainingCluster)."""
    notes = []
    for group in groups:
        spec = group.spec
        if not spec.supports_efa:
            continue  # single-node jobs only: nothing to keep close
        training, fabric_test = job_requests(spec, topology_aware=group.name in topology_groups)
        if training is None or fabric_test is None:
            if not topology_aware:
                why = "topology_aware is off"
            elif group.name not in topology_groups:
                why = "Karpenter launches the nodes after admission; Kueue places topology requests on existing nodes"
            else:
                why = f"EKS does not label {spec.name} nodes"
            notes.append(f"Kueue topology: {group.name} jobs are placed without a topology request ({why})")
            continue
        notes.append(
            f"Kueue topology: {group.name} ({spec.name}, Topology {topology_name(network_layers(spec.name))}): "
            f"the example prefers one {training.level} domain, the fabric test requires one {fabric_test.level} domain"
        )
    return notes


def runtime_keys(groups: Sequence[TrainingNodes], topology_groups: set[str]) -> list[RuntimeKey]:
    """The multi-node runtimes the groups' jobs need (types without EFA run only single-node jobs), by name."""
    keys = {
        runtime_name(group.name, request): (group, request)
        for group in groups
        if group.spec.supports_efa
        for request in job_requests(group.spec, topology_aware=group.name in topology_groups)
    }
    return [keys[name] for name in sorted(keys)]


# Single-node runtimes are per group: their pod template pins the group (RuntimeValues.node_selector), since a
# one-GPU job's requests alone fit the first GPU flavor with quota (a p5 node for a g6e job).
def fine_tuning_runtime_name(group: str) -> str:
    return f"eks-ml-finetune-{group}"


def sweep_runtime_name(group: str) -> str:
    return f"eks-ml-sweep-{group}"


def backend(spec: InstanceSpec) -> str:
    return "nccl" if spec.is_nvidia else "xla"


def workload_scripts(*, capacity_block_watch: bool = False) -> dict[str, str]:
    package = resources.files("eks_ml.training.workloads")
    names = (*SCRIPTS, BLOCK_WATCH_SCRIPT) if capacity_block_watch else SCRIPTS
    return {name: package.joinpath(name).read_text() for name in sorted(names)}


def node_resources(spec: InstanceSpec) -> dict[str, int | str]:
    """Requests (and limits) of one pod that takes a whole node: all accelerators and EFA interfaces."""
    return {
        "cpu": math.floor(spec.vcpus * CPU_FRACTION),
        "memory": f"{math.floor(spec.memory_mib * MEMORY_FRACTION)}Mi",
        **spec.extended_resources(),
    }


def single_node_resources(spec: InstanceSpec) -> dict[str, int | str]:
    """Requests of a single-node job (fine-tuning, a sweep trial): the node's accelerators, CPU and memory but
    no EFA interface, which only carries traffic between nodes; the type's EFA stays free for other work."""
    return {name: value for name, value in node_resources(spec).items() if name != EFA_RESOURCE}


def neuron_image(scope: Construct) -> str:
    region = Stack.of(scope).region
    return f"{DLC_REGISTRY_ACCOUNT}.dkr.ecr.{region}.amazonaws.com/{NEURON_IMAGE_REPOSITORY}:{NEURON_IMAGE_TAG}"


def runtimes(
    scope: Construct,
    keys: Sequence[RuntimeKey],
    claim_name: str | None,
    *,
    max_restarts: int,
    fine_tuning: Sequence[TrainingNodes] = (),
    sweeps: Sequence[TrainingNodes] = (),
) -> list[RuntimeValues]:
    """The multi-node runtimes of ``keys``, a fine-tuning runtime per group in ``fine_tuning`` and a sweep runtime
    per group in ``sweeps``."""
    env = dict(FABRIC_ENV)
    if claim_name:
        env["EKS_ML_CHECKPOINT_DIR"] = CHECKPOINT_ROOT
    images = {AcceleratorVendor.NVIDIA: NVIDIA_IMAGE, AcceleratorVendor.AWS_NEURON: neuron_image(scope)}
    # The fine-tuning runtime: one node (mlPolicy numNodes 1), no fabric settings (a single node never uses
    # EFA), the same image, scripts, checkpoints and failure policy as the pre-training runtime.
    single_node_env = {name: value for name, value in env.items() if name not in FABRIC_ENV}
    return [
        *(
            RuntimeValues(
                name=runtime_name(group.name, request),
                image=images[group.spec.vendor],
                env=env,
                claim_name=claim_name,
                max_restarts=max_restarts,
                pod_annotations=request.annotations() if request else {},
                node_selector=group_selector(group),
            )
            for group, request in keys
        ),
        *(
            RuntimeValues(
                name=fine_tuning_runtime_name(group.name),
                image=images[group.spec.vendor],
                env=single_node_env,
                claim_name=claim_name,
                max_restarts=max_restarts,
                node_selector=group_selector(group),
            )
            for group in sorted(fine_tuning, key=lambda g: g.name)
        ),
        # Sweep trials run in the teams' namespaces, where the file system's claim (namespaced, bound to the
        # one static volume) does not exist: their runtime mounts no file system, so trials keep no
        # checkpoints and a preempted trial starts over.
        *(
            RuntimeValues(
                name=sweep_runtime_name(group.name),
                image=images[group.spec.vendor],
                env={},
                claim_name=None,
                max_restarts=max_restarts,
                node_selector=group_selector(group),
            )
            for group in sorted(sweeps, key=lambda g: g.name)
        ),
    ]


def group_selector(group: TrainingNodes) -> dict[str, str]:
    """Pins a single-node runtime's pods to its group: a job's requests alone (one GPU) would fit the first GPU
    flavor."""
    return {NODE_GROUP_LABEL: group.name}


def single_node_example_job(
    group: TrainingNodes,
    *,
    name: str,
    namespace: str,
    queue: str,
    runtime: str,
    arguments: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
) -> JobValues:
    """The example script on one node of the group (fine-tuning, a sweep trial), with the group's Capacity Block
    settings when it has them: every job on a block is told when to checkpoint and ends before the block does."""
    spec = group.spec
    block_env, block_labels = capacity_block_job_settings(group)
    return JobValues(
        name=name,
        namespace=namespace,
        queue=queue,
        runtime=runtime,
        nodes=1,
        procs_per_node=spec.workers_per_node,
        resources=single_node_resources(spec),
        command=["torchrun", f"{WORKLOADS_PATH}/train_example.py", "--backend", backend(spec), *arguments],
        env={"EKS_ML_JOB_NAME": name, **(env or {}), **block_env},
        labels={**(labels or {}), **block_labels},
    )


def fine_tuning_job(group: TrainingNodes, *, namespace: str, queue: str) -> JobValues:
    """The example script as a single-node fine-tuning job on one node of the group."""
    return single_node_example_job(
        group,
        name=f"{group.name}-fine-tune",
        namespace=namespace,
        queue=queue,
        runtime=fine_tuning_runtime_name(group.name),
    )


def group_jobs(group: TrainingNodes, *, namespace: str, queue: str, topology_aware: bool = True) -> list[JobValues]:
    """The example training job and the fabric acceptance test of one node group, on all its nodes, each on the
    runtime that carries its topology request (see job_requests); a group of a fine-tuning type also gets the
    single-node fine-tuning example, and only that when it cannot run multi-node jobs (no EFA)."""
    spec = group.spec
    fine_tuning = [fine_tuning_job(group, namespace=namespace, queue=queue)] if is_fine_tuning_type(spec) else []
    if not spec.supports_efa:
        return fine_tuning
    training, fabric_test = job_requests(spec, topology_aware=topology_aware)
    common = {
        "namespace": namespace,
        "queue": queue,
        "nodes": group.max_size,
        "procs_per_node": spec.workers_per_node,
        "resources": node_resources(spec),
    }
    block_env, block_labels = capacity_block_job_settings(group)
    return [
        JobValues(
            name=f"{group.name}-example",
            runtime=runtime_name(group.name, training),
            command=["torchrun", f"{WORKLOADS_PATH}/train_example.py", "--backend", backend(spec)],
            env={"EKS_ML_JOB_NAME": f"{group.name}-example", **block_env},
            labels=block_labels,
            **common,  # type: ignore[arg-type]
        ),
        JobValues(
            name=f"{group.name}-fabric-test",
            runtime=runtime_name(group.name, fabric_test),
            command=["torchrun", f"{WORKLOADS_PATH}/allreduce_bench.py", "--backend", backend(spec)],
            env={"EKS_ML_EFA_GBPS": f"{spec.network_bandwidth_gbps:g}", **block_env},
            labels=block_labels,
            **common,  # type: ignore[arg-type]
        ),
        *fine_tuning,
    ]


# Kueue deactivates a workload admitted longer than this many seconds (Kueue v0.19.2,
# pkg/controller/constants/constants.go MaxExecTimeSecondsLabel; the Workload's maximumExecutionTimeSeconds).
MAX_EXEC_TIME_LABEL = "kueue.x-k8s.io/max-exec-time-seconds"


def capacity_block_job_settings(group: TrainingNodes) -> tuple[dict[str, str], dict[str, str]]:
    """The env and labels of a job on a Capacity Block with a known window: the reservation id (the checkpoint
    contract's signal names it) and the block's longest job as Kueue's maximum execution time, so a job
    admitted before Kueue stops admitting onto the block is over (or stopped) before its nodes go."""
    window = group.capacity.block_window
    if window is None or group.capacity.reservation_id is None:
        return {}, {}
    return (
        {CAPACITY_BLOCK_ENV: group.capacity.reservation_id},
        {MAX_EXEC_TIME_LABEL: str(int(window.longest_job.to_seconds()))},
    )
