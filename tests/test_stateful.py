"""Stateful safety: encrypted and retained state, pinned logical ids, the file-system replacement guard,
and names that must be unique in one app."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from aws_cdk import App, Environment, Stack, assertions

from eks_ml import BaseCluster, BaseClusterProps, MlVpc, MlVpcProps, ValidationError, load_app_config
from eks_ml.observability import ObservabilityAddon, ObservabilityAddonProps
from eks_ml.training import (
    FileSystemPin,
    LustreProps,
    TrainingCluster,
    TrainingClusterProps,
    TrainingNodeGroupProps,
)
from stacks import build_default_app

from .support.synth import CDK_CONTEXT, Synthesis, imported_training_cluster, library_stack, of_type

# --- every log group encrypted with a key CloudWatch Logs may use for it, retained, with retention ---------

LOGS_CONDITION = "kms:EncryptionContext:aws:logs:arn"


def _name_parts(name: Any) -> list[str]:
    """The pieces of a log group name an ARN in the key policy must contain, as JSON fragments."""
    if isinstance(name, str):
        return [f":log-group:{name}"]
    parts = name["Fn::Join"][1]
    return [part if isinstance(part, str) else json.dumps(part) for part in parts]


def log_group_findings(template: dict[str, Any]) -> list[str]:
    """Why a log group of ``template`` is not protected as eks-ml promises (empty when all are)."""
    resources = template["Resources"]
    findings = []
    for logical_id, group in of_type(template, "AWS::Logs::LogGroup").items():
        props = group["Properties"]
        if group.get("DeletionPolicy") != "Retain":
            findings.append(f"{logical_id}: not retained")
        if "RetentionInDays" not in props:
            findings.append(f"{logical_id}: no retention")
        key_ref = props.get("KmsKeyId", {}).get("Fn::GetAtt", [None])[0]
        key = resources.get(key_ref) if key_ref else None
        if key is None or key["Type"] != "AWS::KMS::Key":
            findings.append(f"{logical_id}: not encrypted with a key of this stack")
            continue
        if key["Properties"].get("EnableKeyRotation") is not True or key.get("DeletionPolicy") != "Retain":
            findings.append(f"{logical_id}: key {key_ref} not rotated and retained")
        region = "us-west-2"
        allowed = [
            json.dumps(statement["Condition"]["ArnLike"][LOGS_CONDITION])
            for statement in key["Properties"]["KeyPolicy"]["Statement"]
            if statement.get("Principal") == {"Service": f"logs.{region}.amazonaws.com"}
            and LOGS_CONDITION in statement.get("Condition", {}).get("ArnLike", {})
        ]
        # A group without a name gets <stack name>-<logical id>-<suffix>: the stack-name pattern covers it.
        parts = _name_parts(props["LogGroupName"]) if "LogGroupName" in props else ['{"Ref": "AWS::StackName"}, "-*"']
        if not any(all(part in condition for part in parts) for condition in allowed):
            findings.append(f"{logical_id}: its key does not let CloudWatch Logs encrypt this group")
    return findings


@pytest.mark.parametrize(
    "stack", ["Network", "Training", "Inference", "TrainingObservability", "InferenceObservability"]
)
def test_every_log_group_is_encrypted_retained_and_bounded(default_synth: Synthesis, stack: str) -> None:
    template = default_synth.templates[stack]
    assert of_type(template, "AWS::Logs::LogGroup")
    assert log_group_findings(template) == []


def test_the_log_group_check_fails_on_unprotected_groups(default_synth: Synthesis) -> None:
    template = copy.deepcopy(default_synth.templates["Training"])
    groups = of_type(template, "AWS::Logs::LogGroup")
    control_plane = next(
        k for k, g in groups.items() if g["Properties"].get("LogGroupName") == "/aws/eks/eks-ml-training/cluster"
    )
    kubectl = next(k for k in groups if "KubectlProvider" in k)
    del template["Resources"][control_plane]["Properties"]["KmsKeyId"]
    del template["Resources"][kubectl]["Properties"]["RetentionInDays"]
    # The flow logs' key, allowed only for other groups, must not count.
    network = copy.deepcopy(default_synth.templates["Network"])
    (key,) = [k for k in of_type(network, "AWS::KMS::Key").values()]
    key["Properties"]["KeyPolicy"]["Statement"][-1]["Condition"]["ArnLike"][LOGS_CONDITION] = (
        "arn:aws:logs:*:*:log-group:other"
    )
    assert log_group_findings(template) == [
        f"{control_plane}: not encrypted with a key of this stack",
        f"{kubectl}: no retention",
    ]
    assert log_group_findings(network) == [
        "NetworkFlowLogs2BEC3212: its key does not let CloudWatch Logs encrypt this group"
    ]


def test_control_plane_and_container_insights_groups_are_the_ones_their_writers_use(default_synth: Synthesis) -> None:
    def names(stack: str) -> set[str]:
        groups = default_synth.resources(stack, "AWS::Logs::LogGroup").values()
        return {g["Properties"]["LogGroupName"] for g in groups if isinstance(g["Properties"].get("LogGroupName"), str)}

    assert names("Training") == {"/aws/eks/eks-ml-training/cluster"}
    assert names("TrainingObservability") == {
        f"/aws/containerinsights/eks-ml-training/{kind}" for kind in ("application", "dataplane", "host", "performance")
    }
    # The flow-log group has no fixed name: a redeploy after a stack deletion never collides with it.
    (flow,) = default_synth.resources("Network", "AWS::Logs::LogGroup").values()
    assert "LogGroupName" not in flow["Properties"]
    # EKS must find its group (with our key) before it first writes.
    (cluster,) = default_synth.resources("Training", "AWS::EKS::Cluster").values()
    assert any(dep.startswith("ClusterBaseControlPlaneLogs") for dep in cluster["DependsOn"])


# --- the Prometheus workspace: customer-managed key, retained ---------------------------------------------


def workspace_findings(template: dict[str, Any]) -> list[str]:
    findings = []
    for logical_id, workspace in of_type(template, "AWS::APS::Workspace").items():
        if workspace.get("DeletionPolicy") != "Retain":
            findings.append(f"{logical_id}: not retained")
        key_ref = workspace["Properties"].get("KmsKeyArn", {}).get("Fn::GetAtt", [None])[0]
        key = template["Resources"].get(key_ref) if key_ref else None
        if key is None or key["Type"] != "AWS::KMS::Key":
            findings.append(f"{logical_id}: no customer-managed key")
        elif key.get("DeletionPolicy") != "Retain" or key["Properties"].get("EnableKeyRotation") is not True:
            findings.append(f"{logical_id}: key {key_ref} not rotated and retained")
    return findings


@pytest.mark.parametrize("stack", ["TrainingObservability", "InferenceObservability"])
def test_the_workspace_has_its_own_retained_key(prometheus_synth: Synthesis, stack: str) -> None:
    template = prometheus_synth.templates[stack]
    assert len(of_type(template, "AWS::APS::Workspace")) == 1
    assert workspace_findings(template) == []
    broken = copy.deepcopy(template)
    (workspace,) = of_type(broken, "AWS::APS::Workspace").values()
    del workspace["Properties"]["KmsKeyArn"]
    workspace["DeletionPolicy"] = "Delete"
    assert workspace_findings(broken) == [
        "ObservabilityPrometheusWorkspace23982C4D: not retained",
        "ObservabilityPrometheusWorkspace23982C4D: no customer-managed key",
    ]


# --- logical ids of stateful resources, pinned ------------------------------------------------------------
# A changed logical id makes CloudFormation create a new resource and delete (or, with Retain, orphan) the
# old one: a new empty file system, a new key that cannot read the old data, a log group that collides
# with its retained predecessor. A refactor that moves or renames one of these constructs must fail here.

STATEFUL_TYPES = (
    "AWS::EKS::Cluster",
    "AWS::FSx::FileSystem",
    "AWS::KMS::Key",
    "AWS::Logs::LogGroup",
    "AWS::APS::Workspace",
    "AWS::SNS::Topic",
    "AWS::SQS::Queue",
    "AWS::S3::Bucket",
)
CLUSTER_STATE = {
    "ClusterBaseCluster12E7824A": ("AWS::EKS::Cluster", None),
    "ClusterBaseSecretsKey87E6836F": ("AWS::KMS::Key", "Retain"),
    "ClusterBaseControlPlaneLogsKey5E04498D": ("AWS::KMS::Key", "Retain"),
    "ClusterBaseControlPlaneLogs49CD9347": ("AWS::Logs::LogGroup", "Retain"),
    "ClusterBaseKubectlLogsKey4C2C6249": ("AWS::KMS::Key", "Retain"),
    "ClusterBaseClusterKubectlProviderHandlerLogGroup5F0D52CA": ("AWS::Logs::LogGroup", "Retain"),
    "ClusterBaseClusterKubectlProviderframeworkonEventLogGroupF3EBB394": ("AWS::Logs::LogGroup", "Retain"),
}
ALERTS = {
    # The topic keeps no data; its key is deleted with it (after KMS's waiting period).
    "ObservabilityAlertsKey00734CCC": ("AWS::KMS::Key", "Delete"),
    "ObservabilityAlertsC03FAED7": ("AWS::SNS::Topic", None),
}
CLOUDWATCH_STATE = {
    **ALERTS,
    "ObservabilityCloudWatchLogsKeyC45C7C46": ("AWS::KMS::Key", "Retain"),
    "ObservabilityCloudWatchApplicationLogsD7A2ED21": ("AWS::Logs::LogGroup", "Retain"),
    "ObservabilityCloudWatchDataplaneLogs2B9DF4C8": ("AWS::Logs::LogGroup", "Retain"),
    "ObservabilityCloudWatchHostLogsFF58A7AF": ("AWS::Logs::LogGroup", "Retain"),
    "ObservabilityCloudWatchPerformanceLogsC4A6BBE9": ("AWS::Logs::LogGroup", "Retain"),
}
PROMETHEUS_STATE = {
    **ALERTS,
    "ObservabilityPrometheusWorkspaceKey0E03810B": ("AWS::KMS::Key", "Retain"),
    "ObservabilityPrometheusWorkspace23982C4D": ("AWS::APS::Workspace", "Retain"),
}
STATEFUL_RESOURCES = {
    "Network": {
        "NetworkFlowLogsKey9F917D90": ("AWS::KMS::Key", "Retain"),
        "NetworkFlowLogs2BEC3212": ("AWS::Logs::LogGroup", "Retain"),
    },
    "Training": {
        **CLUSTER_STATE,
        "ClusterFileSystemKey7D8BE6FD": ("AWS::KMS::Key", "Retain"),
        "ClusterFileSystemC017E9D7": ("AWS::FSx::FileSystem", "Retain"),
        # Encrypts the gp3 class's volumes; a retained volume outlives the stack and needs its key.
        "ClusterStorageVolumesKeyFC9A8E04": ("AWS::KMS::Key", "Retain"),
    },
    "Inference": {
        **CLUSTER_STATE,
        # Interruption events are minutes-lived: nothing to keep.
        "ClusterKarpenterInterruptionQueue4FC4486E": ("AWS::SQS::Queue", "Delete"),
    },
    "TrainingObservability": CLOUDWATCH_STATE,
    "InferenceObservability": CLOUDWATCH_STATE,
}


def stateful_resources(template: dict[str, Any]) -> dict[str, tuple[str, str | None]]:
    """logical id -> (type, DeletionPolicy) of every resource whose replacement loses state."""
    return {
        logical_id: (resource["Type"], resource.get("DeletionPolicy"))
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] in STATEFUL_TYPES
    }


@pytest.mark.parametrize("stack", list(STATEFUL_RESOURCES))
def test_stateful_logical_ids_and_removal_policies_are_pinned(default_synth: Synthesis, stack: str) -> None:
    assert stateful_resources(default_synth.templates[stack]) == STATEFUL_RESOURCES[stack]


@pytest.mark.parametrize("stack", ["TrainingObservability", "InferenceObservability"])
def test_prometheus_stateful_logical_ids_are_pinned(prometheus_synth: Synthesis, stack: str) -> None:
    assert stateful_resources(prometheus_synth.templates[stack]) == PROMETHEUS_STATE


def test_a_moved_file_system_fails_the_pin(default_synth: Synthesis) -> None:
    template = copy.deepcopy(default_synth.templates["Training"])
    resources = template["Resources"]
    resources["ClusterStorageFileSystem0A1B2C3D"] = resources.pop("ClusterFileSystemC017E9D7")
    assert stateful_resources(template) != STATEFUL_RESOURCES["Training"]


# --- the file-system replacement guard ----------------------------------------------------------------------

PINNED = FileSystemPin(availability_zone="us-west-2a", efa_enabled=False, storage_gib=4800)


def training(file_system: LustreProps, zone: str = "us-west-2a") -> TrainingCluster:
    _, stack = library_stack()
    network = MlVpc(stack, "Network", MlVpcProps(availability_zones=("us-west-2a", "us-west-2b")))
    return TrainingCluster(
        stack,
        "Training",
        TrainingClusterProps(
            base=BaseClusterProps(vpc=network.vpc, cluster_name="train"),
            node_groups=[TrainingNodeGroupProps(name="p5", availability_zone=zone)],
            file_system=file_system,
        ),
    )


@pytest.mark.parametrize(
    ("file_system", "zone", "message"),
    [
        pytest.param(
            LustreProps(pin=PINNED),
            "us-west-2b",
            r"file_system.availability_zone='us-west-2b': allowed 'us-west-2a' as pinned",
            id="az",
        ),
        pytest.param(
            LustreProps(pin=PINNED, efa_enabled=True, storage_gib=9600),
            "us-west-2a",
            r"file_system.efa_enabled=True: allowed False as pinned",
            id="efa",
        ),
        pytest.param(
            LustreProps(pin=PINNED, storage_gib=2400),
            "us-west-2a",
            r"file_system.storage_gib=2400: allowed 4800 as pinned \(a smaller size",
            id="shrink",
        ),
        pytest.param(
            LustreProps(
                pin=FileSystemPin(
                    availability_zone="us-west-2a", efa_enabled=False, storage_gib=4800, deployment_type="PERSISTENT_1"
                )
            ),
            "us-west-2a",
            r"file_system.deployment_type='PERSISTENT_2'",
            id="deployment-type",
        ),
    ],
)
def test_a_change_that_replaces_a_pinned_file_system_is_refused(
    file_system: LustreProps, zone: str, message: str
) -> None:
    with pytest.raises(ValidationError, match=message) as raised:
        training(file_system, zone)
    assert "allow_replacement=True" in str(raised.value) and "delete the claim" in str(raised.value)


def test_in_place_changes_and_an_explicit_opt_in_pass() -> None:
    training(LustreProps(pin=PINNED, storage_gib=7200))  # growing is an update, not a replacement
    training(LustreProps(pin=PINNED, throughput_per_tib=250))  # so is a new throughput tier (without EFA)
    moved = training(LustreProps(pin=PINNED, allow_replacement=True), "us-west-2b")
    assert moved.file_system is not None and moved.file_system.settings.availability_zone == "us-west-2b"


def test_the_stack_outputs_the_pin_and_an_unpinned_file_system_says_so() -> None:
    cluster = training(LustreProps())
    stack = Stack.of(cluster)
    template = assertions.Template.from_stack(stack)
    (output,) = template.find_outputs("*", {"Description": "eks-ml:trainingFileSystemPin of this file system"}).values()
    assert json.loads(output["Value"]) == {**PINNED.as_context(), "deploymentType": "PERSISTENT_2"}
    infos = assertions.Annotations.from_stack(stack).find_info("*", assertions.Match.string_like_regexp("not pinned"))
    assert len(infos) == 1
    pinned = Stack.of(training(LustreProps(pin=PINNED)))
    assert (
        assertions.Annotations.from_stack(pinned).find_info("*", assertions.Match.string_like_regexp("not pinned"))
        == []
    )


def test_the_default_app_refuses_a_change_from_its_recorded_pin() -> None:
    # As after a first deploy in us-west-2a, whose FileSystemPin output was copied into cdk.json.
    pinned = {**CDK_CONTEXT, "eks-ml:trainingFileSystemPin": PINNED.as_context()}
    build_default_app(App(context=pinned), load_app_config(pinned))
    moved = {**pinned, "eks-ml:trainingAvailabilityZone": "us-west-2b"}
    with pytest.raises(
        ValidationError, match=r"file_system.availability_zone='us-west-2b'.*eks-ml:allowFileSystemReplacement"
    ):
        build_default_app(App(context=moved), load_app_config(moved))
    # Never deployed (nothing pinned): any AZ may be chosen for the first deploy.
    fresh = {**CDK_CONTEXT, "eks-ml:trainingAvailabilityZone": "us-west-2b"}
    build_default_app(App(context=fresh), load_app_config(fresh))


@pytest.mark.parametrize(
    "pin",
    [
        pytest.param('{"availabilityZone": "us-west-2a"}', id="missing-keys"),
        pytest.param({"availabilityZone": "us-west-2a", "efaEnabled": "no", "storageGib": 4800}, id="string-bool"),
        pytest.param(
            {"availabilityZone": "us-west-2a", "efaEnabled": False, "storageGib": 4800, "az": 1}, id="unknown-key"
        ),
        pytest.param("{not json", id="bad-json"),
        pytest.param(["us-west-2a"], id="list"),
    ],
)
def test_a_malformed_pin_is_refused(pin: Any) -> None:
    with pytest.raises(
        ValidationError, match=r"eks-ml:trainingFileSystemPin=.*Fix: (copy the stack output|fix the JSON)"
    ):
        load_app_config({**CDK_CONTEXT, "eks-ml:trainingFileSystemPin": pin})


def test_a_pin_given_with_dash_c_is_parsed() -> None:
    config = load_app_config({**CDK_CONTEXT, "eks-ml:trainingFileSystemPin": json.dumps(PINNED.as_context())})
    assert config.training_file_system_pin == PINNED


# --- names unique in one app --------------------------------------------------------------------------------


def base_cluster(app: App, stack_id: str, name: str, region: str = "us-west-2") -> BaseCluster:
    stack = Stack(app, stack_id, env=Environment(region=region))
    network = MlVpc(stack, "Network", MlVpcProps(availability_zones=(f"{region}a", f"{region}b")))
    return BaseCluster(stack, "Cluster", BaseClusterProps(vpc=network.vpc, cluster_name=name))


def test_two_clusters_with_one_name_in_one_app_are_refused() -> None:
    app = App()
    base_cluster(app, "One", "shared")
    base_cluster(app, "Other", "unique")
    with pytest.raises(
        ValidationError,
        match=r"cluster_name='shared': allowed each EKS cluster name once per account and region in one app \(One/Cluster uses it already\)",
    ):
        base_cluster(app, "Two", "shared")


def test_one_name_in_other_regions_or_other_apps_is_fine() -> None:
    app = App()
    base_cluster(app, "West", "shared")
    base_cluster(app, "East", "shared", region="us-east-1")
    base_cluster(App(), "West", "shared")  # a separate app has its own names


def test_two_observability_addons_on_one_cluster_are_refused() -> None:
    app, stack = library_stack()
    cluster = imported_training_cluster(stack, cluster_name="watched")
    ObservabilityAddon(
        Stack(app, "One", env=Environment(region="us-west-2")),
        "Observability",
        ObservabilityAddonProps(cluster=cluster),
    )
    other = Stack(app, "Two", env=Environment(region="us-west-2"))
    with pytest.raises(
        ValidationError,
        match=r"cluster='watched': allowed each observability add-on name once .*Lib/Observability|allowed each observability add-on name once .*One/Observability",
    ):
        ObservabilityAddon(other, "Observability", ObservabilityAddonProps(cluster=cluster))
