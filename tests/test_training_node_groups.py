from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import assertions

from eks_ml import BaseClusterProps, MlVpc, MlVpcProps, ValidationError, catalog
from eks_ml.training import (
    Capacity,
    EfaLayout,
    StorageClassesProps,
    TrainingCluster,
    TrainingClusterProps,
    TrainingNodeGroupProps,
    training_instance_types,
)

from .support import eks_checks
from .support.synth import library_stack, of_type

AZS = ("us-west-2a", "us-west-2b")
RESERVATION = "cr-0123456789abcdef0"


def resources(template: dict[str, Any], resource_type: str) -> list[dict[str, Any]]:
    return list(of_type(template, resource_type).values())


def synth(*groups: TrainingNodeGroupProps, **props: Any) -> tuple[Any, dict[str, Any]]:
    _, stack = library_stack()
    network = MlVpc(stack, "Network", MlVpcProps(availability_zones=AZS))
    cluster = TrainingCluster(
        stack,
        "Training",
        TrainingClusterProps(
            base=BaseClusterProps(vpc=network.vpc, cluster_name="train"),
            node_groups=groups,
            file_system=None,
            **props,
        ),
    )
    return cluster, assertions.Template.from_stack(stack).to_json()


def training_launch_template(template: dict[str, Any]) -> dict[str, Any]:
    (data,) = [
        r["Properties"]["LaunchTemplateData"]
        for r in resources(template, "AWS::EC2::LaunchTemplate")
        if "NetworkInterfaces" in r["Properties"]["LaunchTemplateData"]
    ]
    return data


def training_nodegroup(template: dict[str, Any]) -> dict[str, Any]:
    (group,) = [
        r["Properties"]
        for r in resources(template, "AWS::EKS::Nodegroup")
        if r["Properties"]["Labels"].get("eks-ml.io/node-role") == "training"
    ]
    return group


@pytest.fixture(scope="module", params=training_instance_types())
def wired(request: pytest.FixtureRequest) -> tuple[catalog.InstanceSpec, Any, dict[str, Any]]:
    spec = catalog.lookup(request.param)
    cluster, template = synth(TrainingNodeGroupProps(name="g", instance_type=spec.name))
    return spec, cluster, template


def test_training_types_are_the_efa_capable_training_families() -> None:
    assert set(training_instance_types()) == {
        "p4d.24xlarge",
        "p4de.24xlarge",
        "p5.4xlarge",
        "p5.48xlarge",
        "p5e.48xlarge",
        "p5en.48xlarge",
        "p6-b200.48xlarge",
        "p6-b300.48xlarge",
        "trn1.32xlarge",
        "trn1n.32xlarge",
        "trn2.48xlarge",
    }


# Every value CloudFormation accepts for NetworkInterfaces InterfaceType; cfn-lint does not check it.
VALID_INTERFACE_TYPES = {"interface", "efa", "efa-only"}


def test_launch_template_interfaces_follow_the_ec2_guide(wired: Any) -> None:
    """ENA primary at card 0 device 0, efa-only at card 0 device 1 where card 0 has EFA, efa-only at
    device 0 on every other card (EC2 user guide, "Maximize network bandwidth on instances with multiple
    network cards", checked 2026-11); as many EFA devices as the training pods request."""
    spec, cluster, template = wired
    interfaces = training_launch_template(template)["NetworkInterfaces"]
    assert {i["InterfaceType"] for i in interfaces} <= VALID_INTERFACE_TYPES
    slots = {(i["NetworkCardIndex"], i["DeviceIndex"]): i["InterfaceType"] for i in interfaces}
    assert len(slots) == len(interfaces)
    assert slots[(0, 0)] == "interface"
    if spec.efa_on_card_zero:
        assert slots[(0, 1)] == "efa-only"
    else:
        assert [key for key in slots if key[0] == 0] == [(0, 0)]
    for card in range(1, spec.network_cards):
        assert slots[(card, 0)] == "efa-only"
    assert len(slots) == spec.efa_interfaces + 1  # the EFA devices and the one ENA primary
    efa = [i for i in interfaces if i["InterfaceType"] in {"efa", "efa-only"}]
    (job,) = [j for j in cluster.jobs_chart.to_json() if j["metadata"]["name"] == "g-fabric-test"]
    assert job["spec"]["trainer"]["resourcesPerNode"]["requests"]["vpc.amazonaws.com/efa"] == str(len(efa))
    for interface in interfaces:
        assert len(interface["Groups"]) == 2  # the EFA group and the cluster security group
        assert interface["DeleteOnTermination"] is True


