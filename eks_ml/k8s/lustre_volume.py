"""A static PersistentVolume for an FSx for Lustre file system and a ReadWriteMany claim on it."""

from __future__ import annotations

from dataclasses import dataclass

import cdk8s
from cdk8s_plus_35 import k8s
from constructs import Construct

FSX_CSI_DRIVER = "fsx.csi.aws.com"


@dataclass(frozen=True, kw_only=True)
class LustreVolumeValues:
    """Plain values the chart needs; the three file-system attributes may be CDK tokens."""

    name: str
    namespace: str
    file_system_id: str
    dns_name: str
    mount_name: str
    storage_gib: int


class LustreVolumeChart(cdk8s.Chart):
    """PersistentVolume (Retain: deleting the claim never deletes data) and a RWX claim bound to exactly
    that volume, so every pod of a job mounts the same file system. The namespace must exist: in a
    TrainingCluster the queues chart creates it first.

    The volume is named after the file system (``<name>-<file system id>``, e.g. ``fsx-fs-0abc...``): a
    volume's source is immutable, so a replaced file system gets a new volume object (the old one is
    pruned, its data kept) instead of a failed patch of the old one. The claim keeps its name, which jobs
    mount."""

    def __init__(self, scope: Construct, construct_id: str, values: LustreVolumeValues) -> None:
        super().__init__(scope, construct_id, disable_resource_name_hashes=True)
        capacity = {"storage": k8s.Quantity.from_string(f"{values.storage_gib}Gi")}
        # File system ids (fs-<17 hex digits>) are valid in a DNS-1123 name.
        self.volume_name = f"{values.name}-{values.file_system_id}"
        self.volume = k8s.KubePersistentVolume(
            self,
            "Volume",
            metadata=k8s.ObjectMeta(name=self.volume_name),
            spec=k8s.PersistentVolumeSpec(
                capacity=capacity,
                access_modes=["ReadWriteMany"],
                persistent_volume_reclaim_policy="Retain",
                storage_class_name="",  # static binding: no StorageClass may provision instead
                mount_options=["flock"],
                csi=k8s.CsiPersistentVolumeSource(
                    driver=FSX_CSI_DRIVER,
                    volume_handle=values.file_system_id,
                    volume_attributes={"dnsname": values.dns_name, "mountname": values.mount_name},
                ),
            ),
        )
        self.claim = k8s.KubePersistentVolumeClaim(
            self,
            "Claim",
            metadata=k8s.ObjectMeta(name=values.name, namespace=values.namespace),
            spec=k8s.PersistentVolumeClaimSpec(
                access_modes=["ReadWriteMany"],
                storage_class_name="",
                volume_name=self.volume_name,
                resources=k8s.VolumeResourceRequirements(requests=capacity),
            ),
        )
