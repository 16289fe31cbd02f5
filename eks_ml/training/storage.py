"""Dynamic provisioning for training: FSx for Lustre and gp3 StorageClasses, and the CSI drivers' rights."""

from __future__ import annotations

import cdk8s
from aws_cdk import Annotations, Arn, ArnFormat, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from ..cluster.pod_identity import addon_with_role, pod_identity_role
from ..k8s.storage_classes import StorageClassesChart, StorageClassValues
from ..nag import PACK, acknowledge, acknowledge_inline_policy, managed_policy
from .lustre import FSX_CSI_ADDON, FSX_CSI_CONTROLLER_SA, LUSTRE_PORT, LUSTRE_PORT_RANGE
from .storage_classes import (
    EBS_PROVISIONER,
    FSX_PROVISIONER,
    LUSTRE_VERSION,
    Gp3ClassProps,
    LustreClassProps,
    StorageClassesProps,
)

EBS_CSI_ADDON = "aws-ebs-csi-driver"
EBS_CSI_CONTROLLER_SA = "ebs-csi-controller-sa"
# AWS's managed version of the EBS CSI driver's example policy: it scopes every write to volumes and
# snapshots tagged ebs.csi.aws.com/cluster=true (aws-ebs-csi-driver @ v1.64.0, docs/install.md).
EBS_CSI_POLICY = "service-role/AmazonEBSCSIDriverPolicyV2"
# The KMS actions the EBS CSI driver needs for encrypted volumes (same source); scoped here to one key.
EBS_KMS_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKeyWithoutPlaintext", "kms:CreateGrant")
# Every file system a class creates carries this tag (the driver's extraTags parameter): the CSI role may
# create only tagged file systems and update or delete only the ones with its cluster's tag.
CLUSTER_TAG = "eks-ml.io/cluster"
FSX_SERVICE_LINKED_ROLE = "aws-service-role/fsx.amazonaws.com/AWSServiceRoleForAmazonFSx"


