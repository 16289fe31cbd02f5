"""Karpenter NodePools and EC2NodeClasses (or EKS Auto Mode NodePools) from plain values."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import cdk8s
from constructs import Construct

NODEPOOL_API = "karpenter.sh/v1"
NODECLASS_API = "karpenter.k8s.aws/v1"
AUTO_MODE_NODECLASS = {"group": "eks.amazonaws.com", "kind": "NodeClass", "name": "default"}
BOTTLEROCKET = "bottlerocket"
# Bottlerocket's OS volume at Karpenter's default size; images, logs and kubelet state go on the data volume
# /dev/xvdb (karpenter.sh docs v1.14, concepts/nodeclasses, "spec.blockDeviceMappings"). The NVIDIA variants'
# OS image is exactly 4 GiB (bottlerocket-os/bottlerocket, variants/aws-k8s-*-nvidia/Cargo.toml:
# os-image-size-gib = 4; 2 GiB for the others), so the volume holds it: never make it smaller.
BOTTLEROCKET_OS_VOLUME = "4Gi"


@dataclass(frozen=True, kw_only=True)
class NodeClassValues:
    """What every EC2NodeClass shares: AMI aliases (AMI family -> pinned alias), role, discovery, and
    locked-down instance settings."""

    ami_aliases: Mapping[str, str]
    role: str
    subnet_tags: Mapping[str, str]
    security_group_tags: Mapping[str, str]
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class PoolValues:
    name: str
    requirements: Sequence[Mapping[str, Any]]
    labels: Mapping[str, str]
    taints: Sequence[Mapping[str, str]]
    limits: Mapping[str, str]
    root_volume_gib: int
    consolidate_after: str
    expire_after: str
    disruption_budget: str
    # EC2NodeClass networkInterfaces (EFA pools: the catalog's layout); empty leaves EC2's single default ENA.
    network_interfaces: Sequence[Mapping[str, Any]] = ()
    # Security group selector terms beside the node class's own (EFA pools: the group that admits itself).
    extra_security_group_tags: Sequence[Mapping[str, str]] = ()
    # Key of NodeClassValues.ami_aliases: al2023 or bottlerocket.
    ami_family: str = "al2023"


class NodePoolsChart(cdk8s.Chart):
    """One NodePool per pool; with ``node_class`` an EC2NodeClass of the same name for each, without it
    (EKS Auto Mode) the pools use Auto Mode's built-in ``default`` NodeClass."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        pools: Sequence[PoolValues],
        node_class: NodeClassValues | None,
    ) -> None:
        super().__init__(scope, construct_id, disable_resource_name_hashes=True)
        for pool in pools:
            if node_class is not None:
                self._object(
                    f"NodeClass-{pool.name}",
                    NODECLASS_API,
                    "EC2NodeClass",
                    pool.name,
                    _node_class_spec(pool, node_class),
                )
                ref = {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": pool.name}
            else:
                ref = dict(AUTO_MODE_NODECLASS)
            self._object(f"NodePool-{pool.name}", NODEPOOL_API, "NodePool", pool.name, _node_pool_spec(pool, ref))

    def _object(self, construct_id: str, api_version: str, kind: str, name: str, spec: dict[str, Any]) -> None:
        obj = cdk8s.ApiObject(
            self, construct_id, api_version=api_version, kind=kind, metadata=cdk8s.ApiObjectMetadata(name=name)
        )
        obj.add_json_patch(cdk8s.JsonPatch.add("/spec", spec))


def _node_pool_spec(pool: PoolValues, node_class_ref: dict[str, str]) -> dict[str, Any]:
    return {
        "template": {
            "metadata": {"labels": dict(pool.labels)},
            "spec": {
                "nodeClassRef": node_class_ref,
                "requirements": [dict(r) for r in pool.requirements],
                "taints": [dict(t) for t in pool.taints],
                "expireAfter": pool.expire_after,
            },
        },
        "limits": dict(pool.limits),
        "disruption": {
            # Only empty nodes are consolidated: a node serving a model is never drained to save money.
            "consolidationPolicy": "WhenEmpty",
            "consolidateAfter": pool.consolidate_after,
            "budgets": [{"nodes": pool.disruption_budget}],
        },
    }


def _ebs(size: str) -> dict[str, Any]:
    return {"volumeSize": size, "volumeType": "gp3", "encrypted": True, "deleteOnTermination": True}


def _block_devices(pool: PoolValues) -> list[dict[str, Any]]:
    data = _ebs(f"{pool.root_volume_gib}Gi")
    if pool.ami_family == BOTTLEROCKET:
        return [
            {"deviceName": "/dev/xvda", "ebs": _ebs(BOTTLEROCKET_OS_VOLUME)},
            {"deviceName": "/dev/xvdb", "ebs": data},
        ]
    return [{"deviceName": "/dev/xvda", "ebs": data}]


def _node_class_spec(pool: PoolValues, values: NodeClassValues) -> dict[str, Any]:
    return {
        "role": values.role,
        "amiSelectorTerms": [{"alias": values.ami_aliases[pool.ami_family]}],
        "subnetSelectorTerms": [{"tags": dict(values.subnet_tags)}],
        "securityGroupSelectorTerms": [
            {"tags": dict(tags)} for tags in (values.security_group_tags, *pool.extra_security_group_tags)
        ],
        **({"networkInterfaces": [dict(i) for i in pool.network_interfaces]} if pool.network_interfaces else {}),
        "metadataOptions": {"httpEndpoint": "enabled", "httpTokens": "required", "httpPutResponseHopLimit": 2},
        "blockDeviceMappings": _block_devices(pool),
        # Local NVMe (g5, g6, g6e) becomes one RAID0 for containerd and kubelet: model images unpack there. AL2023
        # mounts it through nodeadm's NodeConfig, Bottlerocket through `apiclient ephemeral-storage` bootstrap
        # commands Karpenter adds (eks_ml.inference.node_os has the sources).
        "instanceStorePolicy": "RAID0",
        "tags": dict(values.tags),
    }
