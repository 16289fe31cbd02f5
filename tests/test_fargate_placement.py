"""Fargate as a node source of the cluster model: the pods its profile selects land there and nowhere else,
and each Fargate rule (no DaemonSets, no host access, no devices, Fargate's sizes) refuses a pod that breaks it."""

from __future__ import annotations

from typing import Any

import pytest

from eks_ml import ValidationError
from eks_ml.placement import ClusterModel, FargateSelector, fargate_profile, fargate_size, karpenter_pool
from eks_ml.placement.fargate import FARGATE_SIZES, MAX_CPU, MAX_MEMORY_MIB
from eks_ml.placement.pods import workloads_from_objects

SELECTOR = FargateSelector(namespace="serve", labels={"eks-ml.io/compute": "fargate"})


def pod_object(
    kind: str = "Deployment",
    *,
    namespace: str = "serve",
    labels: dict[str, str] | None = None,
    resources: dict[str, str] | None = None,
    **pod: Any,
) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "server",
        "resources": {"requests": resources or {"cpu": "1", "memory": "2Gi"}},
    }
    container.update(pod.pop("container", {}))
    return {
        "kind": kind,
        "metadata": {"name": "server", "namespace": namespace},
        "spec": {
            "template": {
                "metadata": {"labels": {"eks-ml.io/compute": "fargate"} if labels is None else labels},
                "spec": {"containers": [container], **pod},
            }
        },
    }


def model(*objects: dict[str, Any], with_cpu_pool: bool = True) -> ClusterModel:
    cluster = ClusterModel("test")
    cluster.add_source(fargate_profile("serverless", (SELECTOR,)))
    if with_cpu_pool:
        cluster.add_source(karpenter_pool("cpu", specs=[], labels={}, taints=[], capacity_types=["on-demand"]))
    cluster.add_workloads(workloads_from_objects(list(objects), "test"))
    return cluster


def landings(cluster: ClusterModel) -> list[dict[str, tuple[str, ...]]]:
    return [dict(p.landings) for p in cluster.placements()]


def test_a_selected_pod_lands_on_fargate_only() -> None:
    # It would fit the CPU pool too; the Fargate scheduler takes every pod a profile selects.
    assert landings(model(pod_object())) == [{"Fargate profile serverless": ("Fargate",)}]


def test_a_pod_the_selector_misses_never_reaches_fargate() -> None:
    other_namespace = model(pod_object(namespace="elsewhere"))
    missing_label = model(pod_object(labels={}))
    for cluster in (other_namespace, missing_label):
        (found,) = landings(cluster)
        assert "Fargate profile serverless" not in found and found  # the CPU pool takes it
    alone = model(pod_object(labels={}), with_cpu_pool=False)
    with pytest.raises(ValidationError, match="no selector of the profile matches the pod"):
        alone.prove()


@pytest.mark.parametrize(
    ("broken", "reason"),
    [
        ({"kind": "DaemonSet"}, "Fargate runs no DaemonSets"),
        ({"resources": {"cpu": "1", "memory": "2Gi", "nvidia.com/gpu": "1"}}, "no GPUs or other devices"),
        ({"container": {"securityContext": {"privileged": True}}}, "privileged container server"),
        ({"hostNetwork": True}, "hostNetwork: true"),
        ({"volumes": [{"name": "host", "hostPath": {"path": "/var/log"}}]}, "hostPath volume host"),
        ({"container": {"ports": [{"containerPort": 80, "hostPort": 80}]}}, "hostPort 80"),
        ({"resources": {"cpu": "17", "memory": "2Gi"}}, "no Fargate size holds 17000m CPU"),
        ({"resources": {"cpu": "4", "memory": "120Gi"}}, "no Fargate size holds 4000m CPU and 122880Mi"),
        ({"resources": {"cpu": "1", "memory": "2Gi", "ephemeral-storage": "200Gi"}}, "at most 175 GiB"),
    ],
)
def test_each_fargate_rule_refuses_a_selected_pod_that_breaks_it(broken: dict[str, Any], reason: str) -> None:
    assert model(pod_object()).prove()  # the same pod without the break lands
    with pytest.raises(ValidationError, match=reason):
        model(pod_object(**broken)).prove()


def test_ephemeral_storage_is_no_device() -> None:
    cluster = model(pod_object(resources={"cpu": "1", "memory": "2Gi", "ephemeral-storage": "60Gi"}))
    assert landings(cluster) == [{"Fargate profile serverless": ("Fargate",)}]


def test_daemon_sets_elsewhere_take_nothing_from_fargate_nodes() -> None:
    # A DaemonSet that tolerates everything and asks for almost a whole node: it runs on the CPU pool's
    # nodes, never beside a Fargate pod, so the Fargate pod still fits.
    daemon = pod_object("DaemonSet", namespace="kube-system", labels={}, resources={"cpu": "15", "memory": "100Gi"})
    daemon["spec"]["template"]["spec"]["tolerations"] = [{"operator": "Exists"}]
    big = pod_object(resources={"cpu": "16", "memory": "100Gi"})
    assert landings(model(daemon, big))[1] == {"Fargate profile serverless": ("Fargate",)}


def test_fargate_sizes_round_up_with_the_kubernetes_overhead() -> None:
    assert fargate_size(100, 128) == (250, 512)
    assert fargate_size(250, 1792) == (250, 2048)  # 1792 + 256 fits 2 GB exactly
    assert fargate_size(250, 1793) == (500, 3072)  # one MiB more: next vCPU step with 3 GB
    assert fargate_size(2000, 8192 - 256) == (2000, 8192)
    assert fargate_size(2000, 8192) == (2000, 9216)
    assert fargate_size(5000, 16 * 1024) == (8000, 20 * 1024)  # 4 GB steps from 8 vCPU
    assert fargate_size(MAX_CPU, MAX_MEMORY_MIB - 256) == (MAX_CPU, MAX_MEMORY_MIB)
    assert fargate_size(MAX_CPU, MAX_MEMORY_MIB) is None
    assert fargate_size(MAX_CPU + 1, 512) is None
    # The table as the EKS User Guide gives it: 7 vCPU steps, 0.5 GB to 120 GB.
    assert [cpu for cpu, _ in FARGATE_SIZES] == [250, 500, 1000, 2000, 4000, 8000, 16000]
    assert FARGATE_SIZES[0][1] == (0.5, 1, 2) and FARGATE_SIZES[-1][1][-1] == 120