class TrainingStorage(Construct):
    """StorageClasses for claims that create their own volume, and what the CSI drivers need for them.

    FSx classes create file systems in ``subnet`` (the training AZ) with ``clients`` allowed in (Lustre
    ports; all traffic for EFA-enabled classes, which use the nodes' EFA group itself). The FSx CSI driver
    add-on is the static file system's when there is one (``fsx_csi_role``/``fsx_csi_addon``), else this
    construct installs it. gp3 needs the EBS CSI driver, which this construct installs with its own role.

    Attributes: ``chart`` (the StorageClasses, applied by the cluster), ``security_group`` (of dynamic file
    systems; None without FSx classes), ``fsx_csi_role``, ``fsx_csi_addon``, ``ebs_csi_role``,
    ``ebs_csi_addon``, ``volumes_key`` (encrypts gp3 volumes; None without gp3).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster: eks.ICluster,
        cluster_name: str,
        vpc: ec2.IVpc,
        subnet: ec2.ISubnet,
        clients: ec2.ISecurityGroup,
        props: StorageClassesProps,
        fsx_csi_role: iam.Role | None = None,
        fsx_csi_addon: eks.Addon | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        classes: list[StorageClassValues] = []
        self.security_group: ec2.ISecurityGroup | None = None
        self.fsx_csi_role = fsx_csi_role
        self.fsx_csi_addon = fsx_csi_addon
        if props.lustre:
            self.security_group = self._lustre_security_group(vpc, clients)
            self.fsx_csi_role, self.fsx_csi_addon = self._fsx_driver(cluster, cluster_name, fsx_csi_role, fsx_csi_addon)
            for lustre in props.lustre:
                group = clients if lustre.efa_enabled else self.security_group
                classes.append(_lustre_class(lustre, subnet.subnet_id, group.security_group_id, cluster_name))
            efa_classes = [lustre.name for lustre in props.lustre if lustre.efa_enabled]
            if efa_classes:
                Annotations.of(self).add_warning_v2("eks-ml:efa-lustre-client", efa_client_warning(efa_classes))
        self.ebs_csi_role: iam.Role | None = None
        self.ebs_csi_addon: eks.Addon | None = None
        self.volumes_key: kms.Key | None = None
        if props.gp3 is not None:
            self.volumes_key = kms.Key(
                self,
                "VolumesKey",
                description="EBS volumes of training-cluster claims (gp3 StorageClass)",
                enable_key_rotation=True,
                removal_policy=RemovalPolicy.RETAIN,  # a retained volume stays readable after the stack
            )
            self.ebs_csi_role, self.ebs_csi_addon = self._ebs_driver(cluster, self.volumes_key)
            classes.append(_gp3_class(props.gp3, self.volumes_key.key_arn))
        self.chart = StorageClassesChart(cdk8s.App(), "StorageClasses", classes)

    def _lustre_security_group(self, vpc: ec2.IVpc, clients: ec2.ISecurityGroup) -> ec2.SecurityGroup:
        group = ec2.SecurityGroup(
            self,
            "LustreSecurityGroup",
            vpc=vpc,
            description="Dynamically provisioned FSx for Lustre: Lustre ports from training nodes",
        )
        low, high = LUSTRE_PORT_RANGE
        for peer in (clients, group):  # clients, and the file servers among themselves
            group.add_ingress_rule(peer, ec2.Port.tcp(LUSTRE_PORT), "Lustre")
            group.add_ingress_rule(peer, ec2.Port.tcp_range(low, high), "Lustre")
        return group

    def _fsx_driver(
        self, cluster: eks.ICluster, cluster_name: str, role: iam.Role | None, addon: eks.Addon | None
    ) -> tuple[iam.Role, eks.Addon]:
        created = role is None or addon is None
        if role is None or addon is None:
            role = pod_identity_role(
                self, "FsxCsiDriverRole", description="FSx CSI driver controller (EKS Pod Identity)"
            )
            role.add_to_policy(
                iam.PolicyStatement(actions=["fsx:DescribeFileSystems"], resources=["*"])  # no resource-level
            )
            acknowledge(
                role,
                f"{PACK}-IAM5[Resource::*]",
                "fsx:DescribeFileSystems does not support resource-level permissions; it only reads descriptions.",
            )
            addon = addon_with_role(
                self,
                "FsxCsiDriver",
                cluster=cluster,
                addon_name=FSX_CSI_ADDON,
                service_account=FSX_CSI_CONTROLLER_SA,
                role=role,
            )
        grant_dynamic_provisioning(self, role, cluster_name)
        if created:  # the static file system acknowledged its own role's inline policy
            acknowledge_inline_policy(
                role,
                "The FSx CSI driver's permissions, written as the inline policy of its own Pod Identity role: "
                "one policy, one principal, deleted with the role.",
            )
        return role, addon

    def _ebs_driver(self, cluster: eks.ICluster, key: kms.Key) -> tuple[iam.Role, eks.Addon]:
        role = pod_identity_role(self, "EbsCsiDriverRole", description="EBS CSI driver controller (EKS Pod Identity)")
        role.add_managed_policy(iam.ManagedPolicy.from_aws_managed_policy_name(EBS_CSI_POLICY))
        role.add_to_policy(iam.PolicyStatement(actions=list(EBS_KMS_ACTIONS), resources=[key.key_arn]))
        acknowledge(
            role,
            managed_policy(EBS_CSI_POLICY),
            "AWS maintains this policy with the EBS CSI driver; it allows writes only to volumes and snapshots "
            "the driver tagged ebs.csi.aws.com/cluster=true.",
        )
        acknowledge_inline_policy(
            role,
            "The EBS CSI driver's use of the one KMS key of the gp3 class, inline on its own Pod Identity role.",
        )
        addon = addon_with_role(
            self,
            "EbsCsiDriver",
            cluster=cluster,
            addon_name=EBS_CSI_ADDON,
            service_account=EBS_CSI_CONTROLLER_SA,
            role=role,
        )
        return role, addon


def efa_client_warning(class_names: list[str]) -> str:
    return (
        f"StorageClass {', '.join(class_names)} creates EFA-enabled file systems, but eks-ml does not configure "
        "the nodes' Lustre client for EFA (LNet EFA interfaces): the nodes reach them over TCP until you do. "
        "See the README, 'EFA-enabled FSx for Lustre: the client side'."
    )


def grant_dynamic_provisioning(scope: Construct, role: iam.Role, cluster_name: str) -> None:
    """What the FSx CSI driver calls to create, grow and delete file systems (aws-fsx-csi-driver @ v1.9.0:
    CreateFileSystem with tags, UpdateFileSystem, DeleteFileSystem, DescribeFileSystems; docs/install.md
    lists these plus fsx:TagResource and the FSx service-linked role), scoped to this cluster's tag."""
    stack = Stack.of(scope)
    file_systems = Arn.format(
        {
            "service": "fsx",
            "resource": "file-system",
            "resource_name": "*",
            "arn_format": ArnFormat.SLASH_RESOURCE_NAME,
        },
        stack,
    )
    # Creating (and tagging at creation, which FSx authorizes as fsx:TagResource) only with this cluster's tag.
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["fsx:CreateFileSystem", "fsx:TagResource"],
            resources=[file_systems],
            conditions={"StringEquals": {f"aws:RequestTag/{CLUSTER_TAG}": cluster_name}},
        )
    )
    # Growing and deleting only file systems this cluster's classes created.
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["fsx:UpdateFileSystem", "fsx:DeleteFileSystem"],
            resources=[file_systems],
            conditions={"StringEquals": {f"aws:ResourceTag/{CLUSTER_TAG}": cluster_name}},
        )
    )
    # The first file system of an account creates FSx's service-linked role.
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["iam:CreateServiceLinkedRole"],
            resources=[
                Arn.format(
                    {"service": "iam", "region": "", "resource": "role", "resource_name": FSX_SERVICE_LINKED_ROLE},
                    stack,
                )
            ],
            conditions={"StringLike": {"iam:AWSServiceName": "fsx.amazonaws.com"}},
        )
    )
    acknowledge(
        role,
        f"{PACK}-IAM5[Resource::arn:<AWS::Partition>:fsx:<AWS::Region>:<AWS::AccountId>:file-system/*]",
        "File systems created by claims have ids unknown at synth; create is conditioned on the request "
        f"carrying the {CLUSTER_TAG} tag and update/delete on the file system having it.",
    )