def test_instance_type_and_ami_type_from_the_catalog(wired: Any) -> None:
    spec, _, template = wired
    assert training_launch_template(template)["InstanceType"] == spec.name
    group = training_nodegroup(template)
    assert group["AmiType"] == spec.ami_type
    assert "InstanceTypes" not in group  # the launch template carries the type
    # The accelerator taint, and the startup taint only a passed burn-in lifts.
    assert group["Taints"] == [
        {"Effect": "NO_SCHEDULE", "Key": spec.accelerator_resource, "Value": "true"},
        {"Effect": "NO_SCHEDULE", "Key": "eks-ml.io/burn-in", "Value": "pending"},
    ]
    assert group["Labels"] == {
        "eks-ml.io/node-role": "training",
        "eks-ml.io/node-group": "g",
        "eks-ml.io/accelerator": spec.vendor.value,
    }


def test_one_subnet_one_placement_group(wired: Any) -> None:
    _, _, template = wired
    group = training_nodegroup(template)
    assert len(group["Subnets"]) == 1
    (placement,) = resources(template, "AWS::EC2::PlacementGroup")
    assert placement["Properties"] == {"Strategy": "cluster"}
    assert "GroupName" in training_launch_template(template)["Placement"]
    assert group["NodeRepairConfig"] == {"Enabled": True}
    assert group["CapacityType"] == "ON_DEMAND"


def test_launch_template_is_hardened_and_raids_the_nvme(wired: Any) -> None:
    _, _, template = wired
    data = training_launch_template(template)
    assert data["MetadataOptions"] == {"HttpTokens": "required", "HttpPutResponseHopLimit": 2}
    assert data["BlockDeviceMappings"][0]["Ebs"] == {
        "DeleteOnTermination": True,
        "Encrypted": True,
        "VolumeSize": 200,
        "VolumeType": "gp3",
    }
    user_data = data["UserData"]["Fn::Base64"]
    assert "Content-Type: application/node.eks.aws" in user_data and "strategy: RAID0" in user_data
    assert eks_checks.launch_template_findings(template) == []
    assert eks_checks.nodegroup_findings(template) == []


def test_efa_security_group_allows_all_traffic_to_and_from_itself(wired: Any) -> None:
    _, cluster, template = wired
    group_id = {
        "Fn::GetAtt": [
            next(
                k
                for k, r in template["Resources"].items()
                if r["Type"] == "AWS::EC2::SecurityGroup" and "EFA" in r["Properties"]["GroupDescription"]
            ),
            "GroupId",
        ]
    }
    (ingress,) = [
        r["Properties"]
        for r in resources(template, "AWS::EC2::SecurityGroupIngress")
        if r["Properties"].get("SourceSecurityGroupId") == group_id and r["Properties"]["GroupId"] == group_id
    ]
    (egress,) = [
        r["Properties"]
        for r in resources(template, "AWS::EC2::SecurityGroupEgress")
        if r["Properties"].get("DestinationSecurityGroupId") == group_id
    ]
    assert ingress["GroupId"] == group_id and ingress["IpProtocol"] == "-1"
    assert egress["GroupId"] == group_id and egress["IpProtocol"] == "-1"
    assert group_id in training_launch_template(template)["NetworkInterfaces"][0]["Groups"]


def test_ena_on_every_card_layout_adds_an_ip_interface_per_card() -> None:
    props = TrainingNodeGroupProps(name="g", instance_type="p5en.48xlarge", efa_layout=EfaLayout.ENA_ON_EVERY_CARD)
    _, template = synth(props)
    interfaces = training_launch_template(template)["NetworkInterfaces"]
    by_type: dict[str, list[tuple[int, int]]] = {}
    for i in interfaces:
        by_type.setdefault(i["InterfaceType"], []).append((i["NetworkCardIndex"], i["DeviceIndex"]))
    assert sorted(by_type["interface"]) == [(0, 0)] + [(card, 1) for card in range(1, 16)]
    assert sorted(by_type["efa-only"]) == [(0, 1)] + [(card, 0) for card in range(1, 16)]
    assert set(by_type) == {"interface", "efa-only"}


def test_capacity_reservation_targets_the_reservation_without_a_placement_group() -> None:
    _, template = synth(TrainingNodeGroupProps(name="g", capacity=Capacity.reservation(RESERVATION)))
    data = training_launch_template(template)
    assert data["CapacityReservationSpecification"] == {
        "CapacityReservationTarget": {"CapacityReservationId": RESERVATION}
    }
    assert "Placement" not in data and "InstanceMarketOptions" not in data
    assert resources(template, "AWS::EC2::PlacementGroup") == []
    assert training_nodegroup(template)["CapacityType"] == "ON_DEMAND"


