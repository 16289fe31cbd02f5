"""What a cluster with multi-node model services installs: the LeaderWorkerSet controller (pinned chart, CRDs
by the upgrade Job), the EFA security group the services' pools select, the serving namespace and one chart
per service. Only built when the cluster has such a service."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import cdk8s
from aws_cdk import Tags
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from constructs import Construct, IDependable

from .. import helm
from ..k8s.inference_namespace import InferenceNamespaceChart
from ..k8s.multi_node import MultiNodeServiceChart
from ..manifest_bundle import PRELUDE, ManifestBundle
from ..placement import ClusterModel
from ..training.efa import efa_security_group
from .multi_node import MultiNodeServiceProps, lws_values

# Tags the EFA security group; the multi-node pools' EC2NodeClasses select it by this tag and the cluster name.
EFA_GROUP_TAG = "eks-ml.io/inference-efa-security-group"


def efa_group_tags(cluster_name: str) -> dict[str, str]:
    return {EFA_GROUP_TAG: cluster_name}


class MultiNodeServing(Construct):
    """Attributes: ``lws`` (the HelmChart), ``efa_security_group``, ``namespace_chart``, ``service_charts``
    (name -> chart)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster: eks.ICluster,
        cluster_name: str,
        vpc: ec2.IVpc,
        services: Sequence[MultiNodeServiceProps],
        namespace: str,
        model: ClusterModel,
        placement: Mapping[str, Any],
        after: Sequence[IDependable] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        self.efa_security_group = efa_security_group(self, "EfaSecurityGroup", vpc, members="multi-node model servers")
        Tags.of(self.efa_security_group).add(EFA_GROUP_TAG, cluster_name)
        # A prelude of its own: one CRD upgrade Job runs in one namespace, and LWS's (lws-system) is not that of
        # the cluster's other charts with CRDs (kube-system).
        prelude = ManifestBundle(self, PRELUDE, cluster=cluster, after=after)
        self.lws = helm.install(
            self,
            "Lws",
            cluster,
            helm.LWS,
            lws_values(placement),
            model=model,
            wait=True,  # its webhooks admit LeaderWorkerSets and their pods
            after=after,
            placement=placement,
        )
        capabilities: list[str] = []  # vLLM over Ray and NCCL adds none: baseline admits the root containers
        self.namespace_chart = InferenceNamespaceChart(
            cdk8s.App(), "MultiNodeNamespace", namespace=namespace, auto_mode=False, added_capabilities=capabilities
        )
        prelude.add_chart(self.namespace_chart)
        self.service_charts = {
            service.name: MultiNodeServiceChart(
                cdk8s.App(), f"MultiNode-{service.name}", service.values(namespace=namespace)
            )
            for service in services
        }
