"""neuron-monitor on every Neuron node, serving its Prometheus metrics (neuroncore_utilization_ratio,
execution_errors_total, hardware_ecc_events_total, ...) for the managed scraper.

Follows the DaemonSet the AWS Neuron SDK publishes (src/k8/k8s-neuron-monitor-daemonset.yml): image,
entrypoint, port, resources and the privileged context it needs to read the Neuron driver.
"""

from __future__ import annotations

from collections.abc import Sequence

import cdk8s
from cdk8s_plus_35 import k8s
from constructs import Construct

from ..catalog.spec import NEURON_DEVICE_RESOURCE
from . import pod_security
from .burn_in import BURN_IN_KEY
from .scrape import scrape_annotations

NAMESPACE = "neuron-monitor"
IMAGE = "public.ecr.aws/neuron/neuron-monitor:1.3.0"
PORT = 8000


class NeuronMonitorChart(cdk8s.Chart):
    def __init__(self, scope: Construct, construct_id: str, *, instance_types: Sequence[str]) -> None:
        super().__init__(scope, construct_id, disable_resource_name_hashes=True)
        labels = {"app.kubernetes.io/name": "neuron-monitor"}
        # privileged: neuron-monitor runs a privileged container to read every Neuron device through the driver.
        pod_security.namespace(self, "Namespace", NAMESPACE, pod_security.PodSecurityLevel.PRIVILEGED)
        k8s.KubeDaemonSet(
            self,
            "DaemonSet",
            metadata=k8s.ObjectMeta(name="neuron-monitor", namespace=NAMESPACE, labels=labels),
            spec=k8s.DaemonSetSpec(
                selector=k8s.LabelSelector(match_labels=labels),
                template=k8s.PodTemplateSpec(
                    metadata=k8s.ObjectMeta(
                        labels=labels,
                        annotations=scrape_annotations(PORT),
                    ),
                    spec=k8s.PodSpec(
                        automount_service_account_token=False,  # it reads devices, never the Kubernetes API
                        affinity=k8s.Affinity(
                            node_affinity=k8s.NodeAffinity(
                                required_during_scheduling_ignored_during_execution=k8s.NodeSelector(
                                    node_selector_terms=[
                                        k8s.NodeSelectorTerm(
                                            match_expressions=[
                                                k8s.NodeSelectorRequirement(
                                                    key="node.kubernetes.io/instance-type",
                                                    operator="In",
                                                    values=sorted(instance_types),
                                                )
                                            ]
                                        )
                                    ]
                                )
                            )
                        ),
                        # Training nodes before their burn-in passed too: a node is watched from the start.
                        tolerations=[
                            k8s.Toleration(key=NEURON_DEVICE_RESOURCE, operator="Exists", effect="NoSchedule"),
                            k8s.Toleration(key=BURN_IN_KEY, operator="Exists", effect="NoSchedule"),
                        ],
                        containers=[
                            k8s.Container(
                                name="neuron-monitor",
                                image=IMAGE,
                                command=["/opt/bin/entrypoint.sh"],
                                args=[
                                    "--port",
                                    str(PORT),
                                    "--neuron-monitor-config",
                                    "/opt/aws/neuron/bin/neuron-monitor.conf",
                                ],
                                ports=[k8s.ContainerPort(container_port=PORT, name="metrics")],
                                env=[k8s.EnvVar(name="GOMEMLIMIT", value="160MiB")],
                                resources=k8s.ResourceRequirements(
                                    requests={
                                        "cpu": k8s.Quantity.from_string("256m"),
                                        "memory": k8s.Quantity.from_string("128Mi"),
                                    },
                                    limits={
                                        "cpu": k8s.Quantity.from_string("500m"),
                                        "memory": k8s.Quantity.from_string("256Mi"),
                                    },
                                ),
                                security_context=k8s.SecurityContext(privileged=True),
                            )
                        ],
                    ),
                ),
            ),
        )
