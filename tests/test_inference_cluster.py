from __future__ import annotations

import json
from typing import Any

import pytest

from eks_ml import ValidationError, catalog, helm
from eks_ml.inference import InferenceCluster, NodeOS, NodePoolProps, PoolKind

from .support.charts import chart_cache_available
from .support.inference import inference_cluster
from .support.manifests import requires_chart_cache, validate_objects
from .support.synth import joined, manifest_id, of_type, resource_id

HELM = "Custom::AWSCDK-EKS-HelmChart"


def synth(auto_mode: bool = False, **props: Any) -> tuple[InferenceCluster, dict[str, Any]]:
    return inference_cluster(base={"auto_mode": auto_mode}, **props)


@pytest.fixture(scope="module")
def default() -> tuple[InferenceCluster, dict[str, Any]]:
    return synth()


def objects(cluster: InferenceCluster) -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["kind"], o["metadata"]["name"]): o for o in cluster.pools_chart.to_json()}


# --- Karpenter ------------------------------------------------------------------------------------------


def test_interruption_queue_is_fed_by_the_four_event_kinds(default: Any) -> None:
    _, template = default
    ((queue_id, queue),) = of_type(template, "AWS::SQS::Queue").items()
    assert queue["Properties"]["QueueName"] == "serve-karpenter"
    assert queue["Properties"]["SqsManagedSseEnabled"] is True
    assert queue["Properties"]["MessageRetentionPeriod"] == 300
    patterns = sorted(
        (r["Properties"]["EventPattern"]["source"][0], r["Properties"]["EventPattern"]["detail-type"][0])
        for r in of_type(template, "AWS::Events::Rule").values()
        if r["Properties"]["Targets"][0]["Arn"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    )
    assert patterns == [
        ("aws.ec2", "EC2 Instance Rebalance Recommendation"),
        ("aws.ec2", "EC2 Instance State-change Notification"),
        ("aws.ec2", "EC2 Spot Instance Interruption Warning"),
        ("aws.health", "AWS Health Event"),
    ]
    (policy,) = of_type(template, "AWS::SQS::QueuePolicy").values()
    effects = {s["Effect"] for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    assert effects == {"Allow", "Deny"}  # events may send; non-TLS access is denied


def test_node_role_has_a_fixed_name_and_an_ec2_linux_access_entry(default: Any) -> None:
    cluster, template = default
    role_id = resource_id(template, "AWS::IAM::Role", RoleName="serve-karpenter-node")
    assert cluster.karpenter.node_role_name == "serve-karpenter-node"
    entry = template["Resources"][resource_id(template, "AWS::EKS::AccessEntry", Type="EC2_LINUX")]
    assert entry["Properties"]["PrincipalArn"] == {"Fn::GetAtt": [role_id, "Arn"]}
    policies = json.dumps(template["Resources"][role_id]["Properties"]["ManagedPolicyArns"])
    for name in (
        "AmazonEKSWorkerNodePolicy",
        "AmazonEKS_CNI_Policy",
        "AmazonEC2ContainerRegistryPullOnly",
        "AmazonSSMManagedInstanceCore",
    ):
        assert name in policies


def test_controller_uses_pod_identity_with_a_scoped_policy(default: Any) -> None:
    cluster, template = default
    association = template["Resources"][
        resource_id(template, "AWS::EKS::PodIdentityAssociation", ServiceAccount="karpenter")
    ]
    assert association["Properties"]["Namespace"] == "kube-system"
    role_id = association["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    trust = template["Resources"][role_id]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]
    assert trust["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    (policy,) = [
        p for p in of_type(template, "AWS::IAM::Policy").values() if p["Properties"]["Roles"] == [{"Ref": role_id}]
    ]
    statements = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    # Statement by statement against Karpenter's reference policy: tests/test_karpenter_policy.py.
    assert statements["AllowScopedDeletion"]["Condition"] == {
        "StringEquals": {"aws:ResourceTag/kubernetes.io/cluster/serve": "owned"},
        "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"},
    }
    node_role = resource_id(template, "AWS::IAM::Role", RoleName="serve-karpenter-node")
    assert statements["AllowPassingInstanceRole"]["Resource"] == {"Fn::GetAtt": [node_role, "Arn"]}
    assert (
        statements["AllowScopedInstanceProfileCreationActions"]["Condition"]["StringEquals"][
            "aws:RequestTag/kubernetes.io/cluster/serve"
        ]
        == "owned"
    )
    assert "Fn::GetAtt" in json.dumps(statements["AllowInterruptionQueueActions"]["Resource"])


def test_chart_runs_on_system_nodes_after_its_identity(default: Any) -> None:
    _, template = default
    chart = template["Resources"][resource_id(template, HELM, Release="karpenter")]
    assert (chart["Properties"]["Repository"], chart["Properties"]["Version"]) == (helm.KARPENTER.repository, "1.14.1")
    values = json.loads(joined(chart["Properties"]["Values"]))
    assert values["settings"]["clusterName"] == "serve"
    assert values["nodeSelector"] == {"eks-ml.io/node-role": "system"}
    assert resource_id(template, "AWS::EKS::PodIdentityAssociation", ServiceAccount="karpenter") in chart["DependsOn"]
    pools = template["Resources"][manifest_id(template, "NodePool")]
    assert resource_id(template, HELM, Release="karpenter") in pools["DependsOn"]


# --- pools ----------------------------------------------------------------------------------------------


def test_default_pools_cover_nvidia_neuron_and_cpu(default: Any) -> None:
    cluster, _ = default
    found = objects(cluster)
    assert {name for kind, name in found if kind == "NodePool"} == {"gpu", "inferentia", "cpu"}
    gpu_types = next(
        r
        for r in found[("NodePool", "gpu")]["spec"]["template"]["spec"]["requirements"]
        if r["key"] == "node.kubernetes.io/instance-type"
    )
    assert set(gpu_types["values"]) == {s.name for s in catalog.all_instance_types() if s.family in ("g5", "g6", "g6e")}
    inf = next(
        r
        for r in found[("NodePool", "inferentia")]["spec"]["template"]["spec"]["requirements"]
        if r["key"] == "node.kubernetes.io/instance-type"
    )
    assert inf["values"] == ["inf2.24xlarge", "inf2.48xlarge", "inf2.8xlarge", "inf2.xlarge"]


def test_accelerated_pools_are_tainted_limited_and_spare_busy_servers(default: Any) -> None:
    cluster, _ = default
    gpu = objects(cluster)[("NodePool", "gpu")]["spec"]
    template = gpu["template"]
    assert template["spec"]["taints"] == [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}]
    assert template["metadata"]["labels"] == {
        "eks-ml.io/node-role": "inference",
        "eks-ml.io/pool": "gpu",
        "eks-ml.io/accelerator": "nvidia",
        "eks-ml.io/node-os": "bottlerocket",
    }
    assert {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot", "on-demand"]} in template["spec"][
        "requirements"
    ]
    assert gpu["limits"] == {"cpu": "1024", "nvidia.com/gpu": "32"}
    assert gpu["disruption"] == {
        "consolidationPolicy": "WhenEmpty",
        "consolidateAfter": "10m",
        "budgets": [{"nodes": "10%"}],
    }
    assert template["spec"]["expireAfter"] == "720h"
    inferentia = objects(cluster)[("NodePool", "inferentia")]["spec"]
    assert inferentia["limits"]["aws.amazon.com/neuron"] == "32"
    cpu = objects(cluster)[("NodePool", "cpu")]["spec"]["template"]["spec"]
    assert cpu["taints"] == []
    assert {"key": "karpenter.k8s.aws/instance-generation", "operator": "Gt", "values": ["6"]} in cpu["requirements"]


def test_node_classes_are_pinned_and_locked_down(default: Any) -> None:
    cluster, _ = default
    for pool in ("gpu", "inferentia", "cpu"):
        spec = objects(cluster)[("EC2NodeClass", pool)]["spec"]
        alias = "bottlerocket@v1.64.0" if pool == "gpu" else "al2023@v20260728"
        assert spec["amiSelectorTerms"] == [{"alias": alias}]
        assert spec["role"] == "serve-karpenter-node"
        assert spec["subnetSelectorTerms"] == [{"tags": {"karpenter.sh/discovery": "ml"}}]
        assert spec["securityGroupSelectorTerms"] == [{"tags": {"aws:eks:cluster-name": "serve"}}]
        assert spec["metadataOptions"] == {
            "httpEndpoint": "enabled",
            "httpTokens": "required",
            "httpPutResponseHopLimit": 2,
        }
        devices = {d["deviceName"]: d["ebs"] for d in spec["blockDeviceMappings"]}
        assert all(ebs["encrypted"] is True and ebs["volumeType"] == "gp3" for ebs in devices.values())
        # Bottlerocket: a small OS volume and the data volume (images, logs) sized by the pool; AL2023: one root.
        data = devices.pop("/dev/xvdb") if pool == "gpu" else devices.pop("/dev/xvda")
        assert data["volumeSize"] == ("50Gi" if pool == "cpu" else "200Gi")
        assert devices == ({"/dev/xvda": devices["/dev/xvda"]} if pool == "gpu" else {})
        if pool == "gpu":
            assert devices["/dev/xvda"]["volumeSize"] == "4Gi"
        assert spec["instanceStorePolicy"] == "RAID0"
        assert objects(cluster)[("NodePool", pool)]["spec"]["template"]["spec"]["nodeClassRef"] == {
            "group": "karpenter.k8s.aws",
            "kind": "EC2NodeClass",
            "name": pool,
        }


def test_bottlerocket_gpu_pools_need_no_nvidia_plugin_release(default: Any) -> None:
    cluster, template = default
    assert set(cluster.device_plugins) == {"neuron"}
    assert "nvidia-device-plugin" not in {r["Properties"].get("Release") for r in of_type(template, HELM).values()}


def test_an_al2023_gpu_pool_gets_the_nvidia_plugin_on_its_nodes_only() -> None:
    cluster, template = synth(
        pools=[
            NodePoolProps(name="a10", kind=PoolKind.NVIDIA, instance_types=["g5.xlarge"], os=NodeOS.AL2023),
            NodePoolProps(name="l4", kind=PoolKind.NVIDIA, instance_types=["g6.xlarge"]),
        ]
    )
    assert set(cluster.device_plugins) == {"nvidia"}
    # Never beside the plugin Bottlerocket runs as a host service.
    (plugin,) = [
        p for p in cluster.model.placements() if p.workload.name == "DaemonSet kube-system/nvidia-device-plugin"
    ]
    assert dict(plugin.landings) == {"Karpenter NodePool a10": ("g5.xlarge",)}
    chart = template["Resources"][resource_id(template, HELM, Release="nvidia-device-plugin")]
    assert json.loads(joined(chart["Properties"]["Values"]))["nodeSelector"] == {"eks-ml.io/node-os": "al2023"}
    found = objects(cluster)
    assert found[("EC2NodeClass", "a10")]["spec"]["amiSelectorTerms"] == [{"alias": "al2023@v20260728"}]
    assert found[("EC2NodeClass", "l4")]["spec"]["amiSelectorTerms"] == [{"alias": "bottlerocket@v1.64.0"}]
    assert found[("NodePool", "a10")]["spec"]["template"]["metadata"]["labels"]["eks-ml.io/node-os"] == "al2023"
    if chart_cache_available():  # both node classes against the pinned Karpenter CRDs and their CEL rules
        assert validate_objects(cluster.pools_chart.to_json()) == []


@requires_chart_cache
def test_pool_objects_pass_the_validator(default: Any) -> None:
    cluster, _ = default
    assert validate_objects(cluster.pools_chart.to_json()) == []


def test_explicit_types_and_on_demand_only() -> None:
    cluster, _ = synth(
        pools=[
            NodePoolProps(
                name="l40s",
                kind=PoolKind.NVIDIA,
                instance_types=["g6e.12xlarge", "g6e.48xlarge"],
                capacity_types=["on-demand"],
            )
        ]
    )
    spec = objects(cluster)[("NodePool", "l40s")]["spec"]["template"]["spec"]
    assert {
        "key": "node.kubernetes.io/instance-type",
        "operator": "In",
        "values": ["g6e.12xlarge", "g6e.48xlarge"],
    } in spec["requirements"]
    assert {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]} in spec["requirements"]


