"""FSx for Lustre PERSISTENT_2 for training data and checkpoints, and the CSI driver that mounts it."""

from __future__ import annotations

import json
from dataclasses import dataclass

import cdk8s
from aws_cdk import Annotations, CfnOutput, RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_fsx as fsx
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from ..cluster.pod_identity import addon_with_role, pod_identity_role
from ..errors import Problems
from ..guards import expect_all, expect_bool, expect_enum, expect_instance, expect_int, expect_str
from ..k8s import LustreVolumeChart, LustreVolumeValues
from ..kube_names import check_dns_subdomain
from ..nag import PACK, acknowledge, acknowledge_inline_policy
from .lustre_rules import DEPLOYMENT_TYPE, FileSystemPin, check_data_repository, check_lustre, check_pin

LUSTRE_PORT = 988
LUSTRE_PORT_RANGE = (1018, 1023)
FSX_CSI_ADDON = "aws-fsx-csi-driver"
FSX_CSI_CONTROLLER_SA = "fsx-csi-controller-sa"
ALL_EVENTS = ["NEW", "CHANGED", "DELETED"]


@dataclass(frozen=True, kw_only=True)
class DataRepository:
    """An S3 prefix linked to a path of the file system, imported and exported automatically."""

    s3_path: str
    file_system_path: str = "/data"


@dataclass(frozen=True, kw_only=True)
class LustreProps:
    """Props of the training file system.

    storage_gib: Default: 4800 GiB. throughput_per_tib: Default: 500 MB/s per TiB (2.3 GB/s at 4800 GiB).
    efa_enabled: Default: off. On: clients reach the file system over EFA (set at creation only).
    data_repository: Default: none. claim_name: the RWX claim jobs mount (in the cluster's namespace).
    removal_policy: Default: RETAIN, so deleting the stack never deletes data.
    pin: the create-only settings of the file system already deployed (AZ, EFA, deployment type, size;
        the stack's ``FileSystemPin`` output after the first deploy). A change that would replace the
        file system (a new, empty one) is then a ValidationError at synth. Default: none (nothing to
        protect yet; synth notes the value to pin).
    allow_replacement: Default: False. True lets a change of a pinned setting replace the file system.
    """

    storage_gib: int = 4800
    throughput_per_tib: int = 500
    efa_enabled: bool = False
    data_repository: DataRepository | None = None
    claim_name: str = "fsx"
    removal_policy: RemovalPolicy = RemovalPolicy.RETAIN
    pin: FileSystemPin | None = None
    allow_replacement: bool = False

    def settings(self, availability_zone: str) -> FileSystemPin:
        """The create-only settings this configuration gives a file system in ``availability_zone``."""
        return FileSystemPin(
            availability_zone=availability_zone,
            efa_enabled=self.efa_enabled,
            storage_gib=self.storage_gib,
            deployment_type=DEPLOYMENT_TYPE,
        )

    def check_replacement(self, availability_zone: str, problems: Problems) -> None:
        """Refuse a change of a pinned create-only setting, unless replacement is allowed."""
        if self.pin is not None:
            check_pin(
                self.pin, self.settings(availability_zone), self.allow_replacement, problems, prefix="file_system"
            )

    def check(self, problems: Problems) -> None:
        field = "file_system"
        if not expect_all(
            expect_int(self.storage_gib, f"{field}.storage_gib", problems),
            expect_int(self.throughput_per_tib, f"{field}.throughput_per_tib", problems),
            expect_bool(self.efa_enabled, f"{field}.efa_enabled", problems),
            self.data_repository is None
            or expect_instance(
                self.data_repository,
                DataRepository,
                f"{field}.data_repository",
                problems,
                fix="pass DataRepository(s3_path='s3://bucket/prefix')",
            )
            and expect_all(
                expect_str(self.data_repository.s3_path, f"{field}.data_repository.s3_path", problems),
                expect_str(
                    self.data_repository.file_system_path, f"{field}.data_repository.file_system_path", problems
                ),
            ),
            expect_str(self.claim_name, f"{field}.claim_name", problems),
            expect_enum(self.removal_policy, RemovalPolicy, f"{field}.removal_policy", problems),
        ):
            return
        check_dns_subdomain(self.claim_name, f"{field}.claim_name", problems)
        check_lustre(self.storage_gib, self.throughput_per_tib, self.efa_enabled, problems)
        if self.data_repository is not None:
            check_data_repository(
                self.data_repository.s3_path,
                self.data_repository.file_system_path,
                problems,
                prefix="file_system.data_repository",
            )

    @property
    def throughput_mbps(self) -> float:
        return self.storage_gib / 1024 * self.throughput_per_tib