def _lustre_class(props: LustreClassProps, subnet_id: str, group_id: str, cluster_name: str) -> StorageClassValues:
    parameters = {
        "subnetId": subnet_id,
        "securityGroupIds": group_id,
        "deploymentType": props.deployment.value,
        "fileSystemTypeVersion": LUSTRE_VERSION,
        "dataCompressionType": "LZ4",
        "extraTags": f"{CLUSTER_TAG}={cluster_name}",
    }
    if props.persistent:
        parameters["perUnitStorageThroughput"] = str(props.resolved_throughput)
        # EFA needs a metadata configuration; AUTOMATIC sizes metadata IOPS with storage.
        parameters["metadataConfigurationMode"] = "AUTOMATIC"
        if props.efa_enabled:
            parameters["efaEnabled"] = "true"
    return StorageClassValues(
        name=props.name,
        provisioner=FSX_PROVISIONER,
        parameters=parameters,
        reclaim_policy=props.resolved_reclaim_policy.value,
        # The file system's subnet is fixed by the class: creating it at claim time (it takes minutes) lets
        # it be ready by the time Kueue admits the job.
        volume_binding_mode="Immediate",
        allow_volume_expansion=props.persistent,
        mount_options=("flock",),
    )


def _gp3_class(props: Gp3ClassProps, key_arn: str) -> StorageClassValues:
    return StorageClassValues(
        name=props.name,
        provisioner=EBS_PROVISIONER,
        parameters={"type": "gp3", "encrypted": "true", "kmsKeyId": key_arn, "csi.storage.k8s.io/fstype": "ext4"},
        reclaim_policy=props.reclaim_policy.value,
        volume_binding_mode="WaitForFirstConsumer",  # an EBS volume is zonal: create it where the pod lands
        allow_volume_expansion=True,
        default_class=props.default_class,
    )
