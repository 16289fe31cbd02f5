"""Bad input through every public entry point ends as a ValidationError naming the field and the fix.

Each case builds one construct (in a bare Stack), parses one cdk.json configuration or runs the CLI with
one mistake. The outcome is one of: ``validation`` (a ValidationError whose message names the field and
contains the fix), ``raw`` (any other exception: TypeError, KeyError, a jsii error...), ``accepted`` (no
error although the input fails at deploy) or ``unclear`` (a ValidationError without the field or the fix).
Every case must be ``validation``; ``python -m tests.test_bad_input`` prints the counts by category and
outcome (run it against an older tree to count what escaped there).
"""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import eks_ml  # noqa: F401  (selects the bundled Node.js before aws_cdk starts jsii)

# isort: split
import pytest
from aws_cdk import App, Environment, Stack
from aws_cdk import aws_ec2 as ec2

from eks_ml import BaseClusterProps, MlVpc, MlVpcProps, SystemNodesProps, ValidationError, load_app_config
from eks_ml import cli as cli_module
from eks_ml.cli import main
from eks_ml.inference import InferenceCluster, InferenceClusterProps, NodePoolProps, PoolKind
from eks_ml.inference.model_service import ClaimWeights, HubWeights, ModelServiceProps, S3Weights
from eks_ml.inference.slo import ServiceLevelObjective
from eks_ml.observability import Backend, ObservabilityAddon, ObservabilityAddonProps
from eks_ml.observability.prometheus_alerts import Thresholds
from eks_ml.training import Capacity, TrainingCluster, TrainingClusterProps, TrainingNodeGroupProps
from eks_ml.training.lustre import DataRepository, LustreProps
from eks_ml.training.storage_classes import (
    Gp3ClassProps,
    LustreClassProps,
    LustreDeployment,
    StorageClassesProps,
)

from .support.default_app import synthesize_in_this_process
from .support.synth import CDK_CONTEXT, ROOT

AZS = ("us-west-2a", "us-west-2b")


@dataclass(frozen=True)
class Case:
    category: str
    name: str
    build: Callable[[], object]
    field: str
    fix: str


def _stack() -> Stack:
    app = App(context=dict(CDK_CONTEXT), analytics_reporting=False, builtin_cloud_formation_validation=False)
    return Stack(app, "Lib", env=Environment(region="us-west-2"))


def _vpc(stack: Stack) -> ec2.IVpc:
    return MlVpc(stack, "Network", MlVpcProps(availability_zones=AZS)).vpc


def vpc(**props: Any) -> Callable[[], object]:
    return lambda: MlVpc(_stack(), "Network", MlVpcProps(**{"availability_zones": AZS, **props}))


def training(*, base: dict[str, Any] | None = None, **props: Any) -> Callable[[], object]:
    def build() -> object:
        stack = _stack()
        base_props = BaseClusterProps(**{"vpc": _vpc(stack), "cluster_name": "train", **(base or {})})
        defaults: dict[str, Any] = {"base": base_props, "file_system": None}
        return TrainingCluster(stack, "Training", TrainingClusterProps(**{**defaults, **props}))

    return build


def group(**props: Any) -> Callable[[], object]:
    return training(node_groups=[TrainingNodeGroupProps(**{"name": "p5", **props})])


def lustre(**props: Any) -> Callable[[], object]:
    return training(file_system=LustreProps(**props))


def base(**props: Any) -> Callable[[], object]:
    return training(base=props)


def inference(**props: Any) -> Callable[[], object]:
    def build() -> object:
        stack = _stack()
        base_props = BaseClusterProps(vpc=_vpc(stack), cluster_name="serve")
        return InferenceCluster(stack, "Inference", InferenceClusterProps(**{"base": base_props, **props}))

    return build


def service(**props: Any) -> Callable[[], object]:
    defaults: dict[str, Any] = {
        "name": "qwen",
        "instance_type": "g6e.xlarge",
        "weights": HubWeights(model_id="Qwen/Qwen3-8B"),
        "parameters_billions": 8.2,
    }
    return lambda: inference(model_services=[ModelServiceProps(**{**defaults, **props})])()


def services(*names: str) -> Callable[[], object]:
    weights = HubWeights(model_id="Qwen/Qwen3-8B")
    return inference(
        model_services=[
            ModelServiceProps(name=n, instance_type="g6e.xlarge", weights=weights, parameters_billions=8.2)
            for n in names
        ]
    )


def pool(**props: Any) -> Callable[[], object]:
    return inference(pools=[NodePoolProps(**{"name": "gpu", "kind": PoolKind.NVIDIA, **props})])


def observability(cluster_name: str = "train", **props: Any) -> Callable[[], object]:
    def build() -> object:
        cluster = training(base={"cluster_name": cluster_name})()
        assert isinstance(cluster, TrainingCluster)
        return ObservabilityAddon(cluster, "Observability", ObservabilityAddonProps(cluster=cluster, **props))

    return build


def classes(*lustre: Any, gp3: Any = None, **props: Any) -> Callable[[], object]:
    """A training cluster with these StorageClasses (gp3 left out unless given)."""
    return training(storage_classes=StorageClassesProps(lustre=list(lustre), gp3=gp3, **props))


def lustre_class(**props: Any) -> LustreClassProps:
    return LustreClassProps(**{"name": "fsx", **props})


def config(**overrides: Any) -> Callable[[], object]:
    return lambda: load_app_config({**CDK_CONTEXT, **{f"eks-ml:{k}": v for k, v in overrides.items()}})


class CliFailed(Exception):
    """The CLI returned 1; its stderr is the message (the app's ValidationError, or what stopped the plan)."""


