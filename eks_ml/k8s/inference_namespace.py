"""The namespace model services run in, and (with EKS Auto Mode) the IngressClass its ALBs use."""

from __future__ import annotations

import cdk8s
from cdk8s_plus_35 import k8s
from constructs import Construct

AUTO_MODE_ALB_CONTROLLER = "eks.amazonaws.com/alb"


class InferenceNamespaceChart(cdk8s.Chart):
    def __init__(self, scope: Construct, construct_id: str, *, namespace: str, auto_mode_ingress_class: bool) -> None:
        super().__init__(scope, construct_id, disable_resource_name_hashes=True)
        k8s.KubeNamespace(self, "Namespace", metadata=k8s.ObjectMeta(name=namespace))
        if auto_mode_ingress_class:
            # Self-managed clusters get IngressClass "alb" from the AWS Load Balancer Controller chart.
            k8s.KubeIngressClass(
                self,
                "Alb",
                metadata=k8s.ObjectMeta(name="alb"),
                spec=k8s.IngressClassSpec(controller=AUTO_MODE_ALB_CONTROLLER),
            )
