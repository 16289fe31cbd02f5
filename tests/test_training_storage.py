"""StorageClasses of the training cluster: FSx for Lustre (scratch, persistent, EFA) and gp3, with the CSI
drivers' add-ons and the IAM rights dynamic provisioning needs, scoped to the cluster.

The default app's synth (shared by the session) covers the cluster with a static file system, whose FSx CSI
driver the classes share; one library synth covers a cluster without one, where the classes bring the driver.
"""

from __future__ import annotations

import copy
import io
import re
from typing import Any

import pytest
import yaml
from aws_cdk import Stack, assertions
from rich.console import Console

from eks_ml import BaseClusterProps, MlVpc, MlVpcProps, ValidationError
from eks_ml.cli import PIPED_WIDTH, render
from eks_ml.k8s.storage_classes import DEFAULT_CLASS_ANNOTATION
from eks_ml.plan import AppPlan, plans_from_assembly
from eks_ml.training import TrainingCluster, TrainingClusterProps, TrainingNodeGroupProps
from eks_ml.training.storage import CLUSTER_TAG, EBS_CSI_POLICY
from eks_ml.training.storage_classes import (
    Gp3ClassProps,
    LustreClassProps,
    LustreDeployment,
    ReclaimPolicy,
    StorageClassesProps,
)

from .support.manifests import applied_objects, validate_objects
from .support.synth import ROOT, Synthesis, library_stack, of_type

# StorageClass parameters the FSx for Lustre CSI driver reads (kubernetes-sigs/aws-fsx-csi-driver @ v1.9.0,
# pkg/driver/controller.go, volumeParams* constants); an unknown key is ignored by the driver, so a typo
# would silently drop a setting.
FSX_PARAMETERS = {
    "subnetId",
    "securityGroupIds",
    "autoImportPolicy",
    "s3ImportPath",
    "s3ExportPath",
    "deploymentType",
    "kmsKeyId",
    "perUnitStorageThroughput",
    "storageType",
    "driveCacheType",
    "automaticBackupRetentionDays",
    "dailyAutomaticBackupStartTime",
    "copyTagsToBackups",
    "dataCompressionType",
    "weeklyMaintenanceStartTime",
    "fileSystemTypeVersion",
    "extraTags",
    "efaEnabled",
    "metadataConfigurationMode",
    "metadataIops",
}
FSX_WRITES = {"fsx:CreateFileSystem", "fsx:TagResource", "fsx:UpdateFileSystem", "fsx:DeleteFileSystem"}


def fsx_class_problems(storage_class: dict[str, Any]) -> list[str]:
    """What would make the FSx CSI driver ignore a setting or FSx refuse CreateFileSystem."""
    name, parameters = storage_class["metadata"]["name"], storage_class.get("parameters", {})
    problems = [f"{name}: unknown parameter {key}" for key in sorted(set(parameters) - FSX_PARAMETERS)]
    deployment = parameters.get("deploymentType")
    if deployment not in ("SCRATCH_2", "PERSISTENT_2"):
        problems.append(f"{name}: deploymentType {deployment!r}")
    if not parameters.get("subnetId") or "," in parameters.get("subnetId", ","):
        problems.append(f"{name}: exactly one subnetId")
    if deployment == "SCRATCH_2" and {"perUnitStorageThroughput", "kmsKeyId", "efaEnabled"} & set(parameters):
        problems.append(f"{name}: PERSISTENT-only parameters on SCRATCH_2")
    if parameters.get("efaEnabled") == "true" and (
        deployment != "PERSISTENT_2" or "metadataConfigurationMode" not in parameters
    ):
        problems.append(f"{name}: efaEnabled needs PERSISTENT_2 with a metadata configuration")
    if storage_class.get("metadata", {}).get("annotations", {}).get(DEFAULT_CLASS_ANNOTATION) == "true":
        problems.append(f"{name}: an FSx class is the default class (every claim would create a file system)")
    return problems


