"""The Prometheus backend: an Amazon Managed Service for Prometheus workspace fed by the AWS managed
scraper (agentless: no in-cluster Prometheus, so an InferenceCluster's own Prometheus for its HPAs is
not installed twice), the exporters it scrapes, ML alerting rules and an alert manager that publishes to
SNS.

The scraper reaches the cluster through an EKS access entry that Amazon Managed Service for Prometheus
creates itself for clusters in API authentication mode (aws_eks_v2's default); it scrapes every pod
annotated ``prometheus.io/scrape: "true"`` (the exporters below and the model servers).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import cdk8s
from aws_cdk import Fn, RemovalPolicy, Stack
from aws_cdk import aws_aps as aps
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct

from .. import helm
from .._yaml import dump as to_yaml
from ..catalog import all_instance_types
from ..cluster.system_nodes import SystemPlacement
from ..k8s import DcgmCountersChart, NeuronMonitorChart
from ..k8s.burn_in import startup_toleration
from ..k8s.dcgm_counters import CONFIG_MAP as DCGM_COUNTERS_CONFIG_MAP
from ..k8s.dcgm_counters import FILE as DCGM_COUNTERS_FILE
from ..k8s.pod_security import HARDENED_CONTAINER
from ..k8s.scrape import scrape_annotations
from ..manifest_bundle import prelude_of
from ..placement import workloads_from_objects
from .prometheus_alerts import Thresholds, rule_groups
from .target import ObservedCluster

SCRAPE_INTERVAL = "30s"  # the managed scraper's minimum
APS_PRINCIPAL = "aps.amazonaws.com"


def scrape_configuration(cluster_name: str) -> dict[str, Any]:
    """Scrape every annotated pod; labels the exporters set themselves (dcgm-exporter's pod and
    namespace of the GPU's user) win over the target's own."""
    meta = "__meta_kubernetes_pod_"
    return {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "external_labels": {"cluster": cluster_name}},
        "scrape_configs": [
            {
                "job_name": "annotated-pods",
                "honor_labels": True,
                "kubernetes_sd_configs": [{"role": "pod"}],
                "relabel_configs": [
                    {"source_labels": [f"{meta}annotation_prometheus_io_scrape"], "action": "keep", "regex": "true"},
                    {
                        "source_labels": ["__address__", f"{meta}annotation_prometheus_io_port"],
                        "action": "replace",
                        "regex": r"([^:]+)(?::\d+)?;(\d+)",
                        "replacement": "$1:$2",
                        "target_label": "__address__",
                    },
                    {
                        "source_labels": [f"{meta}annotation_prometheus_io_path"],
                        "action": "replace",
                        "regex": "(.+)",
                        "target_label": "__metrics_path__",
                    },
                    {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
                    {"source_labels": [f"{meta}name"], "target_label": "pod"},
                    {"source_labels": [f"{meta}node_name"], "target_label": "node"},
                ],
            }
        ],
    }


# EFA's hardware counters (rx_bytes, tx_bytes, rx_drops, rdma_read_bytes, ...) live in sysfs under
# /sys/class/infiniband/<device>/ports/<port>/hw_counters, which node-exporter's InfiniBand collector does
# not read. A sidecar (node-exporter's own busybox image) writes them every 15 s as a textfile the
# exporter serves. On nodes without EFA the file is empty.
EFA_COUNTER_METRIC = "eksml_efa_hw_counter"
TEXTFILE_DIR = "/run/prometheus"
# SYS, OUT and ONCE exist for the unit test, which runs the script against a fake sysfs tree.
EFA_TEXTFILE_SCRIPT = f"""\
SYS=${{SYS:-/host/sys}}; OUT=${{OUT:-{TEXTFILE_DIR}}}
while true; do
  echo "# TYPE {EFA_COUNTER_METRIC} counter" > "$OUT/efa.prom.tmp"
  for f in "$SYS"/class/infiniband/*/ports/*/hw_counters/*; do
    [ -f "$f" ] || continue
    rel=${{f#"$SYS"/class/infiniband/}}
    device=${{rel%%/*}}; port=$(echo "$rel" | cut -d/ -f3); counter=${{f##*/}}
    labels="device=\\"$device\\",port=\\"$port\\",counter=\\"$counter\\""
    echo "{EFA_COUNTER_METRIC}{{$labels}} $(cat "$f")" >> "$OUT/efa.prom.tmp"
  done
  mv "$OUT/efa.prom.tmp" "$OUT/efa.prom"
  [ -n "$ONCE" ] && break
  sleep 15
