from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import Stack, assertions

from eks_ml import BaseClusterProps, MlVpc, MlVpcProps, ValidationError
from eks_ml.training import DataRepository, LustreProps, TrainingCluster, TrainingClusterProps, TrainingNodeGroupProps

from .support.manifests import requires_chart_cache, validate_objects
from .support.synth import library_stack, manifest_id, manifest_kinds, of_type, resource_id


def synth(
    file_system: LustreProps | None = None, *groups: TrainingNodeGroupProps
) -> tuple[TrainingCluster, dict[str, Any]]:
    _, stack = library_stack()
    network = MlVpc(stack, "Network", MlVpcProps(availability_zones=("us-west-2a", "us-west-2b")))
    cluster = TrainingCluster(
        stack,
        "Training",
        TrainingClusterProps(
            base=BaseClusterProps(vpc=network.vpc, cluster_name="train"),
            node_groups=groups or (TrainingNodeGroupProps(name="p5"),),
            file_system=file_system or LustreProps(),
        ),
    )
    return cluster, assertions.Template.from_stack(stack).to_json()


@pytest.fixture(scope="module")
def default_fs() -> tuple[TrainingCluster, dict[str, Any]]:
    return synth(LustreProps(data_repository=DataRepository(s3_path="s3://training-data/datasets")))


def test_persistent_2_encrypted_compressed_with_metadata_and_retained(default_fs: Any) -> None:
    cluster, template = default_fs
    ((fs_id, fs),) = of_type(template, "AWS::FSx::FileSystem").items()
    props = fs["Properties"]
    assert (props["FileSystemType"], props["StorageCapacity"], props["FileSystemTypeVersion"]) == (
        "LUSTRE",
        4800,
        "2.15",
    )
    lustre = props["LustreConfiguration"]
    assert lustre["DeploymentType"] == "PERSISTENT_2"
    assert lustre["PerUnitStorageThroughput"] == 500
    assert lustre["DataCompressionType"] == "LZ4"
    assert lustre["MetadataConfiguration"] == {"Mode": "AUTOMATIC"}
    assert "EfaEnabled" not in lustre
    assert "KmsKeyId" in props
    assert fs["DeletionPolicy"] == "Retain" and fs["UpdateReplacePolicy"] == "Retain"
    # Same subnet (and so AZ) as the training nodes.
    group = cluster.node_groups["p5"]
    assert cluster.file_system is not None
    assert Stack.of(cluster).resolve(group.subnet.subnet_id) == props["SubnetIds"][0]


def test_lustre_ports_only_between_nodes_and_file_servers(default_fs: Any) -> None:
    cluster, template = default_fs
    resolve = Stack.of(cluster).resolve
    fs_group = resolve(cluster.file_system.security_group.security_group_id)
    nodes = resolve(cluster.efa_security_group.security_group_id)
    rules = [
        r["Properties"]
        for r in of_type(template, "AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"]["GroupId"] == fs_group
    ]
    assert sorted((r["SourceSecurityGroupId"] == nodes, r["FromPort"], r["ToPort"]) for r in rules) == [
        (False, 988, 1023),
        (True, 988, 988),
        (True, 1018, 1023),
    ]
    # The one rule not from the nodes is the L2's rule among the file servers themselves.
    (internal,) = [r for r in rules if r["SourceSecurityGroupId"] != nodes]
    assert internal["SourceSecurityGroupId"] == fs_group
    assert all(r["IpProtocol"] == "tcp" for r in rules)
    fs_sg = next(
        r
        for k, r in of_type(template, "AWS::EC2::SecurityGroup").items()
        if "Lustre" in r["Properties"]["GroupDescription"]
    )
    assert fs_sg["Properties"].get("SecurityGroupIngress") is None  # no CIDR-based ingress at all


def test_data_repository_imports_and_exports(default_fs: Any) -> None:
    _, template = default_fs
    ((_, dra),) = of_type(template, "AWS::FSx::DataRepositoryAssociation").items()
    props = dra["Properties"]
    assert (props["DataRepositoryPath"], props["FileSystemPath"]) == ("s3://training-data/datasets", "/data")
    assert props["S3"] == {
        "AutoImportPolicy": {"Events": ["NEW", "CHANGED", "DELETED"]},
        "AutoExportPolicy": {"Events": ["NEW", "CHANGED", "DELETED"]},
    }


