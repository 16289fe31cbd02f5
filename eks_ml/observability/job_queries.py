"""PromQL of the per-job views: accelerator use, memory and EFA throughput per TrainJob or per model
service, and accelerators that pods request but leave idle, per namespace, with their hourly cost.

How a series finds its job:

- dcgm-exporter labels each GPU's series with the namespace and pod using it (the managed scraper keeps
  exporter labels, see prometheus.scrape_configuration), so a GPU series joins kube_pod_labels on
  (namespace, pod), which carries the job's pod label.
- neuron-monitor's exporter labels its series with the instance (instance_id, instance_type, neuroncore,
  runtime_tag), never a pod: Neuron series are attributed by node (the scraper's ``node`` label, the node
  of the neuron-monitor pod, is the node of the cores) to the jobs with a running pod on that node, via
  kube_pod_info{node}. A node shared by two jobs counts for both.
- eksml_efa_hw_counter is per node (EFA device counters in sysfs), attributed by node the same way.

kube-state-metrics exposes pod and node labels only when allow-listed (metricLabelsAllowlist, set by the
Prometheus backend): ``jobset.sigs.k8s.io/jobset-name`` (a TrainJob's pods; its JobSet has the
TrainJob's name), ``app.kubernetes.io/name`` (a model service's pods) and the nodes'
``node.kubernetes.io/instance-type``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .limits import IDLE_MINUTES, IDLE_PERCENT

JOBSET_LABEL = "label_jobset_sigs_k8s_io_jobset_name"
SERVICE_LABEL = "label_app_kubernetes_io_name"
INSTANCE_TYPE_LABEL = "label_node_kubernetes_io_instance_type"
# The price recording rule (Prometheus backend's rules): the hourly price, in USD, of ONE accelerator of
# ``resource`` on an ``instance_type``. Assumed labels: ``instance_type`` as in the plan's price table and
# ``resource`` in kube-state-metrics' spelling of the extended resource (nvidia_com_gpu,
# aws_amazon_com_neuron, aws_amazon_com_neuroncore), so it joins kube_pod_container_resource_requests.
PRICE_SERIES = "eksml:accelerator_hourly_price"
GPU_RESOURCE = "nvidia_com_gpu"
NEURON_RESOURCES = ("aws_amazon_com_neuron", "aws_amazon_com_neuroncore")
_IDLE_WINDOW = f"{IDLE_MINUTES}m"


@dataclass(frozen=True)
class Grouping:
    """What makes one job: ``label`` is kube_pod_labels' label naming it, ``variable`` the dashboard
    variable that chooses which jobs are drawn, ``noun`` how a panel title calls one."""

    label: str
    variable: str
    noun: str


TRAINJOB = Grouping(JOBSET_LABEL, "trainjob", "TrainJob")
MODEL_SERVICE = Grouping(SERVICE_LABEL, "service", "model service")


def job_names(grouping: Grouping, namespace: str) -> str:
    """The query of the dashboard variable listing the jobs (Grafana's label_values)."""
    return f'label_values(kube_pod_labels{{namespace="{namespace}", {grouping.label}!=""}}, {grouping.label})'


def pods_of(grouping: Grouping, namespace: str) -> str:
    """One series per pod of the chosen jobs, labelled with its job."""
    selector = f'namespace="{namespace}", {grouping.label}=~"${grouping.variable}"'
    return f"max by (namespace, pod, {grouping.label}) (kube_pod_labels{{{selector}}})"


def nodes_of(grouping: Grouping, namespace: str) -> str:
    """One series per (node, job) for every node with a running pod of the chosen jobs."""
    running = f'kube_pod_status_phase{{namespace="{namespace}", phase="Running"}} == 1'
    return (
        f"max by (node, {grouping.label}) ("
        f'kube_pod_info{{namespace="{namespace}"}}'
        f" * on (namespace, pod) group_left ({grouping.label}) {pods_of(grouping, namespace)}"
        f" * on (namespace, pod) group_left () ({running})"
        ")"
    )


def _per_pod(series: str, grouping: Grouping, namespace: str) -> str:
    return f"{series} * on (namespace, pod) group_left ({grouping.label}) {pods_of(grouping, namespace)}"


def _per_node(node_series: str, grouping: Grouping, namespace: str) -> str:
    # The job side may hold several jobs per node, the node side one series per node (group_left).
    return f"{nodes_of(grouping, namespace)} * on (node) group_left () ({node_series})"


def gpu_utilization(grouping: Grouping, namespace: str) -> str:
    utilization = f'DCGM_FI_DEV_GPU_UTIL{{namespace="{namespace}"}}'
    return f"avg by ({grouping.label}) ({_per_pod(utilization, grouping, namespace)})"


def gpu_memory_used_percent(grouping: Grouping, namespace: str) -> str:
    used = f'DCGM_FI_DEV_FB_USED{{namespace="{namespace}"}}'
    total = f'(DCGM_FI_DEV_FB_USED{{namespace="{namespace}"}} + DCGM_FI_DEV_FB_FREE{{namespace="{namespace}"}})'
    by = f"sum by ({grouping.label})"
    return f"100 * {by} ({_per_pod(used, grouping, namespace)}) / {by} ({_per_pod(total, grouping, namespace)})"


def neuroncore_utilization_percent(grouping: Grouping, namespace: str) -> str:
    node_average = "avg by (node) (neuroncore_utilization_ratio)"
    return f"100 * avg by ({grouping.label}) ({_per_node(node_average, grouping, namespace)})"


def neuron_device_memory_bytes(grouping: Grouping, namespace: str) -> str:
    node_total = 'sum by (node) (neuron_runtime_memory_used_bytes{memory_location="neuron_device"})'
    return f"sum by ({grouping.label}) ({_per_node(node_total, grouping, namespace)})"


def efa_bytes_per_second(grouping: Grouping, namespace: str, counter: str) -> str:
    node_rate = f'sum by (node) (rate(eksml_efa_hw_counter{{counter="{counter}"}}[5m]))'
    return f"sum by ({grouping.label}) ({_per_node(node_rate, grouping, namespace)})"


def _requests(resource_matcher: str) -> str:
    return f"sum by (namespace, pod, node, resource) (kube_pod_container_resource_requests{{{resource_matcher}}})"


def idle_accelerators(*, nvidia: bool, neuron: bool) -> str | None:
    """Accelerators requested by pods that stayed under IDLE_PERCENT for IDLE_MINUTES, one series per
    (namespace, pod, node, resource) with the requested count; None without accelerators.

    A GPU pod is idle when its GPUs' average utilisation is; a Neuron pod when its node's NeuronCores
    are (neuron-monitor has no pod attribution)."""
    parts = []
    if nvidia:
        gpu_average = f"avg by (namespace, pod) (avg_over_time(DCGM_FI_DEV_GPU_UTIL[{_IDLE_WINDOW}]))"
        requests = _requests(f'resource="{GPU_RESOURCE}"')
        parts.append(f"{requests} and on (namespace, pod) ({gpu_average} < {IDLE_PERCENT})")
    if neuron:
        core_average = f"avg by (node) (avg_over_time(neuroncore_utilization_ratio[{_IDLE_WINDOW}]))"
        requests = _requests('resource=~"{}"'.format("|".join(NEURON_RESOURCES)))
        parts.append(f"{requests} and on (node) ({core_average} < {IDLE_PERCENT / 100})")
    if not parts:
        return None
    return " or ".join(f"({part})" for part in parts)


def idle_accelerators_per_namespace(idle: str) -> str:
    return f"sum by (namespace, resource) ({idle})"


def idle_hourly_cost_per_namespace(idle: str) -> str:
    """USD per hour of the idle accelerators: their count times PRICE_SERIES of their node's type."""
    with_type = f"({idle}) * on (node) group_left ({INSTANCE_TYPE_LABEL}) kube_node_labels"
    priced = (
        f'label_replace({with_type}, "instance_type", "$1", "{INSTANCE_TYPE_LABEL}", "(.+)")'
        f" * on (instance_type, resource) group_left () {PRICE_SERIES}"
    )
    return f"sum by (namespace) ({priced})"
