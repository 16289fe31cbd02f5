from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import assertions

from eks_ml import MlVpc, MlVpcProps, NatGateways, ValidationError
from eks_ml.network import ELB_ROLE_TAG, INTERNAL_ELB_ROLE_TAG, KARPENTER_DISCOVERY_TAG

from .support.synth import library_stack

AZS = ("us-west-2a", "us-west-2b", "us-west-2c")


def vpc_template(**props: Any) -> assertions.Template:
    _, stack = library_stack()
    MlVpc(stack, "Network", MlVpcProps(**{"availability_zones": AZS, **props}))
    return assertions.Template.from_stack(stack)


@pytest.fixture(scope="module")
def default_vpc() -> assertions.Template:
    return vpc_template(discovery_tag_value="team-a")


def _subnets(template: assertions.Template, tag: str) -> list[dict[str, Any]]:
    subnets = template.find_resources("AWS::EC2::Subnet").values()
    return [s for s in subnets if any(t["Key"] == tag for t in s["Properties"]["Tags"])]


def test_one_public_and_one_pod_sized_private_subnet_per_az(default_vpc: assertions.Template) -> None:
    private = _subnets(default_vpc, INTERNAL_ELB_ROLE_TAG)
    public = _subnets(default_vpc, ELB_ROLE_TAG)
    assert sorted(s["Properties"]["AvailabilityZone"] for s in private) == list(AZS)
    assert sorted(s["Properties"]["AvailabilityZone"] for s in public) == list(AZS)
    assert {s["Properties"]["CidrBlock"].split("/")[1] for s in private} == {"18"}  # 16,384 addresses each
    assert all(s["Properties"]["MapPublicIpOnLaunch"] is False for s in public)


def test_private_subnets_carry_the_karpenter_discovery_tag(default_vpc: assertions.Template) -> None:
    for subnet in _subnets(default_vpc, INTERNAL_ELB_ROLE_TAG):
        assert {"Key": KARPENTER_DISCOVERY_TAG, "Value": "team-a"} in subnet["Properties"]["Tags"]
    for subnet in _subnets(default_vpc, ELB_ROLE_TAG):
        assert all(t["Key"] != KARPENTER_DISCOVERY_TAG for t in subnet["Properties"]["Tags"])


def test_s3_gateway_endpoint_and_flow_logs(default_vpc: assertions.Template) -> None:
    default_vpc.has_resource_properties(
        "AWS::EC2::VPCEndpoint",
        {
            "VpcEndpointType": "Gateway",
            "ServiceName": {"Fn::Join": ["", ["com.amazonaws.", {"Ref": "AWS::Region"}, ".s3"]]},
        },
    )
    default_vpc.has_resource_properties(
        "AWS::EC2::FlowLog", {"TrafficType": "ALL", "LogDestinationType": "cloud-watch-logs", "ResourceType": "VPC"}
    )
    default_vpc.has_resource("AWS::Logs::LogGroup", {"Properties": {"RetentionInDays": 90}, "DeletionPolicy": "Retain"})


@pytest.mark.parametrize(("mode", "count"), [(NatGateways.PER_AZ, 3), (NatGateways.SINGLE, 1)])
def test_nat_gateways_per_az_or_single(mode: NatGateways, count: int) -> None:
    vpc_template(nat_gateways=mode).resource_count_is("AWS::EC2::NatGateway", count)


def test_two_azs_is_enough() -> None:
    vpc_template(availability_zones=AZS[:2]).resource_count_is("AWS::EC2::Subnet", 4)


@pytest.mark.parametrize(
    ("props", "message"),
    [
        ({"availability_zones": ("us-west-2a",)}, r"availability_zones=\['us-west-2a'\]: allowed 2 to 6"),
        ({"availability_zones": ("eu-west-1a", "eu-west-1b")}, r"allowed AZs of region us-west-2"),
        ({"cidr": "10.0.0.0/8"}, r"cidr='10.0.0.0/8': allowed a prefix from /16 to /28"),
        ({"cidr": "192.168.0.0/16", "private_subnet_mask": 17}, r"room for 3 private /17"),
        ({"public_subnet_mask": 29}, r"public_subnet_mask=29: allowed a mask from /17 to /28"),
    ],
)
def test_bad_vpc_props(props: dict[str, Any], message: str) -> None:
    _, stack = library_stack()
    with pytest.raises(ValidationError, match=message):
        MlVpc(stack, "Network", MlVpcProps(**{"availability_zones": AZS, **props}))
