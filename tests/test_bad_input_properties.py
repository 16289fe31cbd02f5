"""Property-based tests (hypothesis) of the input gate.

- Random valid configurations (a strategy over the ``eks-ml:`` context keys) build the whole default app:
  construction proves every cluster model (``ClusterModel.prove()``), and the test proves them again.
- Random invalid configurations (one key of a valid one replaced by a wrong type or a wrong value) and
  random props of a training node group raise nothing but ValidationError.

Run time is bounded by ``max_examples`` (sized so the module takes well under 60 s on a 2-core machine);
building the app is construction only (no template is written).
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable
from typing import Any

import eks_ml  # noqa: F401  (selects the bundled Node.js before aws_cdk starts jsii)

# isort: split
import contextlib

import pytest
from aws_cdk import App, Environment, Stack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eks_ml import BaseClusterProps, MlVpc, MlVpcProps, ValidationError, load_app_config
from eks_ml.cluster.versions import RELEASES
from eks_ml.inference import InferenceCluster, InferenceClusterProps, NodePoolProps, PoolKind
from eks_ml.inference.model_service import HubWeights, ModelServiceProps
from eks_ml.training import TrainingCluster, TrainingClusterProps, TrainingNodeGroupProps, training_instance_types
from stacks import build_default_app

from .support.synth import CDK_CONTEXT

VALID_EXAMPLES = 40
INVALID_CONFIG_EXAMPLES = 300
INVALID_PROPS_EXAMPLES = 80
RUNS: dict[str, tuple[int, float]] = {}  # test -> (examples run, seconds), printed at the end of the module

# Regions whose AZ letters eks-ml knows exactly (eks_ml/network/rules.py).
REGIONS = {"us-west-2": "abcd", "us-east-1": "abcdef", "us-east-2": "abc"}
# Versions whose kubectl layer package is installed (the others are refused at build, by design).
VERSIONS = [v for v in RELEASES if importlib.util.find_spec(f"aws_cdk.lambda_layer_kubectl_v{v.split('.')[1]}")]
ARM_SYSTEM_TYPES = ("m7g.large", "m7g.xlarge", "m6g.large", "c7g.xlarge", "r7g.large", "t4g.large")


@st.composite
def valid_contexts(draw: st.DrawFn) -> dict[str, Any]:
    region = draw(st.sampled_from(sorted(REGIONS)))
    letters = draw(st.lists(st.sampled_from(REGIONS[region]), min_size=2, max_size=3, unique=True))
    zones = [region + letter for letter in letters]
    backend = draw(st.sampled_from(["cloudwatch", "prometheus"]))
    endpoint = draw(st.sampled_from(["publicAndPrivate", "private"] + (["public"] if backend == "cloudwatch" else [])))
    context: dict[str, Any] = {
        "name": draw(st.from_regex(r"\A[a-z]([a-z0-9-]{0,10}[a-z0-9])?\Z")),
        "region": region,
        "availabilityZones": draw(st.sampled_from([zones, ",".join(zones)])),  # cdk.json list or -c string
        "vpcCidr": draw(
            st.sampled_from(["10.0.0.0/16", "10.42.0.0/16", "172.16.0.0/16", "172.31.0.0/16", "192.168.0.0/16"])
        ),
        "natGateways": draw(st.sampled_from(["perAz", "single"])),
        "kubernetesVersion": draw(st.sampled_from(VERSIONS)),
        "endpointAccess": endpoint,
        "autoMode": draw(st.sampled_from([True, False, "true", "false"])),
        "systemInstanceType": draw(st.sampled_from(ARM_SYSTEM_TYPES)),
        "trainingInstanceType": draw(st.sampled_from(training_instance_types())),
        "trainingNodeCount": draw(st.one_of(st.integers(0, 4), st.integers(0, 4).map(str))),
        "trainingAvailabilityZone": draw(st.sampled_from(zones)),
        "observabilityBackend": backend,
        "alarmEmails": draw(st.lists(st.from_regex(r"\A[a-z]{1,8}@example\.com\Z"), max_size=2, unique=True)),
    }
    if endpoint == "publicAndPrivate" and draw(st.booleans()):
        context["publicAccessCidrs"] = draw(st.sampled_from([["203.0.113.0/24"], ["198.51.100.0/24", "192.0.2.8/29"]]))
    if draw(st.booleans()):
        context["trainingCapacity"] = "capacityReservation"
        context["trainingReservationId"] = "cr-" + draw(st.from_regex(r"\A[0-9a-f]{17}\Z"))
    return {f"eks-ml:{key}": value for key, value in context.items()}


# Values of every kind: wrong types for most keys, and wrong values of the right type for the rest.
junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.lists(st.one_of(st.integers(), st.text(max_size=5)), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
CONFIG_KEYS = [
    "name", "region", "account", "availabilityZones", "vpcCidr", "natGateways", "kubernetesVersion",
    "endpointAccess", "publicAccessCidrs", "adminPrincipalArns", "autoMode", "systemInstanceType",
    "trainingInstanceType", "trainingNodeCount", "trainingAvailabilityZone", "trainingCapacity",
    "trainingReservationId", "alarmEmails", "observabilityBackend",
]  # fmt: skip


def _timed(name: str, examples: list[int], started: float) -> None:
    RUNS[name] = (examples[0], time.monotonic() - started)


def build_app(context: dict[str, Any]) -> list[Any]:
    config = load_app_config(context)
    app = App(context=context, analytics_reporting=False)
    stacks = build_default_app(app, config, bootstrap_version_rule=False)
    return [stacks.training.training.model, stacks.inference.inference.model]


def test_random_valid_configurations_build_and_prove_every_cluster_model() -> None:
    examples, started = [0], time.monotonic()

    @settings(max_examples=VALID_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(valid_contexts())
    def check(context: dict[str, Any]) -> None:
        examples[0] += 1
        for model in build_app({**CDK_CONTEXT, **context}):
            assert model.prove(), model.name  # every workload lands on some node source

    check()
    _timed("valid configurations", examples, started)


def test_random_invalid_configurations_raise_only_validation_errors() -> None:
    examples, started, refused = [0], time.monotonic(), [0]

    @settings(max_examples=INVALID_CONFIG_EXAMPLES, deadline=None)
    @given(valid_contexts(), st.sampled_from(CONFIG_KEYS), junk)
    def check(context: dict[str, Any], key: str, value: Any) -> None:
        examples[0] += 1
        try:
            build_app({**CDK_CONTEXT, **context, f"eks-ml:{key}": value})
        except ValidationError as error:
            refused[0] += 1
            assert "eks-ml:" in str(error), str(error)  # names a context key (the one changed, or one it breaks)
        # Anything else (TypeError, KeyError, a jsii RuntimeError...) fails the test by propagating.

    check()
    _timed("invalid configurations", examples, started)
    assert refused[0] > examples[0] // 2  # most junk values are refused; a few are valid by chance ("true")


def _training(group: TrainingNodeGroupProps) -> None:
    app = App(context=dict(CDK_CONTEXT), analytics_reporting=False)
    stack = Stack(app, "Lib", env=Environment(region="us-west-2"))
    network = MlVpc(stack, "Network", MlVpcProps(availability_zones=("us-west-2a", "us-west-2b")))
    props = TrainingClusterProps(
        base=BaseClusterProps(vpc=network.vpc, cluster_name="train"), node_groups=[group], file_system=None
    )
    TrainingCluster(stack, "Training", props)


GROUP_FIELDS: dict[str, Callable[[], st.SearchStrategy[Any]]] = {
    "name": lambda: st.one_of(junk, st.from_regex(r"\A[a-zA-Z0-9.\-_]{0,40}\Z")),
    "instance_type": lambda: st.one_of(junk, st.sampled_from(["p5.48xlarge", "g6e.xlarge", "p5.huge"])),
    "desired_size": lambda: junk,
    "min_size": lambda: junk,
    "max_size": lambda: junk,
    "availability_zone": lambda: st.one_of(junk, st.sampled_from(["us-west-2a", "us-west-2c", "us-west-2z"])),
    "placement_group": lambda: junk,
    "root_volume_gib": lambda: junk,
    "labels": lambda: st.one_of(junk, st.dictionaries(st.text(max_size=12), st.text(max_size=12), max_size=2)),
}


def test_random_training_group_props_raise_only_validation_errors() -> None:
    examples, started = [0], time.monotonic()

    @settings(max_examples=INVALID_PROPS_EXAMPLES, deadline=None)
    @given(st.fixed_dictionaries({}, optional={name: make() for name, make in GROUP_FIELDS.items()}))
    def check(fields: dict[str, Any]) -> None:
        examples[0] += 1
        with contextlib.suppress(ValidationError):
            _training(TrainingNodeGroupProps(**{"name": "p5", **fields}))

    check()
    _timed("invalid training group props", examples, started)


def _inference(service: ModelServiceProps, pool: NodePoolProps) -> None:
    app = App(context=dict(CDK_CONTEXT), analytics_reporting=False)
    stack = Stack(app, "Lib", env=Environment(region="us-west-2"))
    network = MlVpc(stack, "Network", MlVpcProps(availability_zones=("us-west-2a", "us-west-2b")))
    props = InferenceClusterProps(
        base=BaseClusterProps(vpc=network.vpc, cluster_name="serve"), pools=[pool], model_services=[service]
    )
    InferenceCluster(stack, "Inference", props)


SERVICE_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "name": st.one_of(junk, st.from_regex(r"\A[a-zA-Z0-9.\-_]{0,45}\Z")),
    "parameters_billions": junk,
    "bytes_per_parameter": st.one_of(junk, st.sampled_from([0.5, 1.0, 2.0, 3.0])),
    "tensor_parallel": junk,
    "max_model_len": junk,
    "min_replicas": junk,
    "max_replicas": junk,
    "load_timeout": junk,
    "public": junk,
    "extra_args": st.one_of(junk, st.lists(st.sampled_from(["--enforce-eager", "-tp", "--port=1", "4"]), max_size=3)),
}
POOL_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "name": st.one_of(junk, st.from_regex(r"\A[a-z0-9.\-]{0,35}\Z")),
    "kind": st.one_of(junk, st.sampled_from(list(PoolKind))),
    "capacity_types": junk,
    "accelerator_limit": junk,
    "root_volume_gib": junk,
    "labels": st.one_of(junk, st.dictionaries(st.text(max_size=20), st.text(max_size=12), max_size=2)),
}


def test_random_model_service_and_pool_props_raise_only_validation_errors() -> None:
    examples, started = [0], time.monotonic()

    @settings(max_examples=INVALID_PROPS_EXAMPLES, deadline=None)
    @given(st.fixed_dictionaries({}, optional=SERVICE_FIELDS), st.fixed_dictionaries({}, optional=POOL_FIELDS))
    def check(service: dict[str, Any], pool: dict[str, Any]) -> None:
        examples[0] += 1
        defaults = {"name": "qwen", "instance_type": "g6e.xlarge", "weights": HubWeights(model_id="Qwen/Qwen3-8B")}
        with contextlib.suppress(ValidationError):
            _inference(
                ModelServiceProps(**{**defaults, "parameters_billions": 8.2, **service}),
                NodePoolProps(**{"name": "gpu", "kind": PoolKind.NVIDIA, **pool}),
            )

    check()
    _timed("invalid model service and pool props", examples, started)


@pytest.fixture(scope="module", autouse=True)
def report_runs() -> Any:
    yield
    for name, (count, seconds) in RUNS.items():
        print(f"\nhypothesis {name}: {count} examples in {seconds:.1f} s")
