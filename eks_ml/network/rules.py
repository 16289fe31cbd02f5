"""Network rules shared by the VPC construct and the app configuration.

Each check takes the name of the field it reports on, so a library user sees the prop name
(``availability_zones``) and an app user sees the context key (``eks-ml:availabilityZones``).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence

from aws_cdk import aws_ec2 as ec2

from .._tokens import is_unresolved
from ..errors import Problems

MIN_AZS = 2  # EKS requires control-plane subnets in at least two AZs.
MAX_AZS = 6
# An AZ name is the region plus one letter: us-west-2a, eu-central-1b, us-gov-west-1a.
_AZ_NAME = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d[a-z]$")
# The last letter of an AZ name: no region has more than six AZs (us-east-1 has a-f). Where the letters
# are known they are checked exactly, without an account lookup; AZ names map to different physical zones
# per account, but the set of letters is the region's.
AZ_LETTERS_ANY_REGION = "abcdef"
AZ_LETTERS = {"us-east-1": "abcdef", "us-east-2": "abc", "us-west-2": "abcd"}
# RFC 1918 private ranges (ipaddress's is_private also counts loopback, link-local and benchmark ranges).
RFC1918 = tuple(ipaddress.IPv4Network(block) for block in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
# AWS allows VPC CIDR blocks from /16 (largest) to /28 (smallest).
VPC_PREFIX_RANGE = (16, 28)


def check_availability_zones(azs: Sequence[str], region: str | None, field: str, problems: Problems) -> None:
    names = list(azs)
    if len(names) < MIN_AZS or len(names) > MAX_AZS:
        problems.add(
            field,
            names,
            f"{MIN_AZS} to {MAX_AZS} availability zones",
            f"list at least {MIN_AZS} AZs of your region, for example {region or 'us-west-2'}a and b",
        )
    if len(set(names)) != len(names):
        problems.add(field, names, "each AZ once", "remove the repeated AZ names")
    for name in names:
        if is_unresolved(name):
            continue
        if not _AZ_NAME.match(name):
            problems.add(field, name, "AZ names like us-west-2a", "use AZ names, not AZ IDs such as usw2-az1")
        elif region and not is_unresolved(region) and not name.startswith(region):
            problems.add(
                field, name, f"AZs of region {region}", f"pick AZs named {region}a, {region}b, ... or change region"
            )
        elif name[-1] not in AZ_LETTERS.get(name[:-1], AZ_LETTERS_ANY_REGION):
            letters = AZ_LETTERS.get(name[:-1], AZ_LETTERS_ANY_REGION)
            problems.add(
                field,
                name,
                f"an AZ that exists in {name[:-1]} (letters {', '.join(letters)})",
                f"pick one of {', '.join(name[:-1] + letter for letter in letters)}",
            )


def check_cidr(cidr: str, field: str, problems: Problems) -> ipaddress.IPv4Network | None:
    """Parse an IPv4 CIDR block; report it (and return None) when it is malformed."""
    try:
        network = ipaddress.ip_network(cidr, strict=True)
    except (ValueError, TypeError) as exc:
        problems.add(field, cidr, "an IPv4 CIDR block such as 10.0.0.0/16", f"correct the block ({exc})")
        return None
    if not isinstance(network, ipaddress.IPv4Network):
        problems.add(field, cidr, "an IPv4 CIDR block", "use an IPv4 block; eks-ml clusters are IPv4")
        return None
    return network


def check_vpc_layout(
    cidr: str, az_count: int, private_mask: int, public_mask: int, field: str, problems: Problems
) -> None:
    """The VPC block must be a legal size and hold one public and one private subnet per AZ."""
    network = check_cidr(cidr, field, problems)
    if network is None:
        return
    low, high = VPC_PREFIX_RANGE
    if not low <= network.prefixlen <= high:
        problems.add(field, cidr, f"a prefix from /{low} to /{high}", f"use a /{low} for ML-scale pod counts")
        return
    if not any(network.subnet_of(block) for block in RFC1918):
        problems.add(field, cidr, "a private (RFC 1918) range", "use a block inside 10.0.0.0/8 or 172.16.0.0/12")
    for name, mask in (("private_subnet_mask", private_mask), ("public_subnet_mask", public_mask)):
        if not network.prefixlen < mask <= high:
            problems.add(name, mask, f"a mask from /{network.prefixlen + 1} to /{high}", "pick a smaller subnet mask")
            return
    needed = az_count * (2 ** (32 - private_mask) + 2 ** (32 - public_mask))
    if needed > network.num_addresses:
        problems.add(
            field,
            cidr,
            f"room for {az_count} private /{private_mask} and {az_count} public /{public_mask} subnets "
            f"({needed} addresses; the block has {network.num_addresses})",
            "use a larger VPC block, fewer AZs or a larger private_subnet_mask",
        )


def private_subnets(vpc: ec2.IVpc, field: str, problems: Problems) -> list[ec2.ISubnet] | None:
    """The VPC's private subnets with egress (where eks-ml puts the control plane and nodes), or None with
    a problem when it has none (aws_cdk would raise a jsii error)."""
    try:
        return list(vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS).subnets)
    except RuntimeError:
        problems.add(
            field,
            "a VPC without private subnets with egress",
            "a VPC with a private subnet (with a NAT route) in each AZ used",
            "use MlVpc, or add PRIVATE_WITH_EGRESS subnets to the VPC",
        )
        return None
