"""Typed configuration of the default app, read from CDK context (cdk.json, or ``-c key=value``).

Every key is ``eks-ml:<name>``. Values from cdk.json keep their JSON types; values given with ``-c``
arrive as strings, so lists accept JSON (``'["a","b"]'``) or commas (``a,b``) and booleans accept
``true``/``false``. Every problem in the configuration is reported at once as a ValidationError.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from aws_cdk import Duration

from .cluster import DEFAULT_KUBERNETES_VERSION, EndpointAccessMode, release_for
from .cluster import rules as cluster_rules
from .cluster.system_nodes import check_system_instance_type, parse_instance_type
from .errors import Problem, Problems
from .inference.model_service import HubWeights, ModelServiceProps
from .k8s.training_jobs import DEFAULT_MAX_RESTARTS
from .network import NatGateways
from .network import rules as network_rules
from .observability.addon import check_alarm_emails
from .observability.backend import Backend
from .training import Capacity, CapacitySource, FileSystemPin, LustreProps, TrainingNodeGroupProps
from .training.cluster import MAX_RESTARTS_LIMIT

PREFIX = "eks-ml:"
_NAME = re.compile(r"^[a-z]([a-z0-9-]{0,29}[a-z0-9])?$")  # used in stack and cluster names and label values
_REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
_ACCOUNT = re.compile(r"^\d{12}$")
_INTEGER = re.compile(r"^-?\d+$")  # int() would also take "+2", "2_0" and " 2 "; "--2" would raise


# The default app's sample model services: the same open-weight model (Apache-2.0, no token needed) on an
# NVIDIA L40S and on one Inferentia2 device, each autoscaled on its own queue depth.
SAMPLE_MODEL_SERVICES: tuple[ModelServiceProps, ...] = (
    ModelServiceProps(
        name="qwen3-8b",
        instance_type="g6e.xlarge",
        weights=HubWeights(model_id="Qwen/Qwen3-8B"),
        parameters_billions=8.2,
    ),
    ModelServiceProps(
        name="qwen3-8b-inf2",
        instance_type="inf2.8xlarge",
        weights=HubWeights(model_id="Qwen/Qwen3-8B"),
        parameters_billions=8.2,
        tensor_parallel=2,  # both NeuronCores of the one Inferentia2 device
        load_timeout=Duration.minutes(45),  # the first start compiles the model for Neuron
    ),
)


@dataclass(frozen=True, kw_only=True)
class AppConfig:
    """The default app's settings; the README documents each key."""

    name: str = "eks-ml"
    region: str = "us-west-2"
    account: str | None = None
    availability_zones: tuple[str, ...] = ("us-west-2a", "us-west-2b", "us-west-2c")
    vpc_cidr: str = "10.0.0.0/16"
    nat_gateways: NatGateways = NatGateways.PER_AZ
    kubernetes_version: str = DEFAULT_KUBERNETES_VERSION
    endpoint_access: EndpointAccessMode = EndpointAccessMode.PUBLIC_AND_PRIVATE
    public_access_cidrs: tuple[str, ...] | None = None
    admin_principal_arns: tuple[str, ...] = ()
    auto_mode: bool = False
    system_instance_type: str = "m7g.large"
    training_instance_type: str = "p5.48xlarge"
    training_node_count: int = 2
    training_availability_zone: str | None = None
    training_capacity: CapacitySource = CapacitySource.ON_DEMAND
    training_reservation_id: str | None = None
    # A Capacity Block's window (UTC) and upfront fee: the block's lifecycle and its price in the plan.
    training_capacity_block_start: str | None = None
    training_capacity_block_end: str | None = None
    training_capacity_block_upfront_usd: float | None = None
    training_capacity_block_instance_count: int | None = None
    alarm_emails: tuple[str, ...] = ()
    observability_backend: Backend = Backend.CLOUDWATCH
    training_file_system_pin: FileSystemPin | None = None
    allow_file_system_replacement: bool = False
    training_max_restarts: int = DEFAULT_MAX_RESTARTS

    def training_file_system(self) -> LustreProps:
        """The training file system, guarded by its pin (see the README's "State and redeploys")."""
        return LustreProps(pin=self.training_file_system_pin, allow_replacement=self.allow_file_system_replacement)

    def model_services(self) -> tuple[ModelServiceProps, ...]:
        """The default app's model services on the inference cluster."""
        return SAMPLE_MODEL_SERVICES

    def training_node_group(self) -> TrainingNodeGroupProps:
        """The default app's one training node group, named after its instance family."""
        spec_family = self.training_instance_type.split(".", 1)[0]
        return TrainingNodeGroupProps(
            name=spec_family if _NAME.match(spec_family) else "training",
            instance_type=self.training_instance_type,
            desired_size=self.training_node_count,
            max_size=max(self.training_node_count, 1),
            availability_zone=self.training_availability_zone or self.availability_zones[0],
            capacity=self._training_capacity(),
        )

    def _training_capacity(self) -> Capacity:
        window = (
            self.training_capacity_block_start,
            self.training_capacity_block_end,
            self.training_capacity_block_upfront_usd,
            self.training_capacity_block_instance_count,
        )
        if self.training_capacity is CapacitySource.CAPACITY_BLOCK and any(v is not None for v in window):
            # A missing reservation id is reported by the group's check, naming eks-ml:trainingReservationId.
            return Capacity.capacity_block(
                self.training_reservation_id,  # type: ignore[arg-type]
                start=self.training_capacity_block_start,
                end=self.training_capacity_block_end,
                upfront_usd=self.training_capacity_block_upfront_usd,
                instance_count=self.training_capacity_block_instance_count,
            )
        return Capacity(self.training_capacity, self.training_reservation_id)

    @property
    def training_cluster_name(self) -> str:
        return f"{self.name}-training"

    @property
    def inference_cluster_name(self) -> str:
        return f"{self.name}-inference"


