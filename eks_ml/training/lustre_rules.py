"""FSx for Lustre PERSISTENT_2 sizing rules (Amazon FSx for Lustre user guide)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..errors import Problems

DEPLOYMENT_TYPE = "PERSISTENT_2"

THROUGHPUTS_MBPS_PER_TIB = (125, 250, 500, 1000)
STORAGE_STEP_GIB = 2400  # after the 1200 and 2400 GiB sizes, capacity grows in 2400 GiB steps
SMALL_SIZES_GIB = (1200, 2400)
# EFA-enabled file systems grow in larger steps, by throughput tier.
EFA_STORAGE_STEP_GIB = {125: 38400, 250: 19200, 500: 9600, 1000: 4800}
_S3_PATH = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^\s]*)?$")
_FS_PATH = re.compile(r"^/[A-Za-z0-9_.\-/]*$")


def check_lustre(
    storage_gib: int,
    throughput: int,
    efa_enabled: bool,
    problems: Problems,
    *,
    prefix: str = "file_system",
) -> None:
    if throughput not in THROUGHPUTS_MBPS_PER_TIB:
        problems.add(
            f"{prefix}.throughput_per_tib",
            throughput,
            f"one of {', '.join(map(str, THROUGHPUTS_MBPS_PER_TIB))} MB/s per TiB",
            "pick a PERSISTENT_2 throughput tier",
        )
        return
    if efa_enabled:
        step = EFA_STORAGE_STEP_GIB[throughput]
        if storage_gib < step or storage_gib % step:
            problems.add(
                f"{prefix}.storage_gib",
                storage_gib,
                f"a multiple of {step} GiB for an EFA-enabled file system at {throughput} MB/s/TiB",
                f"use {max(step, -(-storage_gib // step) * step)} GiB, or a higher throughput tier (smaller steps)",
            )
    elif storage_gib not in SMALL_SIZES_GIB and (storage_gib < STORAGE_STEP_GIB or storage_gib % STORAGE_STEP_GIB):
        nearest = max(STORAGE_STEP_GIB, -(-storage_gib // STORAGE_STEP_GIB) * STORAGE_STEP_GIB)
        problems.add(
            f"{prefix}.storage_gib",
            storage_gib,
            "1200, 2400 or a multiple of 2400 GiB",
            f"use {1200 if storage_gib < 1200 else nearest} GiB",
        )


def check_data_repository(s3_path: str, file_system_path: str, problems: Problems, *, prefix: str) -> None:
    if not _S3_PATH.match(s3_path):
        problems.add(f"{prefix}.s3_path", s3_path, "an S3 URI such as s3://my-bucket/datasets", "fix the bucket URI")
    if not _FS_PATH.match(file_system_path) or ".." in file_system_path:
        problems.add(
            f"{prefix}.file_system_path",
            file_system_path,
            "an absolute path inside the file system such as /datasets",
            "start the path with / and avoid ..",
        )


# --- Replacement guard ------------------------------------------------------------------------------------
# CloudFormation replaces an AWS::FSx::FileSystem (a new, empty file system; the old one is deleted, or
# kept with RETAIN) when a create-only property changes: SubnetIds, SecurityGroupIds, KmsKeyId,
# FileSystemType and BackupId (the resource schema's createOnlyProperties), and LustreConfiguration's
# DeploymentType and EfaEnabled, which UpdateFileSystem cannot change (EFA "must be set at creation").
# Storage can only grow. In eks-ml these follow from the training AZ (the subnet), efa_enabled (EFA, and
# the security group: EFA file systems share the nodes' EFA group), the deployment type and the size;
# the key, security group and file system keep fixed logical ids (pinned by tests/test_stateful.py).
PIN_FIELDS = ("availability_zone", "efa_enabled", "deployment_type", "storage_gib")


@dataclass(frozen=True, kw_only=True)
class FileSystemPin:
    """The create-only settings of a deployed training file system. Synth refuses a configuration that
    differs from it in a way that would replace the file system, unless replacement is allowed."""

    availability_zone: str
    efa_enabled: bool
    storage_gib: int
    deployment_type: str = DEPLOYMENT_TYPE

    def as_context(self) -> dict[str, Any]:
        """The pin as the default app's ``eks-ml:trainingFileSystemPin`` value."""
        return {
            "availabilityZone": self.availability_zone,
            "efaEnabled": self.efa_enabled,
            "storageGib": self.storage_gib,
            "deploymentType": self.deployment_type,
        }


def check_pin(
    pinned: FileSystemPin, wanted: FileSystemPin, allow_replacement: bool, problems: Problems, *, prefix: str
) -> None:
    """One problem per setting whose change would replace the pinned file system (and lose its data)."""
    if allow_replacement:
        return
    changes = {
        "availability_zone": pinned.availability_zone != wanted.availability_zone,
        "efa_enabled": pinned.efa_enabled != wanted.efa_enabled,
        "deployment_type": pinned.deployment_type != wanted.deployment_type,
        "storage_gib": wanted.storage_gib < pinned.storage_gib,  # growing is an in-place update
    }
    for name in PIN_FIELDS:
        if not changes[name]:
            continue
        kept = getattr(pinned, name)
        problems.add(
            f"{prefix}.{name}",
            getattr(wanted, name),
            f"{kept!r} as pinned ("
            + ("a smaller size" if name == "storage_gib" else "a change")
            + " would replace the deployed file system with a new, empty one)",
            f"keep {kept!r}; or, to replace the file system on purpose after copying its data out, set "
            f"{prefix}.allow_replacement=True (default app: -c eks-ml:allowFileSystemReplacement=true), delete "
            "the claim and the pods that mount it, deploy, then update the pin "
            "(eks-ml:trainingFileSystemPin) to the new settings",
        )