def unscoped_fsx_writes(statements: list[dict[str, Any]]) -> list[str]:
    """FSx write actions the role may call without this cluster's tag in a condition."""
    found = []
    for statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        condition = statement.get("Condition", {}).get("StringEquals", {})
        scoped = any(key.endswith(f"Tag/{CLUSTER_TAG}") for key in condition)
        found += [action for action in actions if action in FSX_WRITES and not scoped]
    return sorted(found)


def storage_classes(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == "StorageClass"}


def role_statements(template: dict[str, Any], addon_name: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The role of an add-on's Pod Identity association and the statements of its inline policy."""
    (addon,) = [a for a in of_type(template, "AWS::EKS::Addon").values() if a["Properties"]["AddonName"] == addon_name]
    (association,) = addon["Properties"]["PodIdentityAssociations"]
    role_id = association["RoleArn"]["Fn::GetAtt"][0]
    (policy,) = [
        p for p in of_type(template, "AWS::IAM::Policy").values() if {"Ref": role_id} in p["Properties"]["Roles"]
    ]
    return template["Resources"][role_id], policy["Properties"]["PolicyDocument"]["Statement"]


@pytest.fixture(scope="module")
def training(default_synth: Synthesis) -> dict[str, Any]:
    return default_synth.templates["Training"]


def test_the_default_app_applies_scratch_persistent_and_gp3(training: dict[str, Any]) -> None:
    classes = storage_classes(applied_objects(training))
    assert sorted(classes) == ["fsx-persistent", "fsx-scratch", "gp3"]
    scratch, persistent, gp3 = classes["fsx-scratch"], classes["fsx-persistent"], classes["gp3"]
    assert scratch["provisioner"] == persistent["provisioner"] == "fsx.csi.aws.com"
    assert scratch["parameters"]["deploymentType"] == "SCRATCH_2"
    assert scratch["reclaimPolicy"] == "Delete" and persistent["reclaimPolicy"] == "Retain"
    assert persistent["parameters"] | {"subnetId": "", "securityGroupIds": ""} == {
        "subnetId": "",
        "securityGroupIds": "",
        "deploymentType": "PERSISTENT_2",
        "perUnitStorageThroughput": "250",
        "metadataConfigurationMode": "AUTOMATIC",
        "fileSystemTypeVersion": "2.15",
        "dataCompressionType": "LZ4",
        "extraTags": f"{CLUSTER_TAG}=eks-ml-training",
    }
    assert persistent["allowVolumeExpansion"] is True and persistent["mountOptions"] == ["flock"]
    # Only gp3 is the default class; an EBS volume is zonal, so it waits for the pod's node.
    assert gp3["metadata"]["annotations"] == {DEFAULT_CLASS_ANNOTATION: "true"}
    assert (gp3["provisioner"], gp3["volumeBindingMode"]) == ("ebs.csi.aws.com", "WaitForFirstConsumer")
    assert {k: v for k, v in gp3["parameters"].items() if k != "kmsKeyId"} == {
        "type": "gp3",
        "encrypted": "true",
        "csi.storage.k8s.io/fstype": "ext4",
    }
    assert [problem for c in (scratch, persistent) for problem in fsx_class_problems(c)] == []
    assert validate_objects(classes.values()) == []


@pytest.mark.parametrize(
    ("break_it", "expected"),
    [
        (lambda p: p.update(perUnitStorageThroughPut="250"), "unknown parameter perUnitStorageThroughPut"),
        (lambda p: p.update(subnetId="subnet-a,subnet-b"), "exactly one subnetId"),
        (lambda p: p.update(deploymentType="SCRATCH_2"), "PERSISTENT-only parameters on SCRATCH_2"),
        (lambda p: (p.pop("metadataConfigurationMode"), p.update(efaEnabled="true")), "efaEnabled needs"),
    ],
    ids=["typo", "two-subnets", "scratch-with-throughput", "efa-without-metadata"],
)
def test_the_class_check_catches_a_broken_class(training: dict[str, Any], break_it: Any, expected: str) -> None:
    broken = copy.deepcopy(storage_classes(applied_objects(training))["fsx-persistent"])
    break_it(broken["parameters"])
    assert any(expected in problem for problem in fsx_class_problems(broken)), fsx_class_problems(broken)


def test_an_fsx_default_class_is_caught(training: dict[str, Any]) -> None:
    broken = copy.deepcopy(storage_classes(applied_objects(training))["fsx-scratch"])
    broken["metadata"]["annotations"] = {DEFAULT_CLASS_ANNOTATION: "true"}
    assert fsx_class_problems(broken) == [
        "fsx-scratch: an FSx class is the default class (every claim would create a file system)"
    ]


def test_one_fsx_driver_provisions_only_file_systems_tagged_for_this_cluster(training: dict[str, Any]) -> None:
    fsx_addons = [
        a for a in of_type(training, "AWS::EKS::Addon").values() if a["Properties"]["AddonName"] == "aws-fsx-csi-driver"
    ]
    assert len(fsx_addons) == 1  # the static file system's driver serves the classes too
    _, statements = role_statements(training, "aws-fsx-csi-driver")
    assert unscoped_fsx_writes(statements) == []
    by_action = {
        action: s for s in statements for action in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    }
    assert by_action["fsx:CreateFileSystem"]["Condition"] == {
        "StringEquals": {f"aws:RequestTag/{CLUSTER_TAG}": "eks-ml-training"}
    }
    assert by_action["fsx:DeleteFileSystem"]["Condition"] == {
        "StringEquals": {f"aws:ResourceTag/{CLUSTER_TAG}": "eks-ml-training"}
    }
    assert by_action["iam:CreateServiceLinkedRole"]["Condition"] == {
        "StringLike": {"iam:AWSServiceName": "fsx.amazonaws.com"}
    }
    # The check fails once a write loses its condition.
    broken = copy.deepcopy(statements)
    for statement in broken:
        statement.pop("Condition", None)
    assert unscoped_fsx_writes(broken) == sorted(FSX_WRITES)


def test_the_ebs_driver_gets_its_managed_policy_and_only_the_gp3_key(training: dict[str, Any]) -> None:
    role, statements = role_statements(training, "aws-ebs-csi-driver")
    (managed,) = role["Properties"]["ManagedPolicyArns"]
    assert managed["Fn::Join"][1][-1] == f":iam::aws:policy/{EBS_CSI_POLICY}"
    (kms,) = statements
    assert sorted(kms["Action"]) == ["kms:CreateGrant", "kms:Decrypt", "kms:GenerateDataKeyWithoutPlaintext"]
    key_id = kms["Resource"]["Fn::GetAtt"][0]
    assert training["Resources"][key_id]["Type"] == "AWS::KMS::Key"
    assert training["Resources"][key_id]["Properties"]["EnableKeyRotation"] is True
    (addon,) = [
        a for a in of_type(training, "AWS::EKS::Addon").values() if a["Properties"]["AddonName"] == "aws-ebs-csi-driver"
    ]
    assert addon["Properties"]["PodIdentityAssociations"][0]["ServiceAccount"] == "ebs-csi-controller-sa"


def test_the_plan_lists_the_classes_and_the_restart_budget(default_synth: Synthesis) -> None:
    plan: AppPlan = plans_from_assembly(default_synth.outdir)
    training = plan.clusters[0]
    assert training.max_restarts == 3
    assert [line.split(":")[0] for line in training.storage_classes] == [
        "fsx-scratch",
        "fsx-persistent",
        "gp3 (default class)",
    ]
    out = io.StringIO()
    render(plan, Console(file=out, width=PIPED_WIDTH), 500)
    text = out.getvalue()
    assert (
        "StorageClass fsx-persistent: FSx for Lustre PERSISTENT_2, 250 MB/s/TiB, a file system per claim (from 1200 GiB)"
        in text
    )
    assert "a failed training job is restarted up to 3 times" in text


# ---- the README's example claims ------------------------------------------------------------------------

ACCESS_MODES = {"fsx.csi.aws.com": ["ReadWriteMany"], "ebs.csi.aws.com": ["ReadWriteOnce"]}


def claim_problems(claim: dict[str, Any], classes: dict[str, dict[str, Any]]) -> list[str]:
    """What keeps a claim from binding on this cluster: no such class, an access mode or size the class's
    volumes do not offer."""
    name = claim["metadata"]["name"]
    wanted = claim["spec"].get("storageClassName")
    if wanted is None:
        defaults = [c for c, o in classes.items() if o["metadata"].get("annotations", {}).get(DEFAULT_CLASS_ANNOTATION)]
        wanted = defaults[0] if len(defaults) == 1 else None
    if wanted not in classes:
        return [f"{name}: no StorageClass {wanted!r} (the cluster has {', '.join(sorted(classes))})"]
    provisioner = classes[wanted]["provisioner"]
    problems = []
    if claim["spec"]["accessModes"] != ACCESS_MODES[provisioner]:
        problems.append(f"{name}: {provisioner} volumes are {ACCESS_MODES[provisioner]}")
    size = claim["spec"]["resources"]["requests"]["storage"]
    if provisioner == "fsx.csi.aws.com" and int(size.removesuffix("Gi")) < 1200:
        problems.append(f"{name}: {size} is below the smallest file system (1200Gi)")
    return problems


def readme_claims() -> list[dict[str, Any]]:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"^```yaml\n(.*?)^```$", text, flags=re.M | re.S)
    return [o for block in blocks for o in yaml.safe_load_all(block) if o and o["kind"] == "PersistentVolumeClaim"]


