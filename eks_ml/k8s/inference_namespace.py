"""The namespace model services run in, and (with EKS Auto Mode) the IngressClass its ALBs use."""

from __future__ import annotations

from collections.abc import Sequence

import cdk8s
from cdk8s_plus_35 import k8s
from constructs import Construct

from . import pod_security

AUTO_MODE_ALB_CONTROLLER = "eks.amazonaws.com/alb"


class InferenceNamespaceChart(cdk8s.Chart):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        namespace: str,
        auto_mode_ingress_class: bool,
        added_capabilities: Sequence[str] = (),
    ) -> None:
        """``added_capabilities``: every capability a model server in the namespace adds."""
        super().__init__(scope, construct_id, disable_resource_name_hashes=True)
        # vLLM's images run as root, which restricted refuses: baseline, or privileged when a server adds a
        # capability baseline does not allow (IPC_LOCK, which the Neuron runtime needs to lock host buffers).
        level = pod_security.level_for_root_containers(added_capabilities)
        pod_security.namespace(self, "Namespace", namespace, level)
        if auto_mode_ingress_class:
            # Self-managed clusters get IngressClass "alb" from the AWS Load Balancer Controller chart.
            k8s.KubeIngressClass(
                self,
                "Alb",
                metadata=k8s.ObjectMeta(name="alb"),
                spec=k8s.IngressClassSpec(controller=AUTO_MODE_ALB_CONTROLLER),
            )