done
"""


def node_exporter_values() -> dict[str, Any]:
    return {
        "podAnnotations": scrape_annotations(9100),
        "tolerations": [{"operator": "Exists"}],  # every node, accelerator taints included
        "extraArgs": [f"--collector.textfile.directory={TEXTFILE_DIR}"],
        "resources": NODE_EXPORTER_RESOURCES,
        # Added to the chart's read-only root file system and non-root (nobody) pod user; the sidecar gets the
        # same context. Host metrics come from read-only hostPath mounts, which need no capability.
        "containerSecurityContext": dict(HARDENED_CONTAINER),
        "sidecars": [
            {
                "name": "efa-counters",
                "command": ["/bin/sh", "-c", EFA_TEXTFILE_SCRIPT],
                "resources": SIDECAR_RESOURCES,
            }
        ],
        "sidecarVolumeMount": [{"name": "collector-textfiles", "mountPath": TEXTFILE_DIR, "readOnly": False}],
        "sidecarHostVolumeMounts": [
            {"name": "host-sys", "hostPath": "/sys", "mountPath": "/host/sys", "readOnly": True}
        ],
    }


# Exporter requests: small and steady (node-exporter's sidecar only copies counter files every 15 s).
NODE_EXPORTER_RESOURCES = {"requests": {"cpu": "20m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}}
SIDECAR_RESOURCES = {"requests": {"cpu": "5m", "memory": "8Mi"}, "limits": {"memory": "32Mi"}}
KUBE_STATE_METRICS_RESOURCES = {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}}


# Kubernetes labels kube-state-metrics copies into kube_node_labels / kube_pod_labels (it exports none by
# default), each as label_<key with every non-alphanumeric character as _>:
#   node.kubernetes.io/instance-type -> kube_node_labels{label_node_kubernetes_io_instance_type}: the idle-cost
#     rules price a node's GPUs by it (cost_rules.py);
#   app.kubernetes.io/name -> kube_pod_labels{label_app_kubernetes_io_name}: the model service of a vLLM pod
#     (eks_ml/k8s/model_service.py labels its pods with it);
#   jobset.sigs.k8s.io/jobset-name -> kube_pod_labels{label_jobset_sigs_k8s_io_jobset_name}: the TrainJob of a
#     training pod (Kubeflow Trainer v2.3.0 names the JobSet after the TrainJob, pkg/runtime/framework/plugins/
#     jobset/jobset.go; its pods carry no trainer.kubeflow.org/trainjob-name label in that release).
# Chart key: metricLabelsAllowlist (kube-state-metrics chart 8.4.0 values.yaml), "<resource>=[<keys>]" entries.
KUBE_STATE_METRICS_LABELS = {
    "nodes": ("node.kubernetes.io/instance-type",),
    "pods": ("app.kubernetes.io/name", "jobset.sigs.k8s.io/jobset-name"),
}


def kube_state_metrics_values(placement: SystemPlacement) -> dict[str, Any]:
    return {
        "podAnnotations": scrape_annotations(8080),
        **placement.values(),
        "resources": KUBE_STATE_METRICS_RESOURCES,
        "metricLabelsAllowlist": [
            f"{resource}=[{','.join(keys)}]" for resource, keys in KUBE_STATE_METRICS_LABELS.items()
        ],
    }


def dcgm_exporter_values() -> dict[str, Any]:
    nvidia_types = sorted(spec.name for spec in all_instance_types() if spec.is_nvidia)
    counters_dir = "/etc/dcgm-exporter/eks-ml"
    return {
        # No Prometheus Operator here: its ServiceMonitor CRD does not exist.
        "serviceMonitor": {"enabled": False},
        # The chart always labels each GPU's series with the pod and namespace it is allocated to
        # (DCGM_EXPORTER_KUBERNETES and the kubelet pod-resources mount): no value to set.
        # Our counter list (defaults plus throttling and ECC), from the ConfigMap applied before the chart.
        "arguments": ["-f", f"{counters_dir}/{DCGM_COUNTERS_FILE}"],
        "extraConfigMapVolumes": [{"name": "eks-ml-counters", "configMap": {"name": DCGM_COUNTERS_CONFIG_MAP}}],
        "extraVolumeMounts": [{"name": "eks-ml-counters", "mountPath": counters_dir, "readOnly": True}],
        "podAnnotations": scrape_annotations(9400),
        # GPU nodes, training ones before their burn-in passed too (a node is watched from the start).
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}, startup_toleration()],
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": nvidia_types}
                            ]
                        }
                    ]
                }
            }
        },
    }


def alert_manager_definition(topic_arn: str, region: str) -> str:
    """Every alert to the SNS topic, grouped per alert and cluster."""
    config = {
        "route": {"receiver": "sns", "group_by": ["alertname", "cluster"]},
        "receivers": [
            {
                "name": "sns",
                "sns_configs": [
                    {"topic_arn": topic_arn, "sigv4": {"region": region}, "attributes": {"source": "eks-ml"}}
                ],
            }
        ],
    }
    return to_yaml({"alertmanager_config": to_yaml(config)})


def rule_groups_namespace_name(cluster_name: str) -> str:
    """The rule groups namespace of the cluster's alerts (at most 64 characters)."""
    return f"{cluster_name}-ml"