def test_the_readme_claims_bind_to_the_default_apps_classes(training: dict[str, Any]) -> None:
    classes = storage_classes(applied_objects(training))
    claims = readme_claims()
    used = {c["spec"].get("storageClassName", "gp3") for c in claims}
    assert used == set(classes)  # one example claim per class
    assert validate_objects(claims) == []
    assert [problem for claim in claims for problem in claim_problems(claim, classes)] == []
    broken = copy.deepcopy(claims)
    broken[0]["spec"]["storageClassName"] = "fsx-scratchh"
    broken[1]["spec"]["accessModes"] = ["ReadWriteOnce"]
    broken[1]["spec"]["resources"]["requests"]["storage"] = "100Gi"
    assert [p.split(":")[0] for claim in broken for p in claim_problems(claim, classes)] == [
        "staging",
        "results",
        "results",
    ]


# ---- a cluster without a static file system: the classes bring the FSx driver ----------------------------

EFA_CLASS = LustreClassProps(
    name="fsx-efa", deployment=LustreDeployment.PERSISTENT_2, throughput_per_tib=500, efa_enabled=True
)


@pytest.fixture(scope="module")
def no_file_system() -> tuple[TrainingCluster, dict[str, Any]]:
    _, stack = library_stack()
    network = MlVpc(stack, "Network", MlVpcProps(availability_zones=("us-west-2a", "us-west-2b")))
    cluster = TrainingCluster(
        stack,
        "Training",
        TrainingClusterProps(
            base=BaseClusterProps(vpc=network.vpc, cluster_name="train"),
            node_groups=[TrainingNodeGroupProps(name="p5", availability_zone="us-west-2b")],
            file_system=None,
            storage_classes=StorageClassesProps(
                lustre=[EFA_CLASS],
                gp3=Gp3ClassProps(name="ebs", default_class=False, reclaim_policy=ReclaimPolicy.RETAIN),
            ),
        ),
    )
    return cluster, assertions.Template.from_stack(stack).to_json()


