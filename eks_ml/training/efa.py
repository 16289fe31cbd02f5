"""EFA wiring: one network interface per network card, and the security group EFA requires."""

from __future__ import annotations

from enum import Enum

from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from ..catalog import InstanceSpec

ALL_TRAFFIC = "-1"


class EfaLayout(Enum):
    # AWS's recommended layout for multi-card types: the primary ENA+EFA interface on card 0, and an
    # EFA-only interface on every other card. EFA-only interfaces take no IP address, so a p5.48xlarge
    # consumes 1 address instead of 32 (needs VPC CNI >= 1.18.5, which the base cluster installs).
    EFA_ONLY = "efaOnly"
    # Every card gets a full ENA+EFA interface (an IP address each), for tools that need IP on all cards.
    ALL_EFA = "allEfa"


def network_interfaces(
    spec: InstanceSpec, layout: EfaLayout, security_group_ids: list[str]
) -> list[ec2.CfnLaunchTemplate.NetworkInterfaceProperty]:
    """Launch-template NetworkInterfaces for ``spec``: card 0 at device 0, every other card at device 1."""
    return [
        ec2.CfnLaunchTemplate.NetworkInterfaceProperty(
            network_card_index=card,
            device_index=0 if card == 0 else 1,
            interface_type="efa" if card == 0 or layout is EfaLayout.ALL_EFA else "efa-only",
            groups=security_group_ids,
            delete_on_termination=True,
        )
        for card in range(spec.network_cards)
    ]


def efa_security_group(scope: Construct, construct_id: str, vpc: ec2.IVpc) -> ec2.SecurityGroup:
    """A security group that allows all traffic to and from itself, in and out, as EFA requires.

    The self rules are L1 resources: the L2 drops a self-referencing egress rule when the group allows
    all outbound, and EFA's SRD traffic only matches rules that reference the group itself.
    """
    group = ec2.SecurityGroup(
        scope,
        construct_id,
        vpc=vpc,
        description="EFA: all traffic between training nodes (and FSx clients); all outbound",
        allow_all_outbound=True,
    )
    ec2.CfnSecurityGroupIngress(
        scope,
        f"{construct_id}SelfIngress",
        group_id=group.security_group_id,
        source_security_group_id=group.security_group_id,
        ip_protocol=ALL_TRAFFIC,
        description="EFA: all inbound traffic from the group itself",
    )
    ec2.CfnSecurityGroupEgress(
        scope,
        f"{construct_id}SelfEgress",
        group_id=group.security_group_id,
        destination_security_group_id=group.security_group_id,
        ip_protocol=ALL_TRAFFIC,
        description="EFA: all outbound traffic to the group itself",
    )
    return group
