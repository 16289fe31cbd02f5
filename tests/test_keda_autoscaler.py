"""Model services scaled by KEDA's prometheus trigger instead of the HPA (ModelServiceProps.autoscaler)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from aws_cdk import assertions

from eks_ml import BaseClusterProps, MlVpc, MlVpcProps, ValidationError
from eks_ml.inference import Autoscaler, InferenceCluster, InferenceClusterProps
from eks_ml.inference.metrics import PROMETHEUS_URL, VLLM_QUEUE_SERIES
from eks_ml.inference.model_service import HubWeights, ModelServiceProps

from .support.manifests import requires_chart_cache, validate_objects
from .support.synth import library_stack, of_type

HELM = "Custom::AWSCDK-EKS-HelmChart"
SERVICE = ModelServiceProps(
    name="llm",
    instance_type="g6e.xlarge",
    weights=HubWeights(model_id="Qwen/Qwen3-8B"),
    parameters_billions=8.2,
    autoscaler=Autoscaler.KEDA,
    min_replicas=0,
)


def synth(*services: ModelServiceProps) -> tuple[InferenceCluster, dict[str, Any]]:
    _, stack = library_stack()
    network = MlVpc(stack, "Network", MlVpcProps(availability_zones=("us-west-2a", "us-west-2b")))
    cluster = InferenceCluster(
        stack,
        "Inference",
        InferenceClusterProps(base=BaseClusterProps(vpc=network.vpc, cluster_name="serve"), model_services=services),
    )
    return cluster, assertions.Template.from_stack(stack).to_json()


@pytest.fixture(scope="module")
def keda_service() -> tuple[InferenceCluster, dict[str, Any]]:
    return synth(SERVICE)


def kinds(cluster: InferenceCluster) -> dict[str, dict[str, Any]]:
    return {o["kind"]: o for o in cluster.service_charts["llm"].to_json()}


def test_a_keda_service_gets_a_scaled_object_on_the_queue_series_and_no_hpa(keda_service: Any) -> None:
    cluster, _ = keda_service
    objects = kinds(cluster)
    assert "HorizontalPodAutoscaler" not in objects
    spec = objects["ScaledObject"]["spec"]
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (0, 4)
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "prometheus"
    assert trigger["metadata"]["serverAddress"] == PROMETHEUS_URL  # the cluster's own Prometheus
    assert trigger["metadata"]["query"] == f'sum({VLLM_QUEUE_SERIES}{{namespace="inference",model_name="llm"}})'
    assert trigger["metadata"]["threshold"] == "4"  # queue_target, per replica (AverageValue)
    # The HPA's slow scale-down is kept: KEDA hands the behaviour to the HPA it creates.
    behavior = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 1200


def test_keda_is_installed_for_a_keda_service_and_not_for_an_hpa_one(keda_service: Any) -> None:
    _, template = keda_service
    assert "keda" in [r["Properties"]["Chart"] for r in of_type(template, HELM).values()]
    hpa_cluster, hpa_template = synth(dataclasses.replace(SERVICE, autoscaler=Autoscaler.HPA, min_replicas=1))
    assert "keda" not in [r["Properties"]["Chart"] for r in of_type(hpa_template, HELM).values()]
    assert "ScaledObject" not in kinds(hpa_cluster) and "HorizontalPodAutoscaler" in kinds(hpa_cluster)


def test_a_service_that_may_scale_to_zero_is_warned_about(keda_service: Any) -> None:
    cluster, _ = keda_service
    warnings = [
        entry.data
        for entry in cluster.node.find_all()
        for entry in entry.node.metadata
        if entry.type == "aws:cdk:warning"
    ]
    assert any("model service llm may scale to zero" in str(w) for w in warnings)


def test_zero_replicas_need_keda() -> None:
    with pytest.raises(ValidationError, match=r"model_services\[0\]\.replicas.*Autoscaler.KEDA"):
        synth(dataclasses.replace(SERVICE, autoscaler=Autoscaler.HPA))


def test_an_unknown_autoscaler_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"model_services\[0\]\.autoscaler"):
        synth(dataclasses.replace(SERVICE, autoscaler="keda"))  # type: ignore[arg-type]


@requires_chart_cache
def test_the_scaled_object_validates_against_keda_s_crd(keda_service: Any) -> None:
    cluster, _ = keda_service
    scaled = kinds(cluster)["ScaledObject"]
    assert validate_objects([scaled]) == []
    broken = json.loads(json.dumps(scaled))
    broken["spec"]["triggers"][0]["metadata"]["threshold"] = 4  # metadata values are strings
    assert validate_objects([broken]) != []