def test_without_a_file_system_the_classes_install_the_fsx_driver(no_file_system: Any) -> None:
    cluster, template = no_file_system
    names = sorted(a["Properties"]["AddonName"] for a in of_type(template, "AWS::EKS::Addon").values())
    assert names.count("aws-fsx-csi-driver") == 1 and "aws-ebs-csi-driver" in names
    _, statements = role_statements(template, "aws-fsx-csi-driver")
    assert statements[0]["Action"] == "fsx:DescribeFileSystems"
    assert unscoped_fsx_writes(statements) == []
    assert cluster.storage is not None and cluster.storage.fsx_csi_addon is not None


def test_an_efa_class_uses_the_nodes_efa_group_in_their_subnet(no_file_system: Any) -> None:
    cluster, _ = no_file_system
    stack = Stack.of(cluster)
    (efa,) = [o for o in cluster.storage.chart.to_json() if o["metadata"]["name"] == "fsx-efa"]
    parameters = efa["parameters"]
    assert (parameters["efaEnabled"], parameters["perUnitStorageThroughput"]) == ("true", "500")
    assert stack.resolve(parameters["securityGroupIds"]) == stack.resolve(cluster.efa_security_group.security_group_id)
    assert stack.resolve(parameters["subnetId"]) == stack.resolve(cluster.node_groups["p5"].subnet.subnet_id)
    assert fsx_class_problems(efa) == []
    # EFA file systems grow in larger steps than the driver rounds claims to: at 500 MB/s/TiB, 9600 GiB.
    assert EFA_CLASS.smallest_claim_gib == 9600
    # What the nodes lack for EFA is said at synth, not left to the README alone.
    warnings = assertions.Annotations.from_stack(stack).find_warning(
        "*", assertions.Match.string_like_regexp("fsx-efa")
    )
    assert len(warnings) == 1 and "over TCP" in warnings[0].entry.data