def cli(*args: str, cdk_json: str | None = None, real: bool = False) -> Callable[[], object]:
    """eks-ml plan with ``args``; the default app runs in this process unless ``real`` (a subprocess, as users
    run it)."""

    def run() -> object:
        path = ROOT / "cdk.json"
        if cdk_json is not None:
            path = Path(tempfile.mkdtemp()) / "cdk.json"
            path.write_text(cdk_json)
        err = io.StringIO()
        # The default app runs in this process (tests/support/default_app.py) unless ``real``.
        in_process = contextlib.nullcontext() if real else mock.patch.object(
            cli_module, "synthesize", synthesize_in_this_process
        )
        with in_process, contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main(["plan", "--cdk-json", str(path), *args])
        if code == 1 and err.getvalue().startswith("eks-ml plan:"):
            raise CliFailed(err.getvalue())
        return code

    return run


def ctx(key: str, value: str) -> tuple[str, str]:
    return ("-c", f"eks-ml:{key}={value}")


# --- the cases ------------------------------------------------------------------------------------------

INT = "write an int such as 2"
BOOL = "write True or False"
STR = "quote the value"
LIST = "wrap it in a list"
DICT = "pass a dict such as"
NUMBER = "write a number such as"
NAME = "rename it, e.g."
PREFIX = "use your own prefix"
LABEL_VALUE = "use e.g."
IDS = "differs by more than punctuation"
EFA = "pass a list such as"

