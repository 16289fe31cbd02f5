"""The namespace model services run in: default-deny NetworkPolicies plus DNS, and (with EKS Auto Mode)
the IngressClass its ALBs use and the switch that makes Auto Mode enforce NetworkPolicies."""

from __future__ import annotations

from collections.abc import Sequence

import cdk8s
from cdk8s_plus_35 import k8s
from constructs import Construct

from . import pod_security
from .network_policies import allow_dns, default_deny

AUTO_MODE_ALB_CONTROLLER = "eks.amazonaws.com/alb"
# EKS Auto Mode enforces NetworkPolicies once this ConfigMap turns its network policy controller on
# (Amazon EKS User Guide, "Use network policies with EKS Auto Mode"); the nodes' NodeClass must also allow
# them, and the built-in NodeClass "default" that eks-ml's Auto Mode pools use reports
# networkPolicy: DefaultAllow (standard semantics: pods no policy selects keep all traffic).
AUTO_MODE_NETWORK_POLICY_CONFIG_MAP = "amazon-vpc-cni"  # in kube-system
AUTO_MODE_NETWORK_POLICY_KEY = "enable-network-policy-controller"


class InferenceNamespaceChart(cdk8s.Chart):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        namespace: str,
        auto_mode: bool,
        added_capabilities: Sequence[str] = (),
    ) -> None:
        """``added_capabilities``: every capability a model server in the namespace adds."""
        super().__init__(scope, construct_id, disable_resource_name_hashes=True)
        # vLLM's images run as root, which restricted refuses: baseline, or privileged when a server adds a
        # capability baseline does not allow (IPC_LOCK, which the Neuron runtime needs to lock host buffers).
        level = pod_security.level_for_root_containers(added_capabilities)
        pod_security.namespace(self, "Namespace", namespace, level)
        default_deny(self, namespace)
        allow_dns(self, namespace, auto_mode=auto_mode)
        if auto_mode:
            # Self-managed clusters get IngressClass "alb" from the AWS Load Balancer Controller chart.
            k8s.KubeIngressClass(
                self,
                "Alb",
                metadata=k8s.ObjectMeta(name="alb"),
                spec=k8s.IngressClassSpec(controller=AUTO_MODE_ALB_CONTROLLER),
            )
            k8s.KubeConfigMap(
                self,
                "NetworkPolicyController",
                metadata=k8s.ObjectMeta(name=AUTO_MODE_NETWORK_POLICY_CONFIG_MAP, namespace="kube-system"),
                data={AUTO_MODE_NETWORK_POLICY_KEY: "true"},
            )