def test_non_efa_classes_get_a_lustre_only_group(no_file_system: Any) -> None:
    cluster, template = no_file_system
    group_id = Stack.of(cluster).resolve(cluster.storage.security_group.security_group_id)["Fn::GetAtt"][0]
    rules = [
        r["Properties"]
        for r in of_type(template, "AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"]["GroupId"] == {"Fn::GetAtt": [group_id, "GroupId"]}
    ]
    assert sorted({(r["FromPort"], r["ToPort"]) for r in rules}) == [(988, 988), (1018, 1023)]
    assert all(r["IpProtocol"] == "tcp" for r in rules)


def test_a_custom_gp3_class_is_not_default_and_keeps_its_volumes(no_file_system: Any) -> None:
    cluster, _ = no_file_system
    (ebs,) = [o for o in cluster.storage.chart.to_json() if o["metadata"]["name"] == "ebs"]
    assert "annotations" not in ebs["metadata"] and ebs["reclaimPolicy"] == "Retain"


def test_fsx_classes_need_the_groups_in_one_az() -> None:
    _, stack = library_stack()
    network = MlVpc(stack, "Network", MlVpcProps(availability_zones=("us-west-2a", "us-west-2b")))
    groups = [
        TrainingNodeGroupProps(name="p5", availability_zone="us-west-2b"),
        TrainingNodeGroupProps(name="trn", instance_type="trn1.32xlarge", availability_zone="us-west-2a"),
    ]
    with pytest.raises(
        ValidationError, match=r"one AZ for every node group when the cluster has FSx for Lustre storage"
    ):
        TrainingCluster(
            stack,
            "Training",
            TrainingClusterProps(
                base=BaseClusterProps(vpc=network.vpc, cluster_name="train"), node_groups=groups, file_system=None
            ),
        )


def test_no_storage_classes_means_no_ebs_driver() -> None:
    _, stack = library_stack()
    network = MlVpc(stack, "Network", MlVpcProps(availability_zones=("us-west-2a", "us-west-2b")))
    cluster = TrainingCluster(
        stack,
        "Training",
        TrainingClusterProps(
            base=BaseClusterProps(vpc=network.vpc, cluster_name="train"), file_system=None, storage_classes=None
        ),
    )
    template = assertions.Template.from_stack(stack).to_json()
    assert cluster.storage is None
    assert [a for a in of_type(template, "AWS::EKS::Addon").values() if "csi" in a["Properties"]["AddonName"]] == []
    assert "storage-classes" not in [stem for stem, _ in cluster.applied_charts]