CASES: list[Case] = [
    # Wrong scalar types: an int as a string, a float, a bool as an int, a string for a bool.
    *[
        Case("types", f"group-{f}-{v!r}", group(**{f: v}), f"node_groups[0].{f}", INT)
        for f in ("desired_size", "min_size", "max_size", "root_volume_gib")
        for v in ("2", 2.0, True)
    ],
    Case("types", "group-name-int", group(name=5), "node_groups[0].name", STR),
    Case("types", "group-instance-type-none", group(instance_type=None), "node_groups[0].instance_type", STR),
    Case("types", "group-az-int", group(availability_zone=1), "node_groups[0].availability_zone", STR),
    Case("types", "group-placement-str", group(placement_group="false"), "node_groups[0].placement_group", BOOL),
    Case("types", "group-placement-int", group(placement_group=1), "node_groups[0].placement_group", BOOL),
    Case("types", "group-capacity-str", group(capacity="onDemand"), "node_groups[0].capacity", "Capacity.on_demand()"),
    Case("types", "group-labels-list", group(labels=["team"]), "node_groups[0].labels", DICT),
    Case(
        "types", "group-label-value-int", group(labels={"example.com/n": 1}), "node_groups[0].labels", "quote the value"
    ),
    Case("types", "capacity-id-int", group(capacity=Capacity.reservation(123)), "capacity.reservation_id", STR),  # type: ignore[arg-type]
    *[
        Case("types", f"lustre-{f}-{v!r}", lustre(**{f: v}), f"file_system.{f}", INT)
        for f in ("storage_gib", "throughput_per_tib")
        for v in ("4800", 4800.0)
    ],
    Case("types", "lustre-efa-str", lustre(efa_enabled="false"), "file_system.efa_enabled", BOOL),
    Case("types", "lustre-efa-int", lustre(efa_enabled=0), "file_system.efa_enabled", BOOL),
    Case("types", "lustre-claim-int", lustre(claim_name=3), "file_system.claim_name", STR),
    Case(
        "types", "lustre-repo-str", lustre(data_repository="s3://b/p"), "file_system.data_repository", "DataRepository("
    ),
    Case(
        "types",
        "lustre-repo-path-none",
        lustre(data_repository=DataRepository(s3_path="s3://bucket/p", file_system_path=None)),  # type: ignore[arg-type]
        "file_system.data_repository.file_system_path",
        STR,
    ),
    *[
        Case("types", f"service-{f}-{v!r}", service(**{f: v}), f"model_services[0].{f}", INT)
        for f in ("max_model_len", "min_replicas", "max_replicas", "queue_target", "cpu_target", "tensor_parallel")
        for v in ("4", 4.0)
    ],
    Case("types", "service-params-str", service(parameters_billions="8"), "parameters_billions", NUMBER),
    Case("types", "service-params-bool", service(parameters_billions=True), "parameters_billions", NUMBER),
    Case("types", "service-bytes-str", service(bytes_per_parameter="2"), "bytes_per_parameter", NUMBER),
    Case("types", "service-public-str", service(public="false"), "model_services[0].public", BOOL),
    Case("types", "service-public-int", service(public=0), "model_services[0].public", BOOL),
    Case("types", "service-image-int", service(image=1), "model_services[0].image", STR),
    Case("types", "service-name-none", service(name=None), "model_services[0].name", STR),
    Case("types", "service-weights-str", service(weights="Qwen/Qwen3-8B"), "model_services[0].weights", "HubWeights("),
    Case("types", "service-hub-id-int", service(weights=HubWeights(model_id=8)), "weights.model_id", STR),  # type: ignore[arg-type]
    Case("types", "service-s3-bucket-none", service(weights=S3Weights(bucket=None)), "weights.bucket", STR),  # type: ignore[arg-type]
    Case("types", "service-claim-int", service(weights=ClaimWeights(claim_name=1)), "weights.claim_name", STR),  # type: ignore[arg-type]
    Case("types", "service-slo-float", service(slo=0.99), "model_services[0].slo", "ServiceLevelObjective("),
    Case(
        "types",
        "service-slo-target-str",
        service(slo=ServiceLevelObjective(availability_target="99.5%")),
        "slo.availability_target",
        NUMBER,
    ),
    Case(
        "sizes",
        "service-slo-latency-off-bucket",
        service(slo=ServiceLevelObjective(latency_seconds=45)),
        "model_services[0].slo.latency_seconds",
        "use the nearest bound, e.g. 40",
    ),
    Case(
        "sizes",
        "service-slo-target-percent",
        service(slo=ServiceLevelObjective(latency_target=99)),
        "model_services[0].slo.latency_target",
        "write the objective as a fraction",
    ),
    Case("types", "pool-accel-limit-str", pool(accelerator_limit="32"), "pools[0].accelerator_limit", INT),
    Case("types", "pool-cpu-limit-float", pool(cpu_limit=10.5), "pools[0].cpu_limit", INT),
    Case("types", "pool-root-str", pool(root_volume_gib="200"), "pools[0].root_volume_gib", INT),
    Case("types", "pool-consolidate-int", pool(consolidate_after=600), "pools[0].consolidate_after", STR),
    Case("types", "pool-expire-none", pool(expire_after=None), "pools[0].expire_after", STR),
    Case("types", "pool-budget-int", pool(disruption_budget=10), "pools[0].disruption_budget", STR),
    Case("types", "pool-labels-list", pool(labels=[("a", "b")]), "pools[0].labels", DICT),
    Case("types", "pool-name-int", pool(name=1), "pools[0].name", STR),
    Case("types", "base-cluster-name-int", base(cluster_name=7), "base.cluster_name", STR),
    Case("types", "base-version-float", base(kubernetes_version=1.35), "base.kubernetes_version", STR),
    Case("types", "base-auto-mode-str", base(auto_mode="false"), "base.auto_mode", BOOL),
    Case("types", "base-addons-list", base(addon_versions=["vpc-cni"]), "base.addon_versions", DICT),
    Case(
        "types", "base-system-nodes-dict", base(system_nodes={"min_size": 2}), "base.system_nodes", "SystemNodesProps"
    ),
    Case("types", "base-vpc-str", base(vpc="vpc-123"), "base.vpc", "MlVpc(...).vpc"),
    Case(
        "types",
        "system-type-str",
        base(system_nodes=SystemNodesProps(instance_type="m7g.large")),  # type: ignore[arg-type]
        "base.system_nodes.instance_type",
        "ec2.InstanceType(",
    ),
    *[
        Case("types", f"system-{f}-float", base(system_nodes=SystemNodesProps(**{f: 2.0})), f"system_nodes.{f}", INT)
        for f in ("min_size", "desired_size", "max_size", "root_volume_gib")
    ],
    Case("types", "vpc-mask-str", vpc(private_subnet_mask="18"), "private_subnet_mask", INT),
    Case("types", "vpc-public-mask-float", vpc(public_subnet_mask=24.0), "public_subnet_mask", INT),
    Case("types", "vpc-cidr-int", vpc(cidr=10), "cidr", STR),
    Case("types", "vpc-tag-none", vpc(discovery_tag_value=None), "discovery_tag_value", STR),
    Case("types", "training-namespace-int", training(namespace=1), "namespace", STR),
    Case("types", "training-max-restarts-str", training(max_restarts="3"), "max_restarts", INT),
    Case("types", "training-max-restarts-bool", training(max_restarts=True), "max_restarts", INT),
    Case("sizes", "training-max-restarts-negative", training(max_restarts=-1), "max_restarts", "use a value from 0 to 100"),
    Case("sizes", "training-max-restarts-unbounded", training(max_restarts=1000), "max_restarts", "use a value from 0 to 100"),
    Case(
        "sizes",
        "scratch-with-throughput",
        classes(lustre_class(throughput_per_tib=200)),
        "storage_classes.lustre[0].throughput_per_tib",
        "drop throughput_per_tib",
    ),
    Case(
        "sizes",
        "persistent-throughput-tier",
        classes(lustre_class(deployment=LustreDeployment.PERSISTENT_2, throughput_per_tib=300)),
        "storage_classes.lustre[0].throughput_per_tib",
        "pick a PERSISTENT_2 throughput tier",
    ),
    Case(
        "sizes",
        "scratch-with-efa",
        classes(lustre_class(efa_enabled=True)),
        "storage_classes.lustre[0].efa_enabled",
        "use deployment=LustreDeployment.PERSISTENT_2",
    ),
    Case("types", "training-fs-dict", training(file_system={"storage_gib": 1200}), "file_system", "LustreProps("),
    Case(
        "types",
        "storage-classes-dict",
        training(storage_classes={"gp3": None}),
        "storage_classes",
        "StorageClassesProps(",
    ),
    Case("types", "lustre-class-dict", classes({"name": "fsx"}), "storage_classes.lustre[0]", "LustreClassProps("),
    Case("types", "gp3-class-str", classes(gp3="gp3"), "storage_classes.gp3", "Gp3ClassProps()"),
    Case("types", "lustre-class-efa-str", classes(lustre_class(efa_enabled="true")), ".efa_enabled", BOOL),
    Case("types", "gp3-default-int", classes(gp3=Gp3ClassProps(default_class=1)), "gp3.default_class", BOOL),
    Case(
        "types",
        "training-base-dict",
        lambda: TrainingCluster(_stack(), "T", TrainingClusterProps(base={"cluster_name": "x"})),
        "base",
        "BaseClusterProps(",
    ),  # type: ignore[arg-type]
    Case(
        "types",
        "training-cluster-name-str",
        lambda: TrainingCluster(_stack(), "T", TrainingClusterProps(cluster="my-cluster")),
        "cluster",
        "from_cluster_attributes",
    ),  # type: ignore[arg-type]
    Case("types", "inference-ami-int", inference(ami_alias=20260728), "ami_alias", STR),
    Case(
        "types", "inference-bottlerocket-ami-int", inference(bottlerocket_ami_alias=164), "bottlerocket_ami_alias", STR
    ),
    Case("types", "inference-namespace-none", inference(namespace=None), "namespace", STR),
    Case("types", "inference-subnet-tags-str", inference(subnet_tags="karpenter.sh/discovery=ml"), "subnet_tags", DICT),
    Case("types", "obs-emails-int", observability(alarm_emails=[1]), "alarm_emails", "quote every item"),
    Case("types", "obs-addon-version-int", observability(cloudwatch_addon_version=4), "cloudwatch_addon_version", STR),
    Case(
        "types",
        "obs-thresholds-str",
        observability(thresholds=Thresholds(queue_depth="16")),
        "thresholds.queue_depth",
        INT,
    ),  # type: ignore[arg-type]
    Case(
        "types",
        "obs-latency-str",
        observability(thresholds=Thresholds(latency_p95_seconds="30")),
        "latency_p95_seconds",
        NUMBER,
    ),  # type: ignore[arg-type]
    Case("types", "obs-thresholds-dict", observability(thresholds={"queue_depth": 4}), "thresholds", "Thresholds("),
    # An int (or a string) where a Duration belongs.
    Case("durations", "service-timeout-int", service(load_timeout=20), "load_timeout", "Duration.minutes(20)"),
    Case("durations", "service-timeout-str", service(load_timeout="20m"), "load_timeout", "Duration.minutes("),
    Case("durations", "service-timeout-float", service(load_timeout=1.5), "load_timeout", "Duration.minutes("),
    Case("durations", "service-timeout-none", service(load_timeout=None), "load_timeout", "Duration.minutes("),
    # An enum given as a string (or a number).
    Case(
        "enums",
        "base-endpoint-str",
        base(endpoint_access="private"),
        "base.endpoint_access",
        "EndpointAccessMode.PRIVATE",
    ),
    Case(
        "enums",
        "base-endpoint-name",
        base(endpoint_access="PUBLIC"),
        "base.endpoint_access",
        "EndpointAccessMode.PUBLIC",
    ),
    Case(
        "enums",
        "base-retention-int",
        base(control_plane_log_retention=90),
        "control_plane_log_retention",
        "RetentionDays.",
    ),
    Case("enums", "vpc-nat-str", vpc(nat_gateways="single"), "nat_gateways", "NatGateways.SINGLE"),
    Case("enums", "vpc-retention-int", vpc(flow_log_retention=30), "flow_log_retention", "RetentionDays."),
    Case("enums", "group-efa-layout-str", group(efa_layout="efaOnly"), "efa_layout", "EfaLayout."),
    Case(
        "enums",
        "lustre-deployment-str",
        classes(lustre_class(deployment="PERSISTENT_2")),
        "storage_classes.lustre[0].deployment",
        "use LustreDeployment.PERSISTENT_2",
    ),
    Case(
        "enums",
        "gp3-reclaim-str",
        classes(gp3=Gp3ClassProps(reclaim_policy="Retain")),
        "storage_classes.gp3.reclaim_policy",
        "use ReclaimPolicy.RETAIN",
    ),
    Case(
        "enums",
        "capacity-source-str",
        group(capacity=Capacity("capacityReservation", "cr-0123456789abcdef0")),
        "capacity.source",
        "CapacitySource.CAPACITY_RESERVATION",
    ),  # type: ignore[arg-type]
    Case("enums", "lustre-removal-str", lustre(removal_policy="retain"), "removal_policy", "RemovalPolicy.RETAIN"),
    Case("enums", "lustre-removal-bool", lustre(removal_policy=True), "removal_policy", "RemovalPolicy."),
    Case("enums", "pool-kind-str", pool(kind="nvidia"), "pools[0].kind", "PoolKind.NVIDIA"),
    Case("enums", "pool-kind-int", pool(kind=1), "pools[0].kind", "PoolKind."),
    Case("enums", "obs-backend-str", observability(backend="cloudwatch"), "backend", "Backend.CLOUDWATCH"),
    Case("enums", "obs-retention-int", observability(log_retention=30), "log_retention", "RetentionDays."),
    Case(
        "enums",
        "obs-retention-str",
        observability(log_retention="ONE_MONTH"),
        "log_retention",
        "RetentionDays.ONE_MONTH",
    ),
    # A string where a list belongs (it would be taken letter by letter).
    Case("lists", "vpc-azs-str", vpc(availability_zones="us-west-2a"), "availability_zones", LIST),
    Case(
        "lists",
        "lustre-classes-single",
        training(storage_classes=StorageClassesProps(lustre=lustre_class())),
        "storage_classes.lustre",
        LIST,
    ),
    Case(
        "lists",
        "base-admins-str",
        base(admin_principal_arns="arn:aws:iam::123456789012:role/Admin"),
        "admin_principal_arns",
        LIST,
    ),
    Case("lists", "base-cidrs-str", base(public_access_cidrs="203.0.113.0/24"), "public_access_cidrs", LIST),
    Case("lists", "base-cidrs-int-item", base(public_access_cidrs=[1]), "public_access_cidrs", "quote every item"),
    Case("lists", "pool-types-str", pool(instance_types="g6e.xlarge"), "pools[0].instance_types", LIST),
    Case("lists", "pool-capacity-str", pool(capacity_types="spot"), "pools[0].capacity_types", LIST),
    Case("lists", "pool-capacity-set", pool(capacity_types={"spot"}), "pools[0].capacity_types", EFA),
    Case("lists", "service-extra-args-str", service(extra_args="--enforce-eager"), "extra_args", LIST),
    Case("lists", "service-extra-args-int", service(extra_args=[1]), "extra_args", "quote every item"),
    Case("lists", "obs-emails-str", observability(alarm_emails="ops@example.com"), "alarm_emails", LIST),
    Case(
        "lists",
        "training-groups-one",
        training(node_groups=TrainingNodeGroupProps(name="p5")),
        "node_groups",
        "wrap it in a list",
    ),
    Case(
        "lists",
        "training-groups-dict",
        training(node_groups=[{"name": "p5"}]),
        "node_groups[0]",
        "TrainingNodeGroupProps(",
    ),
    Case(
        "lists",
        "inference-pools-one",
        inference(pools=NodePoolProps(name="gpu", kind=PoolKind.NVIDIA)),
        "pools",
        "wrap it in a list",
    ),
    Case("lists", "inference-services-str", inference(model_services="qwen"), "model_services", "wrap it in a list"),
    Case(
        "lists",
        "inference-services-dict",
        inference(model_services=[{"name": "qwen"}]),
        "model_services[0]",
        "ModelServiceProps(",
    ),
    # Kubernetes names, label keys and values.
    Case("kubernetes-names", "group-name-trailing-dash", group(name="p5-"), "node_groups[0].name", NAME),
    Case("kubernetes-names", "group-name-upper", group(name="P5"), "node_groups[0].name", NAME),
    Case("kubernetes-names", "lustre-class-upper", classes(lustre_class(name="FSx_Scratch")), ".name", NAME),
    Case("kubernetes-names", "gp3-class-space", classes(gp3=Gp3ClassProps(name="fast ssd")), "gp3.name", NAME),
    Case(
        "kubernetes-names",
        "storage-class-twice",
        classes(lustre_class(name="gp3"), gp3=Gp3ClassProps()),
        "storage_classes.name",
        "rename one of them",
    ),
    Case("kubernetes-names", "group-name-long", group(name="p" * 32), "node_groups[0].name", NAME),
    Case("kubernetes-names", "pool-name-trailing-dash", pool(name="gpu-"), "pools[0].name", NAME),
    Case("kubernetes-names", "pool-name-dot", pool(name="gpu.a"), "pools[0].name", NAME),
    Case("kubernetes-names", "service-name-trailing-dash", service(name="qwen-"), "model_services[0].name", NAME),
    Case("kubernetes-names", "service-name-long", service(name="q" * 41), "model_services[0].name", NAME),
    Case("kubernetes-names", "training-namespace-upper", training(namespace="Training"), "namespace", NAME),
    Case("kubernetes-names", "training-namespace-dash", training(namespace="jobs-"), "namespace", NAME),
    Case("kubernetes-names", "training-namespace-kube", training(namespace="kube-system"), "namespace", "use your own"),
    Case("kubernetes-names", "inference-namespace-long", inference(namespace="n" * 64), "namespace", NAME),
    Case(
        "kubernetes-names", "inference-namespace-kube", inference(namespace="kube-public"), "namespace", "use your own"
    ),
    Case("kubernetes-names", "lustre-claim-upper", lustre(claim_name="FSX"), "file_system.claim_name", NAME),
    Case("kubernetes-names", "lustre-claim-underscore", lustre(claim_name="fsx_data"), "file_system.claim_name", NAME),
    Case(
        "kubernetes-names",
        "claim-weights-dash",
        service(weights=ClaimWeights(claim_name="weights-")),
        "weights.claim_name",
        NAME,
    ),
    Case(
        "kubernetes-names",
        "hub-token-secret-upper",
        service(weights=HubWeights(model_id="Qwen/Qwen3-8B", token_secret="HF")),
        "weights.token_secret",
        NAME,
    ),
    Case(
        "kubernetes-names", "group-label-kubernetes", group(labels={"node.kubernetes.io/team": "a"}), "labels", PREFIX
    ),
    Case("kubernetes-names", "group-label-k8s", group(labels={"k8s.io/team": "a"}), "labels", PREFIX),
    Case("kubernetes-names", "group-label-karpenter", group(labels={"karpenter.sh/team": "a"}), "labels", PREFIX),
    Case("kubernetes-names", "group-label-eks", group(labels={"eks.amazonaws.com/team": "a"}), "labels", PREFIX),
    Case("kubernetes-names", "group-label-eks-ml", group(labels={"eks-ml.io/node-role": "x"}), "labels", PREFIX),
    Case(
        "kubernetes-names", "group-label-value-dash", group(labels={"example.com/team": "ml-"}), "labels", LABEL_VALUE
    ),
    Case(
        "kubernetes-names", "group-label-value-space", group(labels={"example.com/team": "m l"}), "labels", LABEL_VALUE
    ),
    Case(
        "kubernetes-names",
        "group-label-value-long",
        group(labels={"example.com/team": "a" * 64}),
        "labels",
        LABEL_VALUE,
    ),
    Case(
        "kubernetes-names",
        "group-label-key-long",
        group(labels={"example.com/" + "a" * 64: "x"}),
        "labels",
        "use a key such as",
    ),
    Case(
        "kubernetes-names",
        "group-label-prefix-bad",
        group(labels={"Example.com/team": "x"}),
        "labels",
        "use a key such as",
    ),
    Case(
        "kubernetes-names",
        "pool-label-karpenter",
        pool(labels={"karpenter.sh/capacity-type": "spot"}),
        "pools[0].labels",
        PREFIX,
    ),
    Case(
        "kubernetes-names",
        "pool-label-karpenter-aws",
        pool(labels={"karpenter.k8s.aws/instance-family": "g6"}),
        "pools[0].labels",
        PREFIX,
    ),
    Case(
        "kubernetes-names",
        "pool-label-hostname",
        pool(labels={"kubernetes.io/hostname": "a"}),
        "pools[0].labels",
        PREFIX,
    ),
    Case("kubernetes-names", "pool-label-key-bad", pool(labels={"team!": "a"}), "pools[0].labels", "use a key such as"),
    Case(
        "kubernetes-names",
        "pool-label-value-bad",
        pool(labels={"example.com/team": "-ml"}),
        "pools[0].labels",
        LABEL_VALUE,
    ),
    # Derived AWS names over their limits.
    Case(
        "aws-names",
        "karpenter-role-50",
        lambda: _long_inference("c" * 50),
        "base.cluster_name",
        "shorten the cluster name to 49",
    ),
    Case(
        "aws-names",
        "karpenter-role-64",
        lambda: _long_inference("c" * 64),
        "base.cluster_name",
        "shorten the cluster name to 49",
    ),
    Case(
        "aws-names",
        "karpenter-role-100",
        lambda: _long_inference("c" * 100),
        "base.cluster_name",
        "shorten the cluster name to 49",
    ),
    Case(
        "aws-names",
        "prometheus-rule-groups-namespace",
        observability("t" * 62, backend=Backend.PROMETHEUS),
        "cluster.cluster_name",
        "shorten it to at most 61 characters",
    ),
    Case("aws-names", "vpc-tag-long", vpc(discovery_tag_value="t" * 257), "discovery_tag_value", "shorten it"),
    # Construct ids derived from names that differ only in punctuation.
    Case(
        "construct-ids",
        "groups-digit-after-dash",
        training(node_groups=[TrainingNodeGroupProps(name="p5-1a"), TrainingNodeGroupProps(name="p51a")]),
        "node_groups.name",
        IDS,
    ),
    Case(
        "construct-ids",
        "groups-double-dash",
        training(node_groups=[TrainingNodeGroupProps(name="p5-a"), TrainingNodeGroupProps(name="p5--a")]),
        "node_groups.name",
        IDS,
    ),
    Case("construct-ids", "group-efa-security", group(name="efa-security"), "node_groups.name", IDS),
    Case("construct-ids", "services-qwen-3", services("qwen-3", "qwen3"), "model_services.name", IDS),
    Case("construct-ids", "services-double-dash", services("llama-8b", "llama--8b"), "model_services.name", IDS),
    # Unbounded sizes.
    Case(
        "sizes",
        "group-root-gp3-max",
        group(root_volume_gib=16385),
        "node_groups[0].root_volume_gib",
        "use a value of at most 16384",
    ),
    Case(
        "sizes",
        "group-root-negative",
        group(root_volume_gib=-5),
        "node_groups[0].root_volume_gib",
        "use the default 200 GiB",
    ),
    Case(
        "sizes",
        "group-desired-huge",
        group(desired_size=5000, max_size=5000),
        "node_groups[0].desired_size",
        "use a value of at most 1000",
    ),
    Case("sizes", "group-desired-negative", group(desired_size=-1), "node_groups[0].sizes", "fix the sizes"),
    Case(
        "sizes",
        "pool-root-negative",
        pool(root_volume_gib=-10),
        "pools[0].root_volume_gib",
        "use a value from 20 to 16384",
    ),
    Case(
        "sizes", "pool-root-zero", pool(root_volume_gib=0), "pools[0].root_volume_gib", "use a value from 20 to 16384"
    ),
    Case(
        "sizes",
        "pool-root-gp3-max",
        pool(root_volume_gib=20000),
        "pools[0].root_volume_gib",
        "use a value from 20 to 16384",
    ),
    Case(
        "sizes",
        "system-root-gp3-max",
        base(system_nodes=SystemNodesProps(root_volume_gib=17000)),
        "system_nodes.root_volume_gib",
        "at most 16384",
    ),
    Case(
        "sizes",
        "system-root-negative",
        base(system_nodes=SystemNodesProps(root_volume_gib=-1)),
        "system_nodes.root_volume_gib",
        "use 50 GiB",
    ),
    Case(
        "sizes",
        "system-max-huge",
        base(system_nodes=SystemNodesProps(max_size=2000)),
        "system_nodes.max_size",
        "at most 1000",
    ),
    Case("sizes", "lustre-negative", lustre(storage_gib=-2400), "file_system.storage_gib", "use 1200 GiB"),
    Case("sizes", "service-params-negative", service(parameters_billions=-1.0), "model_size", "give the model's size"),
    Case("sizes", "service-params-nan", service(parameters_billions=float("nan")), "parameters_billions", NUMBER),
    # Instance types, CIDRs, AZs.
    Case(
        "network-and-types",
        "system-size-bogus",
        base(system_nodes=SystemNodesProps(instance_type=ec2.InstanceType("m7g.huge"))),
        "system_nodes.instance_type",
        "fix the size",
    ),
    Case(
        "network-and-types",
        "system-size-missing",
        base(system_nodes=SystemNodesProps(instance_type=ec2.InstanceType("m7g.xxlarge"))),
        "system_nodes.instance_type",
        "fix the size",
    ),
    Case("network-and-types", "vpc-cidr-public", vpc(cidr="8.0.0.0/16"), "cidr", "use a block inside 10.0.0.0/8"),
    Case("network-and-types", "vpc-cidr-benchmark", vpc(cidr="198.18.0.0/16"), "cidr", "use a block inside 10.0.0.0/8"),
    Case("network-and-types", "vpc-cidr-loopback", vpc(cidr="127.0.0.0/16"), "cidr", "use a block inside 10.0.0.0/8"),
    Case("network-and-types", "vpc-cidr-cgnat", vpc(cidr="100.64.0.0/16"), "cidr", "use a block inside 10.0.0.0/8"),
    Case(
        "network-and-types",
        "vpc-az-z",
        vpc(availability_zones=("us-west-2a", "us-west-2z")),
        "availability_zones",
        "pick one of us-west-2a",
    ),
    Case(
        "network-and-types",
        "vpc-az-e-in-us-west-2",
        vpc(availability_zones=("us-west-2a", "us-west-2e")),
        "availability_zones",
        "pick one of",
    ),
    Case(
        "network-and-types",
        "vpc-without-private-subnets",
        lambda: _public_only_training(),
        "base.vpc",
        "add PRIVATE_WITH_EGRESS subnets",
    ),
    Case("network-and-types", "vpc-private-in-one-az", lambda: _one_az_training(), "base.vpc", "two or more AZs"),
    # vLLM flags eks-ml sets, overridden through extra_args.
    Case(
        "extra-args",
        "tp-long",
        service(extra_args=["--tensor-parallel-size", "4"]),
        "extra_args",
        "set the prop tensor_parallel",
    ),
    Case(
        "extra-args",
        "tp-equals",
        service(extra_args=["--tensor-parallel-size=4"]),
        "extra_args",
        "set the prop tensor_parallel",
    ),
    Case("extra-args", "tp-short", service(extra_args=["-tp", "4"]), "extra_args", "set the prop tensor_parallel"),
    Case(
        "extra-args",
        "tp-underscore",
        service(extra_args=["--tensor_parallel_size=4"]),
        "extra_args",
        "set the prop tensor_parallel",
    ),
    Case(
        "extra-args",
        "max-model-len",
        service(extra_args=["--max-model-len", "4096"]),
        "extra_args",
        "set the prop max_model_len",
    ),
    Case("extra-args", "port", service(extra_args=["--port", "9000"]), "extra_args", "remove --port"),
    Case("extra-args", "model", service(extra_args=["--model", "other/model"]), "extra_args", "remove --model"),
    Case("extra-args", "served-name", service(extra_args=["--served-model-name=x"]), "extra_args", "set the prop name"),
    # cdk.json context keys.
    Case(
        "config",
        "count-double-dash",
        config(trainingNodeCount="--2"),
        "eks-ml:trainingNodeCount",
        "write a number such as 2",
    ),
    Case(
        "config",
        "count-float-str",
        config(trainingNodeCount="2.0"),
        "eks-ml:trainingNodeCount",
        "write a number such as 2",
    ),
    Case(
        "config", "count-float", config(trainingNodeCount=2.5), "eks-ml:trainingNodeCount", "write a number such as 2"
    ),
    Case(
        "config", "count-bool", config(trainingNodeCount=True), "eks-ml:trainingNodeCount", "write a number such as 2"
    ),
    Case(
        "config",
        "max-restarts-negative",
        config(trainingMaxRestarts=-1),
        "eks-ml:trainingMaxRestarts",
        "use a value from 0 to 100",
    ),
    Case(
        "config",
        "max-restarts-word",
        config(trainingMaxRestarts="three"),
        "eks-ml:trainingMaxRestarts",
        "write a number such as 2",
    ),
    Case(
        "config", "count-plus", config(trainingNodeCount="+2"), "eks-ml:trainingNodeCount", "write a number such as 2"
    ),
    Case("config", "count-huge", config(trainingNodeCount=5000), "eks-ml:trainingNodeCount", "at most 1000"),
    Case("config", "count-negative", config(trainingNodeCount=-1), "eks-ml:trainingNodeCount", "fix the sizes"),
    Case("config", "auto-mode-yes", config(autoMode="yes"), "eks-ml:autoMode", "write true or false"),
    Case("config", "auto-mode-int", config(autoMode=1), "eks-ml:autoMode", "write true or false"),
    Case("config", "azs-int", config(availabilityZones=3), "eks-ml:availabilityZones", '["a", "b"]'),
    Case(
        "config", "azs-bad-json", config(availabilityZones='["us-west-2a"'), "eks-ml:availabilityZones", "fix the JSON"
    ),
    Case("config", "azs-list-of-ints", config(availabilityZones=[1, 2]), "eks-ml:availabilityZones", '["a", "b"]'),
    Case(
        "config", "azs-z", config(availabilityZones="us-west-2a,us-west-2z"), "eks-ml:availabilityZones", "pick one of"
    ),
    Case("config", "name-trailing-dash", config(name="eks-ml-"), "eks-ml:name", "use a short name"),
    Case("config", "name-int", config(name=5), "eks-ml:name", "quote the value"),
    Case("config", "region-int", config(region=2), "eks-ml:region", "quote the value"),
    Case("config", "nat-bad", config(natGateways="two"), "eks-ml:natGateways", "use one of perAz, single"),
    Case("config", "endpoint-upper", config(endpointAccess="PRIVATE"), "eks-ml:endpointAccess", "use one of"),
    Case("config", "backend-bad", config(observabilityBackend="grafana"), "eks-ml:observabilityBackend", "use one of"),
    Case("config", "capacity-bad", config(trainingCapacity="spot"), "eks-ml:trainingCapacity", "use one of"),
    Case("config", "cidr-public", config(vpcCidr="11.0.0.0/16"), "eks-ml:vpcCidr", "use a block inside 10.0.0.0/8"),
    Case("config", "cidr-int", config(vpcCidr=10), "eks-ml:vpcCidr", "quote the value"),
    Case(
        "config",
        "training-az-other",
        config(trainingAvailabilityZone="us-west-2d"),
        "eks-ml:trainingAvailabilityZone",
        "pick an AZ of the VPC",
    ),
    Case(
        "config", "system-type-size", config(systemInstanceType="m7g.huge"), "eks-ml:systemInstanceType", "fix the size"
    ),
    Case(
        "config",
        "system-type-x86",
        config(systemInstanceType="m7i.large"),
        "eks-ml:systemInstanceType",
        "pick an arm64 type",
    ),
    Case(
        "config",
        "unknown-key",
        config(trainingNodeCont=2),
        "eks-ml:trainingNodeCont",
        "did you mean eks-ml:trainingNodeCount",
    ),
    Case("config", "emails-str-bad", config(alarmEmails="not-an-address"), "eks-ml:alarmEmails", "fix the address"),
    Case(
        "config",
        "reservation-bad",
        config(trainingCapacity="capacityReservation", trainingReservationId="cr-1"),
        "eks-ml:trainingReservationId",
        "copy the id",
    ),
    Case("config", "account-short", config(account="1234"), "eks-ml:account", "fix the id"),
    # The CLI (eks-ml plan) with -c overrides and cdk.json files.
    Case(
        "cli",
        "count-double-dash",
        cli(*ctx("trainingNodeCount", "--2"), real=True),
        "eks-ml:trainingNodeCount",
        "write a number such as 2",
    ),
    Case(
        "cli",
        "count-word",
        cli(*ctx("trainingNodeCount", "two")),
        "eks-ml:trainingNodeCount",
        "write a number such as 2",
    ),
    Case("cli", "auto-mode-word", cli(*ctx("autoMode", "on")), "eks-ml:autoMode", "write true or false"),
    Case(
        "cli",
        "azs-z",
        cli(*ctx("availabilityZones", "us-west-2a,us-west-2z")),
        "eks-ml:availabilityZones",
        "pick one of",
    ),
    Case("cli", "cidr-public", cli(*ctx("vpcCidr", "8.8.0.0/16")), "eks-ml:vpcCidr", "use a block inside"),
    Case("cli", "name-trailing-dash", cli(*ctx("name", "team-")), "eks-ml:name", "use a short name"),
    Case("cli", "bad-json-file", cli(cdk_json="{not json"), "--cdk-json", "fix the JSON at line 1"),
    Case("cli", "context-not-object", cli(cdk_json='{"context": []}'), "--cdk-json", 'write {"context": {...}}'),
    Case("cli", "json-list", cli(cdk_json="[]"), "--cdk-json", 'write {"context": {...}}'),
]