def test_csi_driver_addon_with_pod_identity(default_fs: Any) -> None:
    cluster, template = default_fs
    (addon,) = [
        a["Properties"]
        for a in of_type(template, "AWS::EKS::Addon").values()
        if a["Properties"]["AddonName"] == "aws-fsx-csi-driver"
    ]
    (association,) = addon["PodIdentityAssociations"]
    assert association["ServiceAccount"] == "fsx-csi-controller-sa"
    role = template["Resources"][association["RoleArn"]["Fn::GetAtt"][0]]
    trust = role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]
    assert trust["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    assert sorted(trust["Action"]) == ["sts:AssumeRole", "sts:TagSession"]
    policies = [
        p
        for p in of_type(template, "AWS::IAM::Policy").values()
        if p["Properties"]["Roles"] == [{"Ref": association["RoleArn"]["Fn::GetAtt"][0]}]
    ]
    describe, *provisioning = policies[0]["Properties"]["PolicyDocument"]["Statement"]
    assert describe["Action"] == ["fsx:DescribeDataRepositoryAssociations", "fsx:DescribeFileSystems"]
    # The same driver provisions the FSx StorageClasses' file systems, only under conditions
    # (tests/test_training_storage.py).
    assert provisioning and all(statement.get("Condition") for statement in provisioning)


def test_static_volume_and_rwx_claim(default_fs: Any) -> None:
    cluster, _ = default_fs
    objects = {o["kind"]: o for o in cluster.file_system.chart.to_json()}
    assert set(objects) == {"PersistentVolume", "PersistentVolumeClaim"}  # the queues chart owns the namespace
    volume, claim = objects["PersistentVolume"], objects["PersistentVolumeClaim"]
    assert volume["spec"]["csi"]["driver"] == "fsx.csi.aws.com"
    assert volume["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    assert volume["spec"]["accessModes"] == claim["spec"]["accessModes"] == ["ReadWriteMany"]
    # The volume is named after the file system (its id is a token until deploy); the claim keeps "fsx".
    assert (
        claim["spec"]["volumeName"]
        == volume["metadata"]["name"]
        == f"fsx-{cluster.file_system.file_system.file_system_id}"
    )
    assert claim["metadata"]["name"] == "fsx"
    assert claim["metadata"]["namespace"] == "training"
    assert claim["spec"]["resources"]["requests"]["storage"] == "4800Gi"
    assert set(volume["spec"]["csi"]["volumeAttributes"]) == {"dnsname", "mountname"}


def test_volume_is_applied_after_the_namespace_and_the_csi_driver(default_fs: Any) -> None:
    _, template = default_fs
    workloads = manifest_id(template, "PersistentVolumeClaim")
    csi = resource_id(template, "AWS::EKS::Addon", AddonName="aws-fsx-csi-driver")
    assert csi in template["Resources"][workloads]["DependsOn"]
    # The jobs' namespace (with the queues) comes first in the same manifest.
    kinds = manifest_kinds(template, workloads)
    assert kinds.index("Namespace") < kinds.index("PersistentVolumeClaim")


@requires_chart_cache
def test_volume_objects_pass_the_validator(default_fs: Any) -> None:
    cluster, _ = default_fs
    assert validate_objects(cluster.file_system.chart.to_json()) == []


def test_efa_enabled_file_system_shares_the_efa_group() -> None:
    cluster, template = synth(LustreProps(efa_enabled=True, storage_gib=9600))
    ((_, fs),) = of_type(template, "AWS::FSx::FileSystem").items()
    assert fs["Properties"]["LustreConfiguration"]["EfaEnabled"] is True
    assert fs["Properties"]["SecurityGroupIds"] == [
        Stack.of(cluster).resolve(cluster.efa_security_group.security_group_id)
    ]


@pytest.mark.parametrize("storage", [1200, 2400, 4800, 72000])
def test_valid_capacities(storage: int) -> None:
    assert LustreProps(storage_gib=storage).throughput_mbps == storage / 1024 * 500
    synth(LustreProps(storage_gib=storage))


BAD = [
    pytest.param(
        {"storage_gib": 1000},
        r"storage_gib=1000: allowed 1200, 2400 or a multiple of 2400 GiB. Fix: use 1200",
        id="too-small",
    ),
    pytest.param({"storage_gib": 3600}, r"Fix: use 4800 GiB", id="not-a-step"),
    pytest.param(
        {"throughput_per_tib": 200}, r"throughput_per_tib=200: allowed one of 125, 250, 500, 1000", id="bad-throughput"
    ),
    pytest.param(
        {"efa_enabled": True, "storage_gib": 4800},
        r"a multiple of 9600 GiB for an EFA-enabled file system at 500",
        id="efa-step-500",
    ),
    pytest.param(
        {"efa_enabled": True, "throughput_per_tib": 125, "storage_gib": 19200},
        r"a multiple of 38400 GiB",
        id="efa-step-125",
    ),
    pytest.param(
        {"data_repository": DataRepository(s3_path="training-data/datasets")}, r"an S3 URI such as s3://", id="s3-path"
    ),
    pytest.param(
        {"data_repository": DataRepository(s3_path="s3://b1/x", file_system_path="data/../x")},
        r"an absolute path inside the file system",
        id="fs-path",
    ),
]


@pytest.mark.parametrize(("props", "message"), BAD)
def test_bad_file_system(props: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        synth(LustreProps(**props))


def test_file_system_needs_one_az_for_all_groups() -> None:
    with pytest.raises(ValidationError, match=r"one AZ for every node group when the cluster has a Lustre file system"):
        synth(
            LustreProps(),
            TrainingNodeGroupProps(name="a"),
            TrainingNodeGroupProps(name="b", availability_zone="us-west-2b"),
        )