class PrometheusBackend(Construct):
    """Attributes: ``workspace``, ``workspace_key``, ``scraper``, ``rules``, ``exporters`` (release -> HelmChart),
    ``applied_charts`` (the neuron-monitor chart on clusters with Neuron nodes)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        target: ObservedCluster,
        topic: sns.ITopic,
        topic_key: kms.IKey | None,
        thresholds: Thresholds,
    ) -> None:
        super().__init__(scope, construct_id)
        region = Stack.of(self).region
        # The metrics are the data here: a customer-managed key (chosen at creation only: KmsKeyArn is
        # create-only) and both retained when the stack is deleted. A redeploy creates a new workspace
        # (aliases need not be unique), so retention never blocks it. Amazon Managed Service for
        # Prometheus uses the key through grants it creates as the caller; the key policy's default
        # statement (the account's IAM policies decide) lets the deploying role make them.
        self.workspace_key = kms.Key(
            self,
            "WorkspaceKey",
            description=f"Amazon Managed Service for Prometheus workspace of EKS cluster {target.name}",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.workspace = aps.CfnWorkspace(
            self,
            "Workspace",
            alias=target.name,
            kms_key_arn=self.workspace_key.key_arn,
            # The topic ARN is a token until deploy; Fn.sub keeps the YAML one CloudFormation string.
            alert_manager_definition=Fn.sub(
                alert_manager_definition("${TopicArn}", region), {"TopicArn": topic.topic_arn}
            ),
        )
        self.workspace.apply_removal_policy(RemovalPolicy.RETAIN)
        subnets = target.cluster.vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS).subnet_ids
        self.scraper = aps.CfnScraper(
            self,
            "Scraper",
            alias=target.name,
            source=aps.CfnScraper.SourceProperty(
                eks_configuration=aps.CfnScraper.EksConfigurationProperty(
                    cluster_arn=target.cluster.cluster_arn,
                    subnet_ids=subnets,
                    security_group_ids=[target.cluster.cluster_security_group_id],
                )
            ),
            destination=aps.CfnScraper.DestinationProperty(
                amp_configuration=aps.CfnScraper.AmpConfigurationProperty(workspace_arn=self.workspace.attr_arn)
            ),
            scrape_configuration=aps.CfnScraper.ScrapeConfigurationProperty(
                configuration_blob=Fn.base64(to_yaml(scrape_configuration(target.name)))
            ),
        )
        self.rules = aps.CfnRuleGroupsNamespace(
            self,
            "Rules",
            workspace=self.workspace.attr_arn,
            name=rule_groups_namespace_name(target.name),
            data=to_yaml(rule_groups(target, thresholds)),
        )
        # The workspace's alert manager publishes into the (encrypted) topic.
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal(APS_PRINCIPAL)],
                actions=["sns:Publish", "sns:GetTopicAttributes"],
                resources=[topic.topic_arn],
                conditions={"ArnEquals": {"aws:SourceArn": self.workspace.attr_arn}},
            )
        )
        if topic_key is not None:
            topic_key.grant(iam.ServicePrincipal(APS_PRINCIPAL), "kms:Decrypt", "kms:GenerateDataKey*")

        installs: Mapping[str, tuple[helm.HelmChartPin, dict[str, Any]]] = {
            "NodeExporter": (helm.NODE_EXPORTER, node_exporter_values()),
            "KubeStateMetrics": (helm.KUBE_STATE_METRICS, kube_state_metrics_values(target.placement)),
            **({"DcgmExporter": (helm.DCGM_EXPORTER, dcgm_exporter_values())} if target.nvidia else {}),
        }
        self.exporters: dict[str, eks.HelmChart] = {
            pin.release: helm.install(self, construct, target.cluster, pin, values, model=target.model)
            for construct, (pin, values) in installs.items()
        }
        self.applied_charts: list[tuple[str, cdk8s.Chart]] = []
        # Applied with the releases' namespaces, before the releases (which wait for their prelude).
        prelude = prelude_of(self, target.cluster)
        if target.nvidia:
            counters = DcgmCountersChart(cdk8s.App(), "DcgmCounters", namespace=helm.DCGM_EXPORTER.namespace)
            prelude.add_chart(counters)  # dcgm-exporter mounts this ConfigMap
            self.applied_charts.append(("dcgm-exporter-counters", counters))
        # neuron-monitor has no chart of its own: eks-ml's cdk8s chart, applied from this stack.
        if target.neuron:
            neuron_types = [spec.name for spec in all_instance_types() if spec.is_neuron]
            chart = NeuronMonitorChart(cdk8s.App(), "NeuronMonitor", instance_types=neuron_types)
            prelude.add_chart(chart)
            self.applied_charts.append(("neuron-monitor", chart))
        objects = [obj for _, applied in self.applied_charts for obj in applied.to_json()]
        target.model.add_workloads(workloads_from_objects(objects, "eks-ml observability"))
        target.model.prove()