def _long_inference(cluster_name: str) -> object:
    stack = _stack()
    props = InferenceClusterProps(base=BaseClusterProps(vpc=_vpc(stack), cluster_name=cluster_name))
    return InferenceCluster(stack, "Inference", props)


def _public_only_training() -> object:
    stack = _stack()
    public = ec2.Vpc(
        stack,
        "Vpc",
        max_azs=2,
        subnet_configuration=[ec2.SubnetConfiguration(name="p", subnet_type=ec2.SubnetType.PUBLIC)],
    )
    props = TrainingClusterProps(base=BaseClusterProps(vpc=public, cluster_name="t"), file_system=None)
    return TrainingCluster(stack, "Training", props)


def _one_az_training() -> object:
    stack = _stack()
    one_az = ec2.Vpc(stack, "Vpc", max_azs=1)
    props = TrainingClusterProps(base=BaseClusterProps(vpc=one_az, cluster_name="t"), file_system=None)
    return TrainingCluster(stack, "Training", props)


def outcome(case: Case) -> tuple[str, str]:
    """What the case does: validation, unclear (a ValidationError without the field or fix), raw or accepted."""
    try:
        case.build()
    except (ValidationError, CliFailed) as error:
        message = str(error)
        return ("validation" if case.field in message and case.fix in message else "unclear"), message
    except Exception as error:  # noqa: BLE001  (a raw error is exactly what the suite counts)
        return "raw", f"{type(error).__name__}: {error}"
    return "accepted", ""