class _Invalid(Exception):
    def __init__(self, allowed: str, fix: str) -> None:
        super().__init__(allowed)
        self.allowed = allowed
        self.fix = fix


def _string(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise _Invalid("a non-empty string", "quote the value")
    return value


def _optional_string(value: Any) -> str | None:
    return None if value is None else _string(value)


def _string_list(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise _Invalid("a JSON list of strings", f"fix the JSON ({exc.msg})") from None
        else:
            value = [part.strip() for part in text.split(",") if part.strip()]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _Invalid("a list of strings", 'write a JSON list such as ["a", "b"] or a,b')
    return tuple(value)


def _optional_string_list(value: Any) -> tuple[str, ...] | None:
    return None if value is None else _string_list(value)


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise _Invalid("true or false", "write true or false")


_PIN_KEYS = {"availabilityZone": str, "efaEnabled": bool, "storageGib": int, "deploymentType": str}
_PIN_EXAMPLE = '{"availabilityZone": "us-west-2a", "efaEnabled": false, "storageGib": 4800}'


def _file_system_pin(value: Any) -> FileSystemPin | None:
    """A JSON object (in cdk.json, or as a -c string) with the FileSystemPin's settings."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise _Invalid("a JSON object", f"fix the JSON ({exc.msg}), e.g. {_PIN_EXAMPLE}") from None
    required = set(_PIN_KEYS) - {"deploymentType"}
    if (
        not isinstance(value, dict)
        or not required <= set(value) <= set(_PIN_KEYS)
        or any(type(value[key]) is not kind for key, kind in _PIN_KEYS.items() if key in value)
    ):
        raise _Invalid(
            "an object with availabilityZone (string), efaEnabled (true/false), storageGib (number) and "
            "optionally deploymentType (string)",
            f"copy the stack output FileSystemPin, e.g. {_PIN_EXAMPLE}",
        )
    return FileSystemPin(
        availability_zone=value["availabilityZone"],
        efa_enabled=value["efaEnabled"],
        storage_gib=value["storageGib"],
        **({"deployment_type": value["deploymentType"]} if "deploymentType" in value else {}),
    )


def _integer(value: Any) -> int:
    if isinstance(value, bool):
        raise _Invalid("a whole number", "write a number such as 2")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _INTEGER.match(value.strip()):
        return int(value)
    raise _Invalid("a whole number", "write a number such as 2")


def _optional_integer(value: Any) -> int | None:
    return None if value is None else _integer(value)


def _optional_number(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise _Invalid("a number", "write a number such as 2500.0")


def _enum(enum_type: type[Enum]) -> Callable[[Any], Any]:
    choices = [member.value for member in enum_type]

    def parse(value: Any) -> Any:
        for member in enum_type:
            if member.value == value:
                return member
        raise _Invalid(f"one of {', '.join(choices)}", f"use one of {', '.join(choices)}")

    return parse


# Context key -> (AppConfig field, parser).
_KEYS: Mapping[str, tuple[str, Callable[[Any], Any]]] = {
    "name": ("name", _string),
    "region": ("region", _string),
    "account": ("account", _optional_string),
    "availabilityZones": ("availability_zones", _string_list),
    "vpcCidr": ("vpc_cidr", _string),
    "natGateways": ("nat_gateways", _enum(NatGateways)),
    "kubernetesVersion": ("kubernetes_version", _string),
    "endpointAccess": ("endpoint_access", _enum(EndpointAccessMode)),
    "publicAccessCidrs": ("public_access_cidrs", _optional_string_list),
    "adminPrincipalArns": ("admin_principal_arns", _string_list),
    "autoMode": ("auto_mode", _boolean),
    "systemInstanceType": ("system_instance_type", _string),
    "trainingInstanceType": ("training_instance_type", _string),
    "trainingNodeCount": ("training_node_count", _integer),
    "trainingAvailabilityZone": ("training_availability_zone", _optional_string),
    "trainingCapacity": ("training_capacity", _enum(CapacitySource)),
    "trainingReservationId": ("training_reservation_id", _optional_string),
    "trainingCapacityBlockStart": ("training_capacity_block_start", _optional_string),
    "trainingCapacityBlockEnd": ("training_capacity_block_end", _optional_string),
    "trainingCapacityBlockUpfrontUsd": ("training_capacity_block_upfront_usd", _optional_number),
    "trainingCapacityBlockInstanceCount": ("training_capacity_block_instance_count", _optional_integer),
    "alarmEmails": ("alarm_emails", _string_list),
    "observabilityBackend": ("observability_backend", _enum(Backend)),
    "trainingFileSystemPin": ("training_file_system_pin", _file_system_pin),
    "allowFileSystemReplacement": ("allow_file_system_replacement", _boolean),
    "trainingMaxRestarts": ("training_max_restarts", _integer),
}
# Fields of the training node group's own checks -> the context keys that set them.
_TRAINING_FIELDS = {
    "training.instance_type": "trainingInstanceType",
    "training.sizes": "trainingNodeCount",
    "training.desired_size": "trainingNodeCount",
    "training.max_size": "trainingNodeCount",
    "training.availability_zone": "trainingAvailabilityZone",
    "training.capacity.reservation_id": "trainingReservationId",
    "training.capacity.window.start": "trainingCapacityBlockStart",
    "training.capacity.window.end": "trainingCapacityBlockEnd",
    "training.capacity.window.upfront_usd": "trainingCapacityBlockUpfrontUsd",
    "training.capacity.window.instance_count": "trainingCapacityBlockInstanceCount",
}


def context_key(attr: str) -> str:
    """The context key of an AppConfig field, for messages: eks-ml:availabilityZones."""
    return next(PREFIX + key for key, (name, _) in _KEYS.items() if name == attr)


def load_app_config(context: Mapping[str, Any]) -> AppConfig:
    """Parse and validate the ``eks-ml:`` keys of a CDK context mapping."""
    problems = Problems()
    values: dict[str, Any] = {}
    for full_key, raw in sorted(context.items()):
        if not full_key.startswith(PREFIX):
            continue
        key = full_key[len(PREFIX) :]
        if key not in _KEYS:
            near = difflib.get_close_matches(key, list(_KEYS), n=1)
            fix = f"did you mean {PREFIX}{near[0]}?" if near else "remove it"
            problems.add(full_key, raw, f"one of the keys in the README ({', '.join(_KEYS)})", fix)
            continue
        attr, parse = _KEYS[key]
        try:
            values[attr] = parse(raw)
        except _Invalid as invalid:
            problems.add(full_key, raw, invalid.allowed, invalid.fix)
    # Every problem in one pass: the keys that parsed are validated too (a value that did not parse stands
    # at its default meanwhile, and rules about that key itself are not reported twice).
    unparsed = {problem.field for problem in problems.found}
    config = AppConfig(**values)
    rules = Problems()
    _validate(config, rules)
    problems.found.extend(problem for problem in rules.found if problem.field not in unparsed)
    problems.raise_if_any()
    return config


def _validate(config: AppConfig, problems: Problems) -> None:
    if not _NAME.match(config.name):
        problems.add(
            context_key("name"),
            config.name,
            "1-31 lowercase letters, digits or '-', starting with a letter and ending with a letter or digit",
            "use a short name such as eks-ml or team-a-ml",
        )
    if not _REGION.match(config.region):
        problems.add(context_key("region"), config.region, "a region code like us-west-2", "fix the region")
    if config.account is not None and not _ACCOUNT.match(config.account):
        problems.add(
            context_key("account"), config.account, "a 12-digit AWS account id", "fix the id or remove the key"
        )
    network_rules.check_availability_zones(
        config.availability_zones, config.region, context_key("availability_zones"), problems
    )
    network_rules.check_vpc_layout(
        config.vpc_cidr,
        len(config.availability_zones),
        private_mask=18,
        public_mask=24,
        field=context_key("vpc_cidr"),
        problems=problems,
    )
    cluster_rules.check_endpoint_access(
        config.endpoint_access, config.public_access_cidrs, context_key("public_access_cidrs"), problems
    )
    cluster_rules.check_principal_arns(config.admin_principal_arns, context_key("admin_principal_arns"), problems)
    with problems.collecting():
        release_for(config.kubernetes_version, field=context_key("kubernetes_version")).check_kubectl_layer(
            context_key("kubernetes_version")
        )
    _validate_training(config, problems)
    check_alarm_emails(config.alarm_emails, context_key("alarm_emails"), problems)
    if not config.auto_mode:
        field = context_key("system_instance_type")
        instance_type = parse_instance_type(config.system_instance_type, field, problems)
        if instance_type is not None:
            check_system_instance_type(instance_type, field, problems)


def _validate_training(config: AppConfig, problems: Problems) -> None:
    zone = config.training_availability_zone
    if zone is not None and zone not in config.availability_zones:
        problems.add(
            context_key("training_availability_zone"),
            zone,
            f"one of eks-ml:availabilityZones ({', '.join(config.availability_zones)})",
            "pick an AZ of the VPC, or add it to eks-ml:availabilityZones",
        )
    if not 0 <= config.training_max_restarts <= MAX_RESTARTS_LIMIT:
        problems.add(
            context_key("training_max_restarts"),
            config.training_max_restarts,
            f"a whole number from 0 to {MAX_RESTARTS_LIMIT}",
            f"use a value from 0 to {MAX_RESTARTS_LIMIT} (0: a failed job is not restarted)",
        )
    group_problems = Problems()
    config.training_node_group().check("training", group_problems)
    for problem in group_problems.found:
        key = _TRAINING_FIELDS.get(problem.field)
        mapped = Problem(PREFIX + key if key else problem.field, problem.value, problem.allowed, problem.fix)
        if mapped not in problems.found:  # desired and max size both come from eks-ml:trainingNodeCount
            problems.found.append(mapped)
