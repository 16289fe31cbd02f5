"""EFA wiring: the catalog's network interface layout in a launch template, and the security group EFA requires."""

from __future__ import annotations

from enum import Enum

from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from ..catalog import InstanceSpec
from ..nag import acknowledge, nist

ALL_TRAFFIC = "-1"


class EfaLayout(Enum):
    # The EC2 user guide's recommended layout (checked 2026-11): an ENA primary at card 0 device 0, efa-only
    # at card 0 device 1 where card 0 supports EFA, efa-only at device 0 on every other card. EFA-only
    # interfaces take no IP address, so a node uses one address (needs VPC CNI >= 1.18.5, which the base
    # cluster installs). https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/efa-acc-inst-types.html
    EFA_ONLY = "efaOnly"
    # The same EFA devices plus an ENA interface at device 1 on every other card: an IP address per card,
    # for IP bandwidth beyond the primary's (the guide's "ENA at device index 1" option).
    ENA_ON_EVERY_CARD = "enaOnEveryCard"


def network_interfaces(
    spec: InstanceSpec, layout: EfaLayout, security_group_ids: list[str]
) -> list[ec2.CfnLaunchTemplate.NetworkInterfaceProperty]:
    """Launch-template NetworkInterfaces for ``spec``, from the catalog's per-type layout."""
    return [
        ec2.CfnLaunchTemplate.NetworkInterfaceProperty(
            network_card_index=slot.network_card_index,
            device_index=slot.device_index,
            interface_type=slot.interface_type,
            groups=security_group_ids,
            delete_on_termination=True,
        )
        for slot in spec.network_interface_layout(ena_on_every_card=layout is EfaLayout.ENA_ON_EVERY_CARD)
    ]


def efa_security_group(
    scope: Construct, construct_id: str, vpc: ec2.IVpc, *, members: str | None = None
) -> ec2.SecurityGroup:
    """A security group that allows all traffic to and from itself, in and out, as EFA requires.

    The self rules are L1 resources: the L2 drops a self-referencing egress rule when the group allows
    all outbound, and EFA's SRD traffic only matches rules that reference the group itself. ``members``:
    who joins the group, for its description (default: training nodes and FSx clients).
    """
    group = ec2.SecurityGroup(
        scope,
        construct_id,
        vpc=vpc,
        description=f"EFA: all traffic between {members or 'training nodes (and FSx clients)'}; all outbound",
        allow_all_outbound=True,
    )
    self_ingress = ec2.CfnSecurityGroupIngress(
        scope,
        f"{construct_id}SelfIngress",
        group_id=group.security_group_id,
        source_security_group_id=group.security_group_id,
        ip_protocol=ALL_TRAFFIC,
        description="EFA: all inbound traffic from the group itself",
    )
    acknowledge(
        self_ingress,
        nist("EC2RestrictedCommonPorts"),
        "EFA requires a security group that allows all traffic from itself (EFA user guide); the source is this "
        f"group alone, so only the {members or 'training nodes and FSx clients'} in it are reachable, on any port.",
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
