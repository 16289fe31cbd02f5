"""StorageClasses for dynamically provisioned volumes (FSx for Lustre, EBS gp3)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import cdk8s
from cdk8s_plus_35 import k8s
from constructs import Construct

from .._naming import pascal

# The annotation that makes a class the one PVCs without storageClassName get (Kubernetes docs,
# "Change the default StorageClass").
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"


@dataclass(frozen=True, kw_only=True)
class StorageClassValues:
    """One StorageClass, as plain values; parameter values may be CDK tokens (subnet, group, key ids)."""

    name: str
    provisioner: str
    parameters: Mapping[str, str]
    reclaim_policy: str  # Delete or Retain
    volume_binding_mode: str  # Immediate or WaitForFirstConsumer
    allow_volume_expansion: bool
    mount_options: Sequence[str] = ()
    default_class: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)


class StorageClassesChart(cdk8s.Chart):
    """Cluster-scoped StorageClasses. A class's parameters are immutable in Kubernetes: changing one means
    deleting and re-creating the class (volumes already provisioned keep what they were created with)."""

    def __init__(self, scope: Construct, construct_id: str, classes: Sequence[StorageClassValues]) -> None:
        super().__init__(scope, construct_id, disable_resource_name_hashes=True)
        self.classes = {
            values.name: k8s.KubeStorageClass(
                self,
                pascal(values.name),
                metadata=k8s.ObjectMeta(
                    name=values.name,
                    annotations={DEFAULT_CLASS_ANNOTATION: "true"} if values.default_class else None,
                    labels=dict(values.labels) or None,
                ),
                provisioner=values.provisioner,
                parameters=dict(values.parameters),
                reclaim_policy=values.reclaim_policy,
                volume_binding_mode=values.volume_binding_mode,
                allow_volume_expansion=values.allow_volume_expansion,
                mount_options=list(values.mount_options) or None,
            )
            for values in classes
        }
