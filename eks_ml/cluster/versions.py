"""Supported Kubernetes versions: the kubectl layer and the pinned EKS add-on versions for each.

A version is supported when PyPI has a kubectl Lambda layer for it (aws-cdk.lambda-layer-kubectl-vNN):
aws_eks_v2 applies manifests and Helm charts through that layer, and a mismatched kubectl is
unsupported by Kubernetes' version-skew policy.

Add-on versions come from the "latest version for each Kubernetes version" tables of the Amazon EKS
User Guide (managing-kube-proxy, managing-coredns, managing-vpc-cni; read 2026-11). Where that guide
gave no version for a Kubernetes version, the entry is ``None`` and EKS installs its default version
for the cluster's Kubernetes version; pin one with ``BaseClusterProps.addon_versions`` after checking
``aws eks describe-addon-versions --kubernetes-version 1.35 --addon-name NAME``.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType, ModuleType

from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from ..errors import ValidationError

VPC_CNI = "vpc-cni"
KUBE_PROXY = "kube-proxy"
COREDNS = "coredns"
POD_IDENTITY_AGENT = "eks-pod-identity-agent"
METRICS_SERVER = "metrics-server"
NODE_MONITORING_AGENT = "eks-node-monitoring-agent"

CORE_ADDONS = (VPC_CNI, KUBE_PROXY, COREDNS, POD_IDENTITY_AGENT, METRICS_SERVER, NODE_MONITORING_AGENT)

# vpc-cni v1.20.4-eksbuild.1 is the guide's latest for 1.28-1.34; it is above the 1.18.5 that
# efa-only network interfaces need.
_VPC_CNI_1_20 = "v1.20.4-eksbuild.1"


@dataclass(frozen=True)
class KubernetesRelease:
    """One supported Kubernetes minor version."""

    version: str
    addon_versions: Mapping[str, str | None]

    @property
    def _suffix(self) -> str:
        return self.version.split(".")[1]  # kubectl-v35 is the layer for 1.35

    @property
    def kubectl_layer_package(self) -> str:
        return f"aws-cdk.lambda-layer-kubectl-v{self._suffix}"

    @property
    def eks_version(self) -> eks.KubernetesVersion:
        return eks.KubernetesVersion.of(self.version)

    def check_kubectl_layer(self, field: str = "kubernetes_version") -> ModuleType:
        """The installed kubectl layer package for this version; a ValidationError naming ``field`` if absent."""
        try:
            return importlib.import_module(f"aws_cdk.lambda_layer_kubectl_v{self._suffix}")
        except ImportError:
            raise ValidationError.single(
                field,
                self.version,
                "a version whose kubectl layer package is installed",
                f"pip install {self.kubectl_layer_package} (or use {DEFAULT_KUBERNETES_VERSION}, "
                "whose layer eks-ml installs)",
            ) from None

    def kubectl_layer(self, scope: Construct, construct_id: str) -> lambda_.ILayerVersion:
        """The kubectl layer for this version; a ValidationError if its package is not installed."""
        module = self.check_kubectl_layer()
        layer: lambda_.ILayerVersion = getattr(module, f"KubectlV{self._suffix}Layer")(scope, construct_id)
        return layer


def _addons(vpc_cni: str | None, kube_proxy: str, coredns: str) -> Mapping[str, str | None]:
    return MappingProxyType(
        {
            VPC_CNI: vpc_cni,
            KUBE_PROXY: kube_proxy,
            COREDNS: coredns,
            POD_IDENTITY_AGENT: None,
            METRICS_SERVER: None,
            NODE_MONITORING_AGENT: None,
        }
    )


RELEASES: Mapping[str, KubernetesRelease] = MappingProxyType(
    {
        "1.33": KubernetesRelease("1.33", _addons(_VPC_CNI_1_20, "v1.33.10-eksbuild.13", "v1.12.4-eksbuild.18")),
        "1.34": KubernetesRelease("1.34", _addons(_VPC_CNI_1_20, "v1.34.6-eksbuild.13", "v1.13.2-eksbuild.11")),
        "1.35": KubernetesRelease(
            "1.35",
            _addons(None, "v1.35.3-eksbuild.13", "v1.14.3-eksbuild.3"),
        ),
    }
)

# The newest version EKS supports that also has a kubectl layer on PyPI (v35 is the newest layer).
DEFAULT_KUBERNETES_VERSION = "1.35"


def release_for(version: str, field: str = "kubernetes_version") -> KubernetesRelease:
    release = RELEASES.get(version)
    if release is None:
        raise ValidationError.single(
            field,
            version,
            f"one of {', '.join(RELEASES)} (versions with a kubectl layer on PyPI)",
            f"use {DEFAULT_KUBERNETES_VERSION}; newer versions need their aws-cdk.lambda-layer-kubectl "
            "package and a row in eks_ml/cluster/versions.py",
        )
    return release
