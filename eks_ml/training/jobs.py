"""Training runtimes and jobs sized from the catalog: what one node of a group can give one pod."""

from __future__ import annotations

import math
from importlib import resources

from aws_cdk import Stack
from constructs import Construct

from ..catalog import AcceleratorVendor, InstanceSpec
from ..catalog.topology import network_layers
from ..k8s.kueue_topology import TopologyRequest, fabric_test_request, training_request
from ..k8s.training_jobs import FSX_PATH, WORKLOADS_PATH, JobValues, RuntimeValues
from .node_group import TrainingNodeGroup

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
# Only the settings current aws-ofi-nccl and Neuron collectives need: use the EFA libfabric provider.
FABRIC_ENV = {"FI_PROVIDER": "efa"}


# A runtime is one vendor's image, optionally with one Kueue topology request on its pod template.
RuntimeKey = tuple[AcceleratorVendor, TopologyRequest | None]


def runtime_name(vendor: AcceleratorVendor, request: TopologyRequest | None = None) -> str:
    base = f"eks-ml-torch-{vendor.value}"
    return f"{base}-{request.suffix}" if request else base


def job_requests(spec: InstanceSpec, *, topology_aware: bool) -> tuple[TopologyRequest | None, TopologyRequest | None]:
    """The topology requests of (the example training job, the fabric test) on nodes of this type: none when EKS
    does not label the type with its network place (a request on a flavor without a Topology is inadmissible)."""
    layers = network_layers(spec.name) if topology_aware else 0
    if not layers:
        return None, None
    return training_request(layers), fabric_test_request(layers)


def runtime_keys(specs: list[InstanceSpec], *, topology_aware: bool) -> set[RuntimeKey]:
    return {(spec.vendor, request) for spec in specs for request in job_requests(spec, topology_aware=topology_aware)}


def backend(spec: InstanceSpec) -> str:
    return "nccl" if spec.is_nvidia else "xla"


def workload_scripts() -> dict[str, str]:
    package = resources.files("eks_ml.training.workloads")
    return {name: package.joinpath(name).read_text() for name in SCRIPTS}


def node_resources(spec: InstanceSpec) -> dict[str, int | str]:
    """Requests (and limits) of one pod that takes a whole node: all accelerators and EFA interfaces."""
    return {
        "cpu": math.floor(spec.vcpus * CPU_FRACTION),
        "memory": f"{math.floor(spec.memory_mib * MEMORY_FRACTION)}Mi",
        **spec.extended_resources(),
    }


def neuron_image(scope: Construct) -> str:
    region = Stack.of(scope).region
    return f"{DLC_REGISTRY_ACCOUNT}.dkr.ecr.{region}.amazonaws.com/{NEURON_IMAGE_REPOSITORY}:{NEURON_IMAGE_TAG}"


def runtimes(
    scope: Construct, keys: set[RuntimeKey], claim_name: str | None, *, max_restarts: int
) -> list[RuntimeValues]:
    env = dict(FABRIC_ENV)
    if claim_name:
        env["EKS_ML_CHECKPOINT_DIR"] = f"{FSX_PATH}/checkpoints"
    images = {AcceleratorVendor.NVIDIA: NVIDIA_IMAGE, AcceleratorVendor.AWS_NEURON: neuron_image(scope)}
    return [
        RuntimeValues(
            name=runtime_name(vendor, request),
            image=images[vendor],
            env=env,
            claim_name=claim_name,
            max_restarts=max_restarts,
            pod_annotations=request.annotations() if request else {},
        )
        for vendor, request in sorted(keys, key=lambda key: runtime_name(*key))
    ]


def group_jobs(group: TrainingNodeGroup, *, namespace: str, queue: str, topology_aware: bool = True) -> list[JobValues]:
    """The example training job and the fabric acceptance test of one node group, on all its nodes; each on the
    runtime that carries its topology request (see job_requests)."""
    spec = group.spec
    training, fabric_test = job_requests(spec, topology_aware=topology_aware)
    common = {
        "namespace": namespace,
        "queue": queue,
        "nodes": group.max_size,
        "procs_per_node": spec.workers_per_node,
        "resources": node_resources(spec),
    }
    return [
        JobValues(
            name=f"{group.name}-example",
            runtime=runtime_name(spec.vendor, training),
            command=["torchrun", f"{WORKLOADS_PATH}/train_example.py", "--backend", backend(spec)],
            env={"EKS_ML_JOB_NAME": f"{group.name}-example"},
            **common,  # type: ignore[arg-type]
        ),
        JobValues(
            name=f"{group.name}-fabric-test",
            runtime=runtime_name(spec.vendor, fabric_test),
            command=["torchrun", f"{WORKLOADS_PATH}/allreduce_bench.py", "--backend", backend(spec)],
            env={"EKS_ML_EFA_GBPS": f"{spec.network_bandwidth_gbps:g}"},
            **common,  # type: ignore[arg-type]
        ),
    ]