class TrainingFileSystem(Construct):
    """The file system, its KMS key and security group, the CSI driver add-on, and the volume chart.

    Attributes: ``file_system``, ``security_group``, ``key``, ``csi_addon``, ``csi_role``, ``chart``,
    ``manifest`` (the chart applied to the cluster), ``settings`` (its create-only settings, a FileSystemPin).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster: eks.ICluster,
        vpc: ec2.IVpc,
        subnet: ec2.ISubnet,
        clients: ec2.ISecurityGroup,
        namespace: str,
        props: LustreProps,
    ) -> None:
        super().__init__(scope, construct_id)
        self.settings = props.settings(subnet.availability_zone)
        pin_json = json.dumps(self.settings.as_context(), separators=(",", ":"))
        # What to pin after the first deploy (README, "State and redeploys").
        CfnOutput(self, "Pin", value=pin_json, description="eks-ml:trainingFileSystemPin of this file system")
        if props.pin is None:
            Annotations.of(self).add_info(
                f"The training file system is not pinned. After its first deploy, pin {pin_json} "
                "(LustreProps.pin, or eks-ml:trainingFileSystemPin in cdk.json) so that a change which would "
                "replace it is refused at synth."
            )
        self.key = kms.Key(
            self,
            "Key",
            description="FSx for Lustre training data",
            enable_key_rotation=True,
            removal_policy=props.removal_policy,
        )
        if props.efa_enabled:
            # EFA needs all traffic between clients and servers: share the nodes' EFA security group.
            self.security_group = clients
        else:
            self.security_group = ec2.SecurityGroup(
                self, "SecurityGroup", vpc=vpc, description="FSx for Lustre: Lustre ports from training nodes"
            )
            # Clients need exactly 988 and 1018-1023; the LustreFileSystem L2 itself opens 988-1023
            # between the file servers (the group's own members).
            low, high = LUSTRE_PORT_RANGE
            self.security_group.add_ingress_rule(clients, ec2.Port.tcp(LUSTRE_PORT), "Lustre from training nodes")
            self.security_group.add_ingress_rule(clients, ec2.Port.tcp_range(low, high), "Lustre from training nodes")
        self.file_system = fsx.LustreFileSystem(
            self,
            "FileSystem",
            vpc=vpc,
            vpc_subnet=subnet,
            storage_capacity_gib=props.storage_gib,
            file_system_type_version=fsx.FileSystemTypeVersion.V_2_15,
            kms_key=self.key,
            security_group=self.security_group,
            removal_policy=props.removal_policy,
            lustre_configuration=fsx.LustreConfiguration(
                deployment_type=fsx.LustreDeploymentType(DEPLOYMENT_TYPE),
                per_unit_storage_throughput=props.throughput_per_tib,
                data_compression_type=fsx.LustreDataCompressionType.LZ4,
            ),
        )
        # The L2 knows neither the metadata configuration nor EFA (both PERSISTENT_2 features).
        cfn = self.file_system.node.default_child
        assert isinstance(cfn, fsx.CfnFileSystem)
        cfn.add_property_override("LustreConfiguration.MetadataConfiguration", {"Mode": "AUTOMATIC"})
        if props.efa_enabled:
            cfn.add_property_override("LustreConfiguration.EfaEnabled", True)
        if props.data_repository is not None:
            fsx.CfnDataRepositoryAssociation(
                self,
                "DataRepository",
                file_system_id=self.file_system.file_system_id,
                file_system_path=props.data_repository.file_system_path,
                data_repository_path=props.data_repository.s3_path,
                batch_import_meta_data_on_create=True,
                s3=fsx.CfnDataRepositoryAssociation.S3Property(
                    auto_import_policy=fsx.CfnDataRepositoryAssociation.AutoImportPolicyProperty(events=ALL_EVENTS),
                    auto_export_policy=fsx.CfnDataRepositoryAssociation.AutoExportPolicyProperty(events=ALL_EVENTS),
                ),
            )

        self.csi_role = pod_identity_role(
            self,
            "CsiDriverRole",
            description="FSx CSI driver controller (EKS Pod Identity); static volumes need only read access",
        )
        self.csi_role.add_to_policy(
            iam.PolicyStatement(
                actions=["fsx:DescribeFileSystems", "fsx:DescribeDataRepositoryAssociations"],
                resources=["*"],  # Describe* calls do not support resource-level permissions
            )
        )
        acknowledge(
            self.csi_role,
            f"{PACK}-IAM5[Resource::*]",
            "fsx:DescribeFileSystems and fsx:DescribeDataRepositoryAssociations do not support resource-level "
            "permissions; the role can only read file system descriptions.",
        )
        acknowledge_inline_policy(
            self.csi_role,
            "The FSx CSI driver's two read-only describe actions, written as the inline policy of its own Pod "
            "Identity role: one policy, one principal, deleted with the role.",
        )
        self.csi_addon = addon_with_role(
            self,
            "CsiDriver",
            cluster=cluster,
            addon_name=FSX_CSI_ADDON,
            service_account=FSX_CSI_CONTROLLER_SA,
            role=self.csi_role,
        )

        self.chart = LustreVolumeChart(
            cdk8s.App(),
            "LustreVolume",
            LustreVolumeValues(
                name=props.claim_name,
                namespace=namespace,
                file_system_id=self.file_system.file_system_id,
                dns_name=self.file_system.dns_name,
                mount_name=self.file_system.mount_name,
                storage_gib=props.storage_gib,
            ),
        )
        # Applied by the cluster construct with its other workloads, once the CSI driver (csi_addon) is installed.