def test_capacity_block_uses_the_capacity_block_market_and_node_group_type() -> None:
    _, template = synth(
        TrainingNodeGroupProps(
            name="g",
            instance_type="trn2.48xlarge",
            capacity=Capacity.capacity_block(RESERVATION),
            desired_size=0,
            max_size=4,
        )
    )
    data = training_launch_template(template)
    assert data["InstanceMarketOptions"] == {"MarketType": "capacity-block"}
    assert data["CapacityReservationSpecification"]["CapacityReservationTarget"]["CapacityReservationId"] == RESERVATION
    group = training_nodegroup(template)
    assert group["CapacityType"] == "CAPACITY_BLOCK"
    assert group["ScalingConfig"] == {"MinSize": 0, "DesiredSize": 0, "MaxSize": 4}


def test_capacity_block_with_nodes_requested_warns() -> None:
    cluster, _ = synth(TrainingNodeGroupProps(name="g", capacity=Capacity.capacity_block(RESERVATION)))
    annotations = assertions.Annotations.from_stack(cluster.node.scope)
    annotations.has_warning("/Lib/Training/GGroup", assertions.Match.string_like_regexp("set desired_size to 0"))


def test_groups_in_a_chosen_az_and_several_groups() -> None:
    # Groups in several AZs: only without FSx for Lustre (a file system, or classes that create them).
    cluster, template = synth(
        TrainingNodeGroupProps(name="p5", availability_zone="us-west-2b"),
        TrainingNodeGroupProps(name="trn", instance_type="trn1.32xlarge"),
        storage_classes=StorageClassesProps(lustre=[]),
    )
    assert cluster.node_groups["p5"].subnet.availability_zone == "us-west-2b"
    assert cluster.node_groups["trn"].subnet.availability_zone == "us-west-2a"
    assert len(resources(template, "AWS::EC2::PlacementGroup")) == 2


BAD_GROUPS = [
    pytest.param({"instance_type": "p5.48xlarg"}, r"did you mean p5.48xlarge", id="unknown-type"),
    pytest.param(
        {"instance_type": "g6.12xlarge"},
        r"an EFA-capable training type or a fine-tuning type: p4d.24xlarge",
        id="inference-type",
    ),
    pytest.param({"instance_type": "inf2.48xlarge"}, r"use InferenceCluster for inference types", id="inferentia"),
    pytest.param(
        {"desired_size": 3, "max_size": 2}, r"0 <= min_size <= desired_size <= max_size", id="desired-above-max"
    ),
    pytest.param({"min_size": -1}, r"sizes=.*'min': -1", id="negative-min"),
    pytest.param({"desired_size": 0, "max_size": 0}, r"max_size >= 1", id="empty-group"),
    pytest.param(
        {"capacity": Capacity.reservation(RESERVATION), "placement_group": True},
        r"no forced placement group with a capacity reservation",
        id="pg-with-reservation",
    ),
    pytest.param(
        {"capacity": Capacity.capacity_block(RESERVATION), "placement_group": True, "desired_size": 0, "max_size": 1},
        r"no forced placement group",
        id="pg-with-capacity-block",
    ),
    pytest.param(
        {"capacity": Capacity.reservation("reservation-1")},
        r"a capacity reservation id such as cr-",
        id="malformed-reservation",
    ),
    pytest.param(
        {"capacity": Capacity.capacity_block("")}, r"capacity.reservation_id=''", id="empty-capacity-block-id"
    ),
    pytest.param({"name": "P5 Group"}, r"name='P5 Group'", id="bad-name"),
    pytest.param(
        {"availability_zone": "us-west-2c"},
        r"an AZ with a private subnet of the VPC: us-west-2a, us-west-2b",
        id="az-outside-vpc",
    ),
    pytest.param({"root_volume_gib": 30}, r"at least 100 GiB", id="small-root"),
    pytest.param({"labels": {"kubernetes.io/role": "x"}}, r"outside the reserved domains", id="reserved-label"),
    pytest.param({"labels": {"bad key!": "x"}}, r"labels\['bad key!'\]", id="malformed-label"),
]


@pytest.mark.parametrize(("props", "message"), BAD_GROUPS)
def test_bad_node_group(props: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        synth(TrainingNodeGroupProps(**{"name": "g", **props}))


def test_duplicate_group_names() -> None:
    with pytest.raises(ValidationError, match=r"node_groups.name='g': allowed unique group names"):
        synth(TrainingNodeGroupProps(name="g"), TrainingNodeGroupProps(name="g"))


def test_no_groups() -> None:
    with pytest.raises(ValidationError, match=r"at least one training node group"):
        synth()


def test_base_or_cluster_exactly_one() -> None:
    _, stack = library_stack()
    with pytest.raises(ValidationError, match=r"exactly one of base .* or cluster"):
        TrainingCluster(stack, "Training", TrainingClusterProps())
