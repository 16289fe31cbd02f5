"""Props and rules of the training cluster's StorageClasses: FSx for Lustre (scratch, persistent) and gp3.

StorageClass parameters of the FSx for Lustre CSI driver (kubernetes-sigs/aws-fsx-csi-driver @ v1.9.0,
pkg/driver/controller.go and examples/kubernetes/dynamic_provisioning/README.md): subnetId,
securityGroupIds, deploymentType, kmsKeyId (PERSISTENT_* only), perUnitStorageThroughput (PERSISTENT_*
only), dataCompressionType, efaEnabled (PERSISTENT_2 with a metadata configuration),
metadataConfigurationMode (PERSISTENT_2: AUTOMATIC or USER_PROVISIONED), fileSystemTypeVersion and
extraTags ("k=v,k=v"); efaEnabled and metadataConfigurationMode are read from v1.3.0 on, so every current
EKS add-on version takes them. The driver rounds a claim up to 1200 GiB, 2400 GiB, then multiples of 2400 GiB for
SCRATCH_2 and PERSISTENT_2 (pkg/util/util.go RoundUpVolumeSize); it does not know EFA's larger steps.

EBS CSI driver parameters (kubernetes-sigs/aws-ebs-csi-driver, docs/parameters.md): type, encrypted,
kmsKeyId, csi.storage.k8s.io/fstype.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum

from ..errors import Problems
from ..guards import expect_all, expect_bool, expect_enum, expect_instance, expect_int, expect_list_of, expect_str
from ..kube_names import check_dns_subdomain
from .lustre_rules import EFA_STORAGE_STEP_GIB, THROUGHPUTS_MBPS_PER_TIB

FSX_PROVISIONER = "fsx.csi.aws.com"
EBS_PROVISIONER = "ebs.csi.aws.com"
LUSTRE_VERSION = "2.15"  # the static file system's version (eks_ml.training.lustre)


class LustreDeployment(Enum):
    """The FSx for Lustre deployment types eks-ml provisions dynamically (the SSD, Lustre 2.15 ones)."""

    SCRATCH_2 = "SCRATCH_2"  # temporary, no replication, 200 MB/s/TiB baseline; for staging and caches
    PERSISTENT_2 = "PERSISTENT_2"  # replicated in its AZ, throughput chosen per TiB; for data to keep


class ReclaimPolicy(Enum):
    """What happens to a provisioned volume (the file system, the EBS volume) when its claim is deleted."""

    DELETE = "Delete"
    RETAIN = "Retain"


@dataclass(frozen=True, kw_only=True)
class LustreClassProps:
    """A StorageClass that creates one FSx for Lustre file system per claim, in the training nodes' subnet.

    name: the class name claims use. deployment: SCRATCH_2 or PERSISTENT_2.
    throughput_per_tib: PERSISTENT_2 only (125, 250, 500 or 1000 MB/s per TiB). Default: 250 for
        PERSISTENT_2, none for SCRATCH_2 (its throughput is fixed).
    efa_enabled: PERSISTENT_2 only: the file system is reached over EFA (set at creation only). Claims must
        then ask for a multiple of the EFA storage step (see the README). Default: off.
    reclaim_policy: Default: Delete for SCRATCH_2 (scratch data is disposable), Retain for PERSISTENT_2
        (deleting a claim never deletes its data; delete the file system yourself).
    """

    name: str
    deployment: LustreDeployment = LustreDeployment.SCRATCH_2
    throughput_per_tib: int | None = None
    efa_enabled: bool = False
    reclaim_policy: ReclaimPolicy | None = None

    @property
    def persistent(self) -> bool:
        return self.deployment is LustreDeployment.PERSISTENT_2

    @property
    def resolved_throughput(self) -> int | None:
        if not self.persistent:
            return None
        return DEFAULT_PERSISTENT_THROUGHPUT if self.throughput_per_tib is None else self.throughput_per_tib

    @property
    def resolved_reclaim_policy(self) -> ReclaimPolicy:
        if self.reclaim_policy is not None:
            return self.reclaim_policy
        return ReclaimPolicy.RETAIN if self.persistent else ReclaimPolicy.DELETE

    @property
    def smallest_claim_gib(self) -> int:
        """The smallest claim that creates a valid file system of this class."""
        throughput = self.resolved_throughput
        if self.efa_enabled and throughput is not None:
            return EFA_STORAGE_STEP_GIB[throughput]
        return LUSTRE_SMALLEST_GIB

    def check(self, field: str, problems: Problems) -> None:
        if not expect_all(
            expect_str(self.name, f"{field}.name", problems),
            expect_enum(self.deployment, LustreDeployment, f"{field}.deployment", problems),
            self.throughput_per_tib is None
            or expect_int(self.throughput_per_tib, f"{field}.throughput_per_tib", problems),
            expect_bool(self.efa_enabled, f"{field}.efa_enabled", problems),
            self.reclaim_policy is None
            or expect_enum(self.reclaim_policy, ReclaimPolicy, f"{field}.reclaim_policy", problems),
        ):
            return
        check_dns_subdomain(self.name, f"{field}.name", problems)
        if not self.persistent:
            if self.throughput_per_tib is not None:
                problems.add(
                    f"{field}.throughput_per_tib",
                    self.throughput_per_tib,
                    "no throughput for SCRATCH_2 (its throughput is fixed at 200 MB/s per TiB)",
                    "drop throughput_per_tib, or use deployment=LustreDeployment.PERSISTENT_2",
                )
            if self.efa_enabled:
                problems.add(
                    f"{field}.efa_enabled",
                    True,
                    "EFA only on PERSISTENT_2 file systems (with a metadata configuration, which eks-ml sets)",
                    "use deployment=LustreDeployment.PERSISTENT_2, or drop efa_enabled",
                )
        elif self.throughput_per_tib is not None and self.throughput_per_tib not in THROUGHPUTS_MBPS_PER_TIB:
            problems.add(
                f"{field}.throughput_per_tib",
                self.throughput_per_tib,
                f"one of {', '.join(map(str, THROUGHPUTS_MBPS_PER_TIB))} MB/s per TiB",
                "pick a PERSISTENT_2 throughput tier",
            )


@dataclass(frozen=True, kw_only=True)
class Gp3ClassProps:
    """A StorageClass of encrypted EBS gp3 volumes (ReadWriteOnce; created in the AZ of the pod's node).

    name: Default: gp3. default_class: Default: True, so claims without a class get gp3 (EKS marks no
        class as default since Kubernetes 1.30). reclaim_policy: Default: Delete.
    """

    name: str = "gp3"
    default_class: bool = True
    reclaim_policy: ReclaimPolicy = ReclaimPolicy.DELETE

    def check(self, field: str, problems: Problems) -> None:
        if expect_all(
            expect_str(self.name, f"{field}.name", problems),
            expect_bool(self.default_class, f"{field}.default_class", problems),
            expect_enum(self.reclaim_policy, ReclaimPolicy, f"{field}.reclaim_policy", problems),
        ):
            check_dns_subdomain(self.name, f"{field}.name", problems)


def default_lustre_classes() -> tuple[LustreClassProps, ...]:
    return (
        LustreClassProps(name="fsx-scratch"),
        LustreClassProps(name="fsx-persistent", deployment=LustreDeployment.PERSISTENT_2),
    )


@dataclass(frozen=True, kw_only=True)
class StorageClassesProps:
    """The training cluster's StorageClasses, for claims that create their own volume.

    lustre: Default: ``fsx-scratch`` (SCRATCH_2) and ``fsx-persistent`` (PERSISTENT_2, 250 MB/s/TiB); no
        FSx class is ever the default class (each claim creates a billed file system).
    gp3: Default: the ``gp3`` class, marked default. None: no EBS class and no EBS CSI driver.
    """

    lustre: Sequence[LustreClassProps] = field(default_factory=default_lustre_classes)
    gp3: Gp3ClassProps | None = field(default_factory=Gp3ClassProps)

    def check(self, problems: Problems, *, taken: Sequence[str] = ()) -> None:
        """Every rule; ``taken`` are names of other storage classes the cluster already has (none yet)."""
        field = "storage_classes"
        if not expect_all(
            expect_list_of(self.lustre, LustreClassProps, f"{field}.lustre", problems),
            self.gp3 is None
            or expect_instance(self.gp3, Gp3ClassProps, f"{field}.gp3", problems, fix="pass Gp3ClassProps() or None"),
        ):
            return
        for index, lustre in enumerate(self.lustre):
            lustre.check(f"{field}.lustre[{index}]", problems)
        if self.gp3 is not None:
            self.gp3.check(f"{field}.gp3", problems)
        names = [*taken, *self.names]
        for name in sorted({n for n in names if isinstance(n, str) and names.count(n) > 1}):
            problems.add(f"{field}.name", name, "a distinct name for every storage class", "rename one of them")

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.lustre] + ([self.gp3.name] if self.gp3 is not None else [])

    def summary(self) -> list[str]:
        """One line per class, for ``eks-ml plan``."""
        lines = []
        for c in self.lustre:
            throughput = f"{c.resolved_throughput} MB/s/TiB" if c.resolved_throughput else "200 MB/s/TiB"
            lines.append(
                f"{c.name}: FSx for Lustre {c.deployment.value}, {throughput}{', EFA' if c.efa_enabled else ''}, "
                f"a file system per claim (from {c.smallest_claim_gib} GiB), {c.resolved_reclaim_policy.value} "
                "on claim deletion"
            )
        if self.gp3 is not None:
            default = " (default class)" if self.gp3.default_class else ""
            lines.append(
                f"{self.gp3.name}{default}: EBS gp3, encrypted, {self.gp3.reclaim_policy.value} on claim deletion"
            )
        return lines


DEFAULT_PERSISTENT_THROUGHPUT = 250
LUSTRE_SMALLEST_GIB = 1200