OUTCOMES: dict[str, Counter[str]] = {}  # category -> outcome counts of the cases run in this session


def test_the_suite_is_large_and_covers_every_entry_point() -> None:
    names = [(c.category, c.name) for c in CASES]
    assert len(set(names)) == len(names)
    assert len(CASES) >= 150
    by_category = Counter(c.category for c in CASES)
    assert by_category == {
        "types": 98,
        "durations": 4,
        "enums": 16,
        "lists": 16,
        "kubernetes-names": 34,
        "aws-names": 5,
        "construct-ids": 5,
        "sizes": 20,
        "network-and-types": 10,
        "extra-args": 8,
        "config": 31,
        "cli": 9,
    }


@pytest.mark.parametrize("case", CASES, ids=[f"{c.category}:{c.name}" for c in CASES])
def test_bad_input_is_a_validation_error_naming_the_field_and_the_fix(case: Case) -> None:
    result, message = outcome(case)
    OUTCOMES.setdefault(case.category, Counter())[result] += 1
    assert result == "validation", f"{result}: {message}"


@pytest.fixture(scope="module", autouse=True)
def print_summary() -> Any:
    """The counts by category and outcome, printed after the module (visible with -s)."""
    yield
    for category, counts in OUTCOMES.items():
        print(f"\nbad input {category}: {sum(counts.values())} cases, {dict(counts)}", end="")
    print()


def summary() -> dict[str, Counter[str]]:
    by_category: dict[str, Counter[str]] = {}
    for case in CASES:
        by_category.setdefault(case.category, Counter())[outcome(case)[0]] += 1
    return by_category


if __name__ == "__main__":
    totals: Counter[str] = Counter()
    for category, counts in summary().items():
        totals.update(counts)
        print(f"{category:20} {sum(counts.values()):4}  {dict(counts)}")
    print(f"{'total':20} {sum(totals.values()):4}  {dict(totals)}")
    print(json.dumps(dict(totals)))
