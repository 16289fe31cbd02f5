from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import assertions
from aws_cdk import aws_ec2 as ec2

from eks_ml import (
    BaseCluster,
    BaseClusterProps,
    EndpointAccessMode,
    MlVpc,
    MlVpcProps,
    SystemNodesProps,
    ValidationError,
)
from eks_ml.cluster import RELEASES

from .support.synth import library_stack, of_type

ADMIN = "arn:aws:iam::123456789012:role/PlatformAdmin"
OTHER_ADMIN = "arn:aws:iam::123456789012:user/alice"


def only(resources: dict[str, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    assert len(resources) == 1, list(resources)
    return next(iter(resources.items()))


def build(**props: Any) -> tuple[Any, BaseCluster]:
    _, stack = library_stack()
    network = MlVpc(stack, "Network", MlVpcProps(availability_zones=("us-west-2a", "us-west-2b")))
    cluster = BaseCluster(stack, "Cluster", BaseClusterProps(**{"vpc": network.vpc, "cluster_name": "lib", **props}))
    return stack, cluster


# --- a base cluster with every default ---------------------------------------------------------------------


class _Template:
    """The template of one stack, with the look-ups these tests need."""

    def __init__(self, template: dict[str, Any]) -> None:
        self.template = template

    def resources(self, _stack: str, resource_type: str) -> dict[str, dict[str, Any]]:
        return of_type(self.template, resource_type)


@pytest.fixture(scope="module")
def training() -> _Template:
    _, stack = library_stack()
    network = MlVpc(stack, "Network", MlVpcProps(availability_zones=("us-west-2a", "us-west-2b", "us-west-2c")))
    BaseCluster(stack, "Cluster", BaseClusterProps(vpc=network.vpc, cluster_name="eks-ml-training"))
    return _Template(assertions.Template.from_stack(stack).to_json())


def test_control_plane_is_hardened(training: _Template) -> None:
    _, cluster = only(training.resources("Training", "AWS::EKS::Cluster"))
    props = cluster["Properties"]
    assert props["Name"] == "eks-ml-training"
    assert props["Version"] == "1.35"
    assert props["BootstrapSelfManagedAddons"] is False
    assert props["ComputeConfig"] == {"Enabled": False}  # Auto Mode off by default
    assert {t["Type"] for t in props["Logging"]["ClusterLogging"]["EnabledTypes"]} == {
        "api",
        "audit",
        "authenticator",
        "controllerManager",
        "scheduler",
    }
    assert props["EncryptionConfig"][0]["Resources"] == ["secrets"]
    vpc = props["ResourcesVpcConfig"]
    assert (vpc["EndpointPrivateAccess"], vpc["EndpointPublicAccess"], vpc["PublicAccessCidrs"]) == (
        True,
        True,
        ["0.0.0.0/0"],
    )
    assert len(vpc["SubnetIds"]) == 3 and all("Private" in json.dumps(s) for s in vpc["SubnetIds"])
    keys = training.resources("Training", "AWS::KMS::Key")
    _, key = only({k: v for k, v in keys.items() if k.startswith("ClusterSecretsKey")})
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["DeletionPolicy"] == "Retain"


def test_control_plane_log_group_is_precreated_with_retention(training: _Template) -> None:
    groups = training.resources("Training", "AWS::Logs::LogGroup").values()
    group = next(g for g in groups if g["Properties"].get("LogGroupName") == "/aws/eks/eks-ml-training/cluster")
    assert group["Properties"]["RetentionInDays"] == 90
    cluster_id, cluster = only(training.resources("Training", "AWS::EKS::Cluster"))
    assert any(dep.startswith("ClusterControlPlaneLogs") for dep in cluster["DependsOn"])


def test_native_addons_pinned_and_ordered_around_the_system_nodes(training: _Template) -> None:
    addons = {
        a["Properties"]["AddonName"]: (k, a) for k, a in training.resources("Training", "AWS::EKS::Addon").items()
    }
    assert set(addons) == {
        "vpc-cni",
        "kube-proxy",
        "coredns",
        "eks-pod-identity-agent",
        "metrics-server",
        "eks-node-monitoring-agent",
    }
    pinned = RELEASES["1.35"].addon_versions
    for name, (_, addon) in addons.items():
        assert addon["Properties"].get("AddonVersion") == pinned[name]
        assert addon["Properties"]["ResolveConflicts"] == "OVERWRITE"
    assert json.loads(addons["vpc-cni"][1]["Properties"]["ConfigurationValues"]) == {
        "env": {"ENABLE_PREFIX_DELEGATION": "true", "WARM_PREFIX_TARGET": "1"},
        "enableNetworkPolicy": "true",  # NetworkPolicies are enforced (the serving namespace relies on it)
    }
    nodes_id, nodes = only(training.resources("Training", "AWS::EKS::Nodegroup"))
    assert {addons[n][0] for n in ("vpc-cni", "kube-proxy", "eks-pod-identity-agent")} <= set(nodes["DependsOn"])
    for name in ("coredns", "metrics-server", "eks-node-monitoring-agent"):
        assert nodes_id in addons[name][1]["DependsOn"]


def test_system_nodes_are_small_graviton_with_auto_repair(training: _Template) -> None:
    _, nodes = only(training.resources("Training", "AWS::EKS::Nodegroup"))
    props = nodes["Properties"]
    assert props["AmiType"] == "AL2023_ARM_64_STANDARD"
    assert props["InstanceTypes"] == ["m7g.large"]
    assert props["ScalingConfig"] == {"MinSize": 2, "DesiredSize": 2, "MaxSize": 4}
    assert props["NodeRepairConfig"] == {"Enabled": True}
    assert props["Labels"] == {"eks-ml.io/node-role": "system"}
    _, template = only(training.resources("Training", "AWS::EC2::LaunchTemplate"))
    data = template["Properties"]["LaunchTemplateData"]
    assert data["MetadataOptions"] == {"HttpTokens": "required", "HttpPutResponseHopLimit": 2}
    assert data["BlockDeviceMappings"] == [
        {
            "DeviceName": "/dev/xvda",
            "Ebs": {"DeleteOnTermination": True, "Encrypted": True, "VolumeSize": 50, "VolumeType": "gp3"},
        }
    ]
    assert "ImageId" not in data and "InstanceType" not in data  # EKS keeps managing the AMI


def test_kubectl_handler_uses_the_matching_layer_inside_the_vpc(training: _Template) -> None:
    layers = training.resources("Training", "AWS::Lambda::LayerVersion")
    kubectl = [k for k, layer in layers.items() if "kubectl" in layer["Properties"].get("Description", "").lower()]
    assert len(kubectl) == 1
    handler = next(
        f
        for f in training.resources("Training", "AWS::Lambda::Function").values()
        if "kubectl" in f["Properties"].get("Description", "")
    )
    assert {"Ref": kubectl[0]} in handler["Properties"]["Layers"]
    assert len(handler["Properties"]["VpcConfig"]["SubnetIds"]) == 3


# --- library use: variants --------------------------------------------------------------------------------


def test_admin_principals_get_cluster_admin_access_entries_keyed_by_principal() -> None:
    stack, _ = build(admin_principal_arns=(ADMIN, OTHER_ADMIN))
    entries = assertions.Template.from_stack(stack).find_resources(
        "AWS::EKS::AccessEntry", {"Properties": {"PrincipalArn": ADMIN}}
    )
    ((logical_id, entry),) = entries.items()
    assert entry["Properties"]["AccessPolicies"][0]["AccessScope"] == {"Type": "cluster"}
    assert "AmazonEKSClusterAdminPolicy" in json.dumps(entry["Properties"]["AccessPolicies"][0]["PolicyArn"])
    reordered, _ = build(admin_principal_arns=(OTHER_ADMIN, ADMIN))
    assert logical_id in assertions.Template.from_stack(reordered).find_resources(
        "AWS::EKS::AccessEntry", {"Properties": {"PrincipalArn": ADMIN}}
    )


def test_private_endpoint() -> None:
    stack, _ = build(endpoint_access=EndpointAccessMode.PRIVATE)
    assertions.Template.from_stack(stack).has_resource_properties(
        "AWS::EKS::Cluster",
        {
            "ResourcesVpcConfig": assertions.Match.object_like(
                {"EndpointPrivateAccess": True, "EndpointPublicAccess": False}
            )
        },
    )
    assertions.Annotations.from_stack(stack).has_no_warning("*", assertions.Match.string_like_regexp("0.0.0.0/0"))


def test_open_public_endpoint_warns_and_an_allow_list_does_not() -> None:
    open_stack, _ = build()
    assertions.Annotations.from_stack(open_stack).has_warning(
        "/Lib/Cluster", assertions.Match.string_like_regexp("accepts connections from 0.0.0.0/0")
    )
    restricted, _ = build(public_access_cidrs=("203.0.113.0/24",))
    template = assertions.Template.from_stack(restricted)
    template.has_resource_properties(
        "AWS::EKS::Cluster",
        {"ResourcesVpcConfig": assertions.Match.object_like({"PublicAccessCidrs": ["203.0.113.0/24"]})},
    )
    assertions.Annotations.from_stack(restricted).has_no_warning("*", assertions.Match.any_value())


def test_public_only_endpoint() -> None:
    # aws_eks_v2 cannot restrict a public-only endpoint; before this was handled, PUBLIC raised a jsii error.
    stack, _ = build(endpoint_access=EndpointAccessMode.PUBLIC)
    assertions.Template.from_stack(stack).has_resource_properties(
        "AWS::EKS::Cluster",
        {
            "ResourcesVpcConfig": assertions.Match.object_like(
                {"EndpointPrivateAccess": False, "EndpointPublicAccess": True}
            )
        },
    )


def test_auto_mode_uses_eks_compute_and_only_the_addons_it_lacks() -> None:
    stack, cluster = build(auto_mode=True)
    template = assertions.Template.from_stack(stack)
    template.has_resource_properties(
        "AWS::EKS::Cluster",
        {"ComputeConfig": assertions.Match.object_like({"Enabled": True, "NodePools": ["system", "general-purpose"]})},
    )
    template.resource_count_is("AWS::EKS::Nodegroup", 0)
    assert set(cluster.addons) == {"metrics-server"}
    assert cluster.system_nodes is None


def test_addon_versions_can_be_overridden() -> None:
    stack, _ = build(addon_versions={"metrics-server": "v0.8.0-eksbuild.1"})
    assertions.Template.from_stack(stack).has_resource_properties(
        "AWS::EKS::Addon", {"AddonName": "metrics-server", "AddonVersion": "v0.8.0-eksbuild.1"}
    )


def test_kubernetes_version_without_installed_layer_names_the_package() -> None:
    with pytest.raises(ValidationError, match=r"pip install aws-cdk.lambda-layer-kubectl-v33"):
        build(kubernetes_version="1.33")


@pytest.mark.parametrize(
    ("props", "message"),
    [
        ({"cluster_name": "-bad name"}, r"cluster_name='-bad name'"),
        ({"kubernetes_version": "1.29"}, r"kubernetes_version='1.29': allowed one of 1.33, 1.34, 1.35"),
        ({"public_access_cidrs": ()}, r"public_access_cidrs=\[\]: allowed at least one CIDR"),
        ({"endpoint_access": EndpointAccessMode.PRIVATE, "public_access_cidrs": ("1.2.3.4/32",)}, r"no public CIDRs"),
        ({"endpoint_access": EndpointAccessMode.PUBLIC, "public_access_cidrs": ()}, r"at least one CIDR"),
        (
            {"endpoint_access": EndpointAccessMode.PUBLIC, "public_access_cidrs": ("203.0.113.0/24",)},
            r"allowed an allow-list only with the publicAndPrivate endpoint",
        ),
        ({"admin_principal_arns": ("123456789012",)}, r"IAM role or user ARNs"),
        ({"admin_principal_arns": (ADMIN, ADMIN)}, r"each principal once"),
        ({"addon_versions": {"kube-dns": "v1"}}, r"addon_versions='kube-dns': allowed one of vpc-cni"),
        ({"system_nodes": SystemNodesProps(min_size=3, desired_size=2)}, r"1 <= min_size <= desired_size <= max_size"),
        ({"system_nodes": SystemNodesProps(instance_type=ec2.InstanceType("m7i.large"))}, r"Graviton \(arm64\)"),
        ({"system_nodes": SystemNodesProps(root_volume_gib=8)}, r"root_volume_gib=8: allowed at least 20 GiB"),
    ],
)
def test_bad_cluster_props(props: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        build(**props)