def test_auto_mode_uses_eks_node_pools_without_karpenter() -> None:
    cluster, template = synth(auto_mode=True)
    assert cluster.karpenter is None
    assert not of_type(template, "AWS::SQS::Queue") and HELM not in {r["Type"] for r in template["Resources"].values()}
    found = objects(cluster)
    assert not [k for k in found if k[0] == "EC2NodeClass"]
    gpu = found[("NodePool", "gpu")]["spec"]["template"]["spec"]
    assert gpu["nodeClassRef"] == {"group": "eks.amazonaws.com", "kind": "NodeClass", "name": "default"}
    assert "eks-ml.io/node-os" not in found[("NodePool", "gpu")]["spec"]["template"]["metadata"]["labels"]
    assert all(line.endswith("on EKS Auto Mode's AMI") for line in cluster.plan.pools)  # not the pinned aliases
    cpu = found[("NodePool", "cpu")]["spec"]["template"]["spec"]
    assert {r["key"] for r in cpu["requirements"]} >= {
        "eks.amazonaws.com/instance-category",
        "eks.amazonaws.com/instance-generation",
    }
    if chart_cache_available():  # custom kinds validate only against the pinned charts' CRDs
        assert validate_objects(cluster.pools_chart.to_json()) == []


BAD = [
    pytest.param({"pools": []}, r"at least one node pool", id="no-pools"),
    pytest.param(
        {"pools": [NodePoolProps(name="a", kind=PoolKind.CPU), NodePoolProps(name="a", kind=PoolKind.CPU)]},
        r"pools.name='a': allowed unique",
        id="duplicate-names",
    ),
    pytest.param({"pools": [NodePoolProps(name="GPU", kind=PoolKind.NVIDIA)]}, r"name='GPU'", id="bad-name"),
    pytest.param(
        {"pools": [NodePoolProps(name="g", kind=PoolKind.NVIDIA, instance_types=["g6.2xlarg"])]},
        r"did you mean g6.2xlarge",
        id="unknown-type",
    ),
    pytest.param(
        {"pools": [NodePoolProps(name="g", kind=PoolKind.NVIDIA, instance_types=["inf2.xlarge"])]},
        r"allowed nvidia types \(g5, g6, g6e families\)",
        id="wrong-vendor",
    ),
    pytest.param(
        {"pools": [NodePoolProps(name="c", kind=PoolKind.CPU, instance_types=["m7i.large"])]},
        r"no explicit types for a CPU pool",
        id="cpu-with-types",
    ),
    pytest.param(
        {"pools": [NodePoolProps(name="g", kind=PoolKind.NVIDIA, capacity_types=["reserved"])]},
        r"one or both of spot, on-demand",
        id="bad-capacity",
    ),
    pytest.param(
        {"pools": [NodePoolProps(name="g", kind=PoolKind.NVIDIA, capacity_types=[])]},
        r"capacity_types=\[\]",
        id="no-capacity",
    ),
    pytest.param(
        {"pools": [NodePoolProps(name="g", kind=PoolKind.NVIDIA, accelerator_limit=0)]},
        r"positive limits",
        id="zero-limit",
    ),
    pytest.param(
        {"pools": [NodePoolProps(name="g", kind=PoolKind.NVIDIA, consolidate_after="ten minutes")]},
        r"consolidate_after='ten minutes'",
        id="bad-duration",
    ),
    pytest.param(
        {"pools": [NodePoolProps(name="g", kind=PoolKind.NVIDIA, disruption_budget="lots")]},
        r"a node count or a percentage",
        id="bad-budget",
    ),
    pytest.param({"ami_alias": "al2023@latest"}, r"never @latest", id="latest-ami"),
    pytest.param({"ami_alias": "bottlerocket@v1.64.0"}, r"ami_alias='bottlerocket@v1.64.0'", id="al2023-ami-family"),
    pytest.param(
        {"bottlerocket_ami_alias": "bottlerocket@latest"},
        r"bottlerocket_ami_alias='bottlerocket@latest': allowed a pinned bottlerocket release",
        id="latest-bottlerocket",
    ),
    pytest.param(
        {"bottlerocket_ami_alias": "al2023@v20260728"}, r"such as bottlerocket@v1.64.0", id="bottlerocket-ami-family"
    ),
    pytest.param(
        {"pools": [NodePoolProps(name="n", kind=PoolKind.NEURON, os=NodeOS.BOTTLEROCKET)]},
        r"pools\[0\].os='bottlerocket': allowed Bottlerocket only for NVIDIA pools",
        id="bottlerocket-neuron-pool",
    ),
    pytest.param(
        {"pools": [NodePoolProps(name="g", kind=PoolKind.NVIDIA, os="bottlerocket")]},  # type: ignore[arg-type]
        r"pools\[0\].os",
        id="os-not-an-enum",
    ),
]


@pytest.mark.parametrize(("props", "message"), BAD)
def test_bad_inference_props(props: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        synth(**props)


def test_an_explicit_node_os_is_refused_with_auto_mode() -> None:
    # EKS Auto Mode picks its own AMI: a pool asking for AL2023 would silently get Auto Mode's nodes instead.
    with pytest.raises(ValidationError, match=r"pools\[0\]\.os='al2023': allowed no os with EKS Auto Mode"):
        synth(
            auto_mode=True,
            pools=[NodePoolProps(name="g", kind=PoolKind.NVIDIA, instance_types=["g5.xlarge"], os=NodeOS.AL2023)],
        )


def test_the_pinned_bottlerocket_release_ships_an_nvidia_variant_for_every_supported_kubernetes_version() -> None:
    from eks_ml.cluster.versions import RELEASES
    from eks_ml.inference.node_os import PINNED_BOTTLEROCKET_NVIDIA_KUBERNETES

    # A Kubernetes version added to eks_ml.cluster.versions without a Bottlerocket pin that ships its NVIDIA
    # variant would leave the gpu pool's EC2NodeClass with no AMI on that version: roll the pin forward with it.
    assert set(RELEASES) <= PINNED_BOTTLEROCKET_NVIDIA_KUBERNETES
