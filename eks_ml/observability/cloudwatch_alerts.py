"""ML alerts as CloudWatch alarms on Container Insights (enhanced observability) metrics.

Metric names and dimension sets are only those metric_tables lists (the CloudWatch User Guide's
"Container Insights with enhanced observability metrics for Amazon EKS"); tests check every synthesized
alarm against that table. GPU XID, ECC and
row-remap faults have no Container Insights metric: the eks-node-monitoring-agent add-on (installed by
BaseCluster) turns them into a failing AcceleratedHardwareReady node condition, and a node with a failing
condition counts in ``cluster_failed_node_count``, which the unhealthy-nodes alarm watches.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch

from .limits import GPU_HOT_CELSIUS, IDLE_MINUTES, IDLE_PERCENT
from .metric_tables import CONTAINER_INSIGHTS
from .target import ObservedCluster

NAMESPACE = CONTAINER_INSIGHTS
IDLE_WINDOW = Duration.minutes(IDLE_MINUTES)

GT = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD
GE = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD


@dataclass(frozen=True)
class CloudWatchAlert:
    """``metric`` builds what the alarm watches; the alarm fires after ``periods`` breaching periods."""

    key: str
    summary: str
    applies: Callable[[ObservedCluster], bool]
    metric: Callable[[ObservedCluster], cloudwatch.IMetric]
    threshold: float
    comparison: cloudwatch.ComparisonOperator
    periods: int


ONE_MINUTE = Duration.minutes(1)
FIVE_MINUTES = Duration.minutes(5)


def _metric(name: str, statistic: str, period: Duration = ONE_MINUTE) -> Callable[[ObservedCluster], cloudwatch.Metric]:
    def build(target: ObservedCluster) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace=NAMESPACE,
            metric_name=name,
            dimensions_map={"ClusterName": target.name},
            statistic=statistic,
            period=period,
        )

    return build


def _idle_gpus(target: ObservedCluster) -> cloudwatch.IMetric:
    # 1 while GPUs are held by running pods (a job is running) yet barely used: a stalled or starved job.
    # node_gpu_usage_total is "the number of GPUs being used by the running pods on the node"; its
    # highest value over the cluster's nodes is above 0 while any pod holds a GPU.
    requested = _metric("node_gpu_usage_total", "Maximum", FIVE_MINUTES)(target)
    utilization = _metric("node_gpu_utilization", "Average", FIVE_MINUTES)(target)
    return cloudwatch.MathExpression(
        expression=f"IF(requested > 0 AND utilization < {IDLE_PERCENT}, 1, 0)",
        using_metrics={"requested": requested, "utilization": utilization},
        label="GPUs requested but idle",
        period=FIVE_MINUTES,
    )


def _restarts(target: ObservedCluster) -> cloudwatch.IMetric:
    # A Metrics Insights query: the highest restart count of any pod in the workload namespace.
    return cloudwatch.MathExpression(
        expression=(
            "SELECT MAX(pod_number_of_container_restarts) "
            f"FROM SCHEMA({NAMESPACE}, ClusterName, Namespace, PodName) "
            f"WHERE ClusterName = '{target.name}' AND Namespace = '{target.namespace}'"
        ),
        label=f"container restarts in {target.namespace}",
        period=FIVE_MINUTES,
    )


def _always(_: ObservedCluster) -> bool:
    return True


CLOUDWATCH_ALERTS = (
    CloudWatchAlert(
        "unhealthy-nodes",
        "A node is NotReady or reports a failing condition (includes GPU XID/ECC/row-remap and Neuron "
        "hardware faults found by the EKS node monitoring agent)",
        _always,
        _metric("cluster_failed_node_count", "Maximum"),
        0,
        GT,
        5,
    ),
    CloudWatchAlert(
        "gpu-hot",
        f"A GPU is at or above {GPU_HOT_CELSIUS} °C: thermal throttling slows every rank of a job",
        lambda t: t.nvidia,
        _metric("node_gpu_temperature", "Maximum"),
        GPU_HOT_CELSIUS,
        GE,
        5,
    ),
    CloudWatchAlert(
        "gpus-idle-while-requested",
        f"GPUs are requested by pods but under {IDLE_PERCENT}% busy for "
        f"{IDLE_WINDOW.to_minutes()} minutes: a hung or data-starved training job",
        lambda t: t.nvidia and t.workload == "training",
        _idle_gpus,
        1,
        GE,
        int(IDLE_WINDOW.to_minutes() // 5),
    ),
    CloudWatchAlert(
        "neuron-execution-errors",
        "The Neuron runtime reports execution errors (generic, numerical, transient, model, runtime, hardware)",
        lambda t: t.neuron,
        _metric("node_neuron_execution_errors_total", "Sum", FIVE_MINUTES),
        0,
        GT,
        1,
    ),
    CloudWatchAlert(
        "neuron-ecc-events",
        "A Neuron device reports ECC events in its SRAM or device memory",
        lambda t: t.neuron,
        _metric("node_neurondevice_hw_ecc_events_total", "Sum", FIVE_MINUTES),
        0,
        GT,
        1,
    ),
    CloudWatchAlert(
        "efa-receive-drops",
        "EFA devices drop received packets for 10 minutes: collective operations will stall or slow",
        lambda t: t.efa,
        _metric("node_efa_rx_dropped", "Sum", FIVE_MINUTES),
        0,
        GT,
        2,
    ),
    CloudWatchAlert(
        "workload-pods-restarting",
        "A container of a training job or model server restarted (crash, OOM kill or failed probe)",
        _always,
        _restarts,
        0,
        GT,
        1,
    ),
)
