"""Fire and silence cases for every Prometheus alert eks-ml can deploy, run by `promtool test rules`.

One case table per alert (a function of the cluster variant: namespaces and instance types differ).
A fire case gives synthetic series that show the fault, the time the alert must be firing and an earlier
time it must not be yet (before its ``for:`` has passed, or before the fault starts); a silence case
gives healthy series. The label sets are those the exporters emit, plus what the managed scraper adds
(eks_ml.observability.prometheus.scrape_configuration: instance, job, and namespace, pod and node of the
scraped pod where the exporter does not set them itself, honor_labels):
- dcgm-exporter 4.x: gpu, UUID, pci_bus_id, device, modelName, Hostname, DCGM_FI_DRIVER_VERSION, and
  container, namespace, pod of the GPU's user (none when the GPU is not allocated);
- neuron-monitor (neuron-monitor-prometheus.py): instance_name, instance_id, instance_type,
  availability_zone, region, subnet_id, runtime_tag, neuroncore / error_type / event_type;
- kube-state-metrics 2.x: node, condition, status; namespace, pod, uid, container;
  horizontalpodautoscaler; label_<allowlisted key> on kube_node_labels;
- vLLM v0.11.0: model_name, engine; prometheus-fastapi-instrumentator: handler, method, status.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from eks_ml import helm
from eks_ml.catalog import lookup
from eks_ml.catalog.prices import on_demand_price
from eks_ml.observability.cost_rules import PRICE_NOTE
from eks_ml.observability.limits import IDLE_MINUTES, IDLE_PERCENT

from .rule_variants import SERVICE, Variant

Labels = Mapping[str, str]


@dataclass(frozen=True)
class Series:
    metric: str
    labels: Labels
    values: str  # promtool's expanding notation, e.g. "0+5x40" or "1x5 0x20"

    def text(self) -> str:
        inner = ",".join(f'{key}="{value}"' for key, value in self.labels.items())
        return f"{self.metric}{{{inner}}}"


@dataclass(frozen=True)
class Case:
    """``labels``: what the expression puts on the alert (fire cases; the rule's own labels are added).
    ``summary``: when given, the rendered summary annotation is compared too."""

    fires: bool
    series: tuple[Series, ...]
    at: str
    labels: Labels = field(default_factory=dict)
    not_before: str | None = None
    summary: str | None = None
    interval: str = "1m"


def fire(series: Iterable[Series], at: str, labels: Labels, not_before: str, **kwargs: str) -> Case:
    return Case(True, tuple(series), at, labels, not_before, **kwargs)


def silence(series: Iterable[Series], at: str, interval: str = "1m") -> Case:
    return Case(False, tuple(series), at, interval=interval)


NODE = "ip-10-0-12-34.us-west-2.compute.internal"
OBSERVABILITY = helm.DCGM_EXPORTER.namespace  # where the exporters run


def scraped(ip: str, port: int, namespace: str, pod: str) -> dict[str, str]:
    """Labels the scrape adds to an exporter's series."""
    return {"instance": f"{ip}:{port}", "job": "annotated-pods", "namespace": namespace, "pod": pod, "node": NODE}


def gpu(index: int, namespace: str | None = None, pod: str | None = None) -> dict[str, str]:
    labels = {
        "gpu": str(index),
        "UUID": f"GPU-8f3b1c2d-41aa-7e55-0c1d-9a2b3c4d5e6{index}",
        "pci_bus_id": f"00000000:{0x53 + index:02X}:00.0",
        "device": f"nvidia{index}",
        "modelName": "NVIDIA H100 80GB HBM3",
        "Hostname": NODE,
        "DCGM_FI_DRIVER_VERSION": "570.172.08",
        **scraped("10.0.12.40", 9400, OBSERVABILITY, "dcgm-exporter-7xk2p"),
    }
    if namespace is not None and pod is not None:  # dcgm-exporter's attribution wins over the scrape's
        labels.update(container="trainer", namespace=namespace, pod=pod)
    return labels


def job_gpu(index: int, variant: Variant) -> dict[str, str]:
    return gpu(index, variant.namespace, "llama-node-0-0-x9k2q")


def neuron(instance_type: str, **extra: str) -> dict[str, str]:
    return {
        "instance_name": "training-trn1-node",  # the EC2 Name tag
        "instance_id": "i-0a1b2c3d4e5f60718",
        "instance_type": instance_type,
        "availability_zone": "us-west-2a",
        "region": "us-west-2",
        "subnet_id": "subnet-0123456789abcdef0",
        "runtime_tag": "1234",
        **extra,
        **scraped("10.0.12.41", 8000, "neuron-monitor", "neuron-monitor-4d9wz"),
    }


def ksm(**extra: str) -> dict[str, str]:
    # kube-state-metrics' own labels win (honor_labels); namespace/pod fall back to its own pod's.
    return {**scraped("10.0.2.7", 8080, OBSERVABILITY, "kube-state-metrics-6b9f7c8d4-q2m5t"), **extra}


def vllm(variant: Variant, **extra: str) -> dict[str, str]:
    return {
        "model_name": SERVICE,
        "engine": "0",
        **scraped("10.0.3.4", 8000, variant.namespace, f"{SERVICE}-7d9f8c6b5d-x2x4k"),
        **extra,
    }


def without(labels: Mapping[str, str], *names: str) -> dict[str, str]:
    return {key: value for key, value in labels.items() if key not in names}


def only(labels: Mapping[str, str], *names: str) -> dict[str, str]:
    return {name: labels[name] for name in names}


def _xid(v: Variant) -> list[Case]:
    g = gpu(0)
    return [
        fire([Series("DCGM_FI_DEV_XID_ERRORS", g, "0x10 79x10")], "15m", g, "5m"),
        silence([Series("DCGM_FI_DEV_XID_ERRORS", g, "0x30")], "30m"),
    ]


def _row_remap(v: Variant) -> list[Case]:
    g = gpu(1)
    return [
        fire(
            [
                Series("DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS", g, "0x10 1x10"),
                Series("DCGM_FI_DEV_ROW_REMAP_FAILURE", g, "0x20"),
            ],
            "12m",
            g,
            "5m",
        ),
        fire(
            [
                Series("DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS", g, "0x20"),
                Series("DCGM_FI_DEV_ROW_REMAP_FAILURE", g, "0x10 1x10"),
            ],
            "12m",
            g,
            "5m",
        ),
        silence(
            [
                Series("DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS", g, "2x30"),  # remapped long ago, no new rows
                Series("DCGM_FI_DEV_ROW_REMAP_FAILURE", g, "0x30"),
            ],
            "30m",
        ),
    ]


def _hot(v: Variant) -> list[Case]:
    g = job_gpu(2, v)
    return [
        fire([Series("DCGM_FI_DEV_GPU_TEMP", g, "60x5 90x20")], "12m", g, "9m"),
        silence([Series("DCGM_FI_DEV_GPU_TEMP", g, "78x30")], "30m"),
    ]


# The violation counters count nanoseconds of throttling (dcgm-exporter 4.5.3-4.8.2 default-counters.csv, "in ns"):
# 12 s per minute (12e9 ns) is 20% of the time. The quiet case (1% + 1%) fired when the threshold was read as
# microseconds.
def _throttled(v: Variant) -> list[Case]:
    g = job_gpu(3, v)
    return [
        fire(
            [
                Series("DCGM_FI_DEV_POWER_VIOLATION", g, "0+12000000000x40"),
                Series("DCGM_FI_DEV_THERMAL_VIOLATION", g, "0x40"),
            ],
            "15m",
            g,
            "8m",
        ),
        fire(  # heat alone
            [
                Series("DCGM_FI_DEV_POWER_VIOLATION", g, "0x40"),
                Series("DCGM_FI_DEV_THERMAL_VIOLATION", g, "0+9000000000x40"),
            ],
            "15m",
            g,
            "8m",
        ),
        silence(
            [
                Series("DCGM_FI_DEV_POWER_VIOLATION", g, "0+600000000x40"),  # 1% of the time
                Series("DCGM_FI_DEV_THERMAL_VIOLATION", g, "0+600000000x40"),
            ],
            "30m",
        ),
    ]


def _ecc(v: Variant) -> list[Case]:
    g = job_gpu(4, v)
    return [
        fire([Series("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", g, "0x10 2x10")], "12m", g, "5m"),
        silence([Series("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", g, "0x30")], "30m"),
    ]


def _idle_gpus(v: Variant) -> list[Case]:
    gpus = [job_gpu(i, v) for i in range(2)]
    idle = [Series("DCGM_FI_DEV_GPU_UTIL", g, "2x60") for g in gpus]
    return [
        fire(idle, f"{IDLE_MINUTES + 5}m", only(gpus[0], "namespace", "pod"), f"{IDLE_MINUTES - 5}m"),
        silence([Series("DCGM_FI_DEV_GPU_UTIL", g, "2x10 85x50") for g in gpus], f"{IDLE_MINUTES + 10}m"),
        # GPUs no pod holds are not a job's waste: they carry the exporter's namespace.
        silence([Series("DCGM_FI_DEV_GPU_UTIL", gpu(i), "0x60") for i in range(2)], f"{IDLE_MINUTES + 5}m"),
    ]


def _efa_drops(v: Variant) -> list[Case]:
    labels = {
        "device": "rdmap16s27",
        "port": "1",
        "counter": "rx_drops",
        **scraped("10.0.12.42", 9100, OBSERVABILITY, "prometheus-node-exporter-m8v6c"),
    }
    rx_bytes = {**labels, "counter": "rx_bytes"}
    return [
        fire([Series("eksml_efa_hw_counter", labels, "0+5x40")], "15m", {"node": NODE}, "8m"),
        silence(
            [Series("eksml_efa_hw_counter", labels, "3x40"), Series("eksml_efa_hw_counter", rx_bytes, "0+1e9x40")],
            "30m",
        ),
    ]


def _neuron_errors(v: Variant) -> list[Case]:
    labels = neuron(v.instance_types[0], error_type="hardware")
    return [
        fire([Series("execution_errors_total", labels, "0x10 3x10")], "12m", labels, "5m"),
        silence([Series("execution_errors_total", labels, "3x30")], "30m"),
    ]


def _neuron_ecc(v: Variant) -> list[Case]:
    labels = neuron(v.instance_types[0], event_type="mem_ecc_uncorrected", neuron_device_index="0")
    return [
        fire([Series("hardware_ecc_events_total", labels, "0x10 1x10")], "12m", labels, "5m"),
        silence([Series("hardware_ecc_events_total", labels, "1x30")], "30m"),
    ]


def _idle_cores(v: Variant) -> list[Case]:
    cores = [neuron(v.instance_types[0], neuroncore=str(i)) for i in range(2)]
    return [
        fire(
            [Series("neuroncore_utilization_ratio", c, "0.01x60") for c in cores],
            f"{IDLE_MINUTES + 5}m",
            only(cores[0], "instance_id"),
            f"{IDLE_MINUTES - 5}m",
        ),
        silence([Series("neuroncore_utilization_ratio", c, "0.9x60") for c in cores], f"{IDLE_MINUTES + 5}m"),
    ]


def _node_not_ready(v: Variant) -> list[Case]:
    labels = ksm(node=NODE, condition="Ready", status="true")
    return [
        fire([Series("kube_node_status_condition", labels, "1x5 0x20")], "12m", labels, "9m"),
        silence([Series("kube_node_status_condition", labels, "1x30")], "30m"),
    ]


def _restarts(v: Variant) -> list[Case]:
    labels = ksm(
        namespace=v.namespace, pod="llama-node-0-1-p4l7s", uid="7c0a7f4e-1b1e-4e8e-9d7a-2a3b4c5d6e7f", container="node"
    )
    return [
        fire([Series("kube_pod_container_status_restarts_total", labels, "0x10 1x10")], "12m", labels, "5m"),
        silence([Series("kube_pod_container_status_restarts_total", labels, "2x40")], "40m"),
    ]


def _latency_buckets(v: Variant, per_minute: Mapping[str, int]) -> list[Series]:
    """Cumulative bucket counters: ``per_minute`` requests per minute at or under each bound."""
    return [
        Series("vllm:e2e_request_latency_seconds_bucket", vllm(v, le=le), f"0+{count}x30")
        for le, count in per_minute.items()
    ]


def _latency(v: Variant) -> list[Case]:
    slow = _latency_buckets(v, {"10.0": 0, "30.0": 0, "60.0": 10, "+Inf": 10})
    fast = _latency_buckets(v, {"10.0": 10, "30.0": 10, "60.0": 10, "+Inf": 10})
    return [
        fire(slow, "15m", {"namespace": v.namespace}, "8m"),
        silence(fast, "30m"),
    ]


def _queue(v: Variant) -> list[Case]:
    labels = vllm(v)
    return [
        fire([Series("vllm:num_requests_waiting", labels, "40x30")], "12m", only(labels, "namespace", "pod"), "8m"),
        silence([Series("vllm:num_requests_waiting", labels, "2x30")], "30m"),
    ]


def _hpa_at_max(v: Variant) -> list[Case]:
    labels = ksm(namespace=v.namespace, horizontalpodautoscaler=SERVICE)
    return [
        fire(
            [
                Series("kube_horizontalpodautoscaler_status_current_replicas", labels, "4x30"),
                Series("kube_horizontalpodautoscaler_spec_max_replicas", labels, "4x30"),
            ],
            "20m",
            only(labels, "namespace", "horizontalpodautoscaler"),
            "10m",
        ),
        silence(
            [
                Series("kube_horizontalpodautoscaler_status_current_replicas", labels, "2x30"),
                Series("kube_horizontalpodautoscaler_spec_max_replicas", labels, "4x30"),
            ],
            "30m",
        ),
    ]


def _node_labels(instance_type: str) -> Series:
    return Series("kube_node_labels", ksm(node=NODE, label_node_kubernetes_io_instance_type=instance_type), "1x60")


def _idle_gpus_cost(v: Variant) -> list[Case]:
    (instance_type,) = [t for t in v.instance_types if lookup(t).is_nvidia]
    spec, price = lookup(instance_type), on_demand_price(instance_type)
    assert price is not None
    gpus = [job_gpu(i, v) for i in range(2)]
    cost = 2 * price / spec.accelerator_count
    summary = (
        f"GPUs requested in namespace {v.namespace} have been under {IDLE_PERCENT}% busy for {IDLE_MINUTES} "
        f"minutes: {cost:.2f} USD per hour ({PRICE_NOTE})"
    )
    node = _node_labels(instance_type)
    return [
        fire(
            [node, *(Series("DCGM_FI_DEV_GPU_UTIL", g, "1x60") for g in gpus)],
            f"{IDLE_MINUTES + 5}m",
            {"namespace": v.namespace},
            f"{IDLE_MINUTES - 5}m",
            summary=summary,
        ),
        silence([node, *(Series("DCGM_FI_DEV_GPU_UTIL", g, "70x60") for g in gpus)], f"{IDLE_MINUTES + 5}m"),
        silence([node, *(Series("DCGM_FI_DEV_GPU_UTIL", gpu(i), "0x60") for i in range(2))], f"{IDLE_MINUTES + 5}m"),
    ]


def _idle_cores_cost(v: Variant) -> list[Case]:
    (instance_type,) = [t for t in v.instance_types if lookup(t).is_neuron]
    spec, price = lookup(instance_type), on_demand_price(instance_type)
    assert price is not None
    cores = [neuron(instance_type, neuroncore=str(i)) for i in range(2)]
    cost = 2 * price / spec.neuron_cores
    summary = (
        f"NeuronCores held by a runtime on {cores[0]['instance_id']} ({instance_type}) have been under "
        f"{IDLE_PERCENT}% busy for {IDLE_MINUTES} minutes: {cost:.2f} USD per hour ({PRICE_NOTE})"
    )
    return [
        fire(
            [Series("neuroncore_utilization_ratio", c, "0.02x60") for c in cores],
            f"{IDLE_MINUTES + 5}m",
            only(cores[0], "instance_id", "instance_type"),
            f"{IDLE_MINUTES - 5}m",
            summary=summary,
        ),
        silence([Series("neuroncore_utilization_ratio", c, "0.6x60") for c in cores], f"{IDLE_MINUTES + 5}m"),
    ]


# --- SLO burn rates (defaults: 99.5% without a server error, 99% under 30 s; 30 days) ---
HEALTHY_MINUTES = 120  # fast-burn cases: two healthy hours, then the burn
# Slow-burn cases sample every 2 minutes: six healthy hours, then ten hours of burn at twice the budget
# rate. The three-day window's ratio passes the budget rate once the burn has lasted as long as the calm
# (6 h): not yet at 10 h, firing at 16 h.
SLOW_HEALTHY_STEPS, SLOW_BURN_STEPS = 180, 300


def _requests(v: Variant, status: str, values: str) -> Series:
    labels = {
        "handler": "/v1/chat/completions",
        "method": "POST",
        "status": status,
        **without(vllm(v), "model_name", "engine"),
    }
    return Series("http_requests_total", labels, values)


def _counter(healthy: int, burning: int, before: int, after: int) -> str:
    """A counter rising by ``healthy`` per sample for ``before`` samples, then by ``burning`` for ``after``;
    a counter that does not rise before the burn does not exist yet (servers create a status series on
    its first request)."""
    if healthy == 0:
        return f"_x{before} 0+{burning}x{after}"
    return f"0+{healthy}x{before} {healthy * before + burning}+{burning}x{after}"


def _error_series(v: Variant, burn: str) -> list[Series]:
    """Requests per sample by status, healthy phase then burn: ``fast``: two healthy hours, then 50 of
    130 requests fail; ``slow``: six hours of none, then 1 in 100 (twice the budget rate) for ten hours;
    ``healthy``: 1 in 1030. Client errors (4xx) are the caller's: they never spend the budget."""
    if burn == "fast":
        before, after, rates = HEALTHY_MINUTES, 60, {"2xx": (100, 50), "4xx": (30, 30), "5xx": (0, 50)}
    elif burn == "slow":
        before, after, rates = SLOW_HEALTHY_STEPS, SLOW_BURN_STEPS, {"2xx": (99, 98), "4xx": (1, 1), "5xx": (0, 1)}
    else:
        before, after, rates = 90, 90, {"2xx": (999, 999), "4xx": (30, 30), "5xx": (1, 1)}
    return [_requests(v, status, _counter(*rate, before, after)) for status, rate in rates.items()]


def _latency_series(v: Variant, burn: str) -> list[Series]:
    """Requests per sample under 30 s (bucket) and in all (count), as for _error_series: fast 50% slow,
    slow 2% (twice the budget rate) after six hours of 0.1%, healthy 0.1%."""
    if burn == "fast":
        n = HEALTHY_MINUTES
        under, count = f"0+999x{n} {999 * n + 500}+500x60", f"0+1000x{n} {1000 * n + 1000}+1000x60"
    elif burn == "slow":
        n, rest = SLOW_HEALTHY_STEPS, SLOW_BURN_STEPS
        under, count = f"0+999x{n} {999 * n + 980}+980x{rest}", f"0+1000x{n} {1000 * n + 1000}+1000x{rest}"
    else:
        under, count = "0+999x180", "0+1000x180"
    return [
        Series("vllm:e2e_request_latency_seconds_bucket", vllm(v, le="30.0"), under),
        Series("vllm:e2e_request_latency_seconds_bucket", vllm(v, le="+Inf"), count),
        Series("vllm:e2e_request_latency_seconds_count", vllm(v), count),
    ]


def _burn_cases(series: Callable[[Variant, str], list[Series]], speed: str) -> Callable[[Variant], list[Case]]:
    def cases(v: Variant) -> list[Case]:
        labels = {"namespace": v.namespace}
        healthy = silence(series(v, "healthy"), "3h")
        if speed == "fast":
            return [
                fire(series(v, "fast"), f"{HEALTHY_MINUTES + 20}m", labels, f"{HEALTHY_MINUTES}m"),
                healthy,
                silence(series(v, "slow"), "16h", interval="2m"),  # a slow burn does not page
            ]
        return [
            Case(True, tuple(series(v, "slow")), "16h", labels, "10h", interval="2m"),
            healthy,
        ]

    return cases


CASES: dict[str, Callable[[Variant], list[Case]]] = {
    "NodeNotReady": _node_not_ready,
    "GpuXidError": _xid,
    "GpuMemoryRowRemapping": _row_remap,
    "GpuThermalThrottling": _hot,
    "GpuClocksThrottled": _throttled,
    "GpuEccDoubleBitErrors": _ecc,
    "GpusIdleInTrainingJob": _idle_gpus,
    "EfaReceiveDrops": _efa_drops,
    "NeuronExecutionErrors": _neuron_errors,
    "NeuronEccEvents": _neuron_ecc,
    "NeuronCoresIdleInTrainingJob": _idle_cores,
    "WorkloadPodRestarting": _restarts,
    "ModelLatencyHigh": _latency,
    "ModelQueueDeep": _queue,
    "AutoscalerAtMaximum": _hpa_at_max,
    "IdleGpusCost": _idle_gpus_cost,
    "IdleNeuronCoresCost": _idle_cores_cost,
    "ModelErrorBudgetFastBurn": _burn_cases(_error_series, "fast"),
    "ModelErrorBudgetSlowBurn": _burn_cases(_error_series, "slow"),
    "ModelLatencyBudgetFastBurn": _burn_cases(_latency_series, "fast"),
    "ModelLatencyBudgetSlowBurn": _burn_cases(_latency_series, "slow"),
}


def missing_cases(
    alerts: Mapping[str, Variant], table: Mapping[str, Callable[[Variant], list[Case]]]
) -> dict[str, str]:
    """Alert name -> what is missing, for each alert (with a variant that produces it) lacking a fire or a
    silence case."""
    missing: dict[str, str] = {}
    for alert, variant in alerts.items():
        cases = table[alert](variant) if alert in table else []
        kinds = {case.fires for case in cases}
        if kinds != {True, False}:
            missing[alert] = "no fire case" if True not in kinds else "no silence case"
    return missing
