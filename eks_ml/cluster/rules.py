"""Cluster rules shared by BaseCluster and the app configuration."""

from __future__ import annotations

import re
from collections.abc import Sequence
from enum import Enum

from .._tokens import is_unresolved
from ..errors import Problems
from ..network.rules import check_cidr

# EKS cluster names: 1-100 characters, letters, digits, hyphens and underscores, starting alphanumeric.
_CLUSTER_NAME = re.compile(r"^[0-9A-Za-z][A-Za-z0-9\-_]{0,99}$")
_PRINCIPAL_ARN = re.compile(r"^arn:aws[a-z-]*:(iam|sts)::\d{12}:(role|user|assumed-role)/[\w+=,.@/-]+$")
OPEN_TO_THE_INTERNET = "0.0.0.0/0"


class EndpointAccessMode(Enum):
    PUBLIC_AND_PRIVATE = "publicAndPrivate"  # nodes use the private endpoint, people the public one
    PRIVATE = "private"  # reachable only from inside the VPC (VPN, Direct Connect, bastion)
    PUBLIC = "public"  # nodes leave the VPC to reach the API server; not recommended


def check_cluster_name(name: str, field: str, problems: Problems) -> None:
    if is_unresolved(name):
        return
    if not _CLUSTER_NAME.match(name):
        problems.add(
            field,
            name,
            "1-100 letters, digits, '-' or '_', starting with a letter or digit",
            "rename the cluster, for example ml-training",
        )


def check_endpoint_access(
    mode: EndpointAccessMode, public_cidrs: Sequence[str] | None, field: str, problems: Problems
) -> None:
    if mode is EndpointAccessMode.PRIVATE:
        if public_cidrs:
            problems.add(
                field,
                list(public_cidrs),
                "no public CIDRs when the endpoint is private",
                "remove the allow-list, or choose the publicAndPrivate endpoint",
            )
        return
    if public_cidrs is not None and len(public_cidrs) == 0:
        problems.add(
            field,
            [],
            "at least one CIDR while the public endpoint is on",
            "list the CIDRs allowed to reach the API (for example your office range), or make the endpoint private",
        )
    for cidr in public_cidrs or ():
        check_cidr(cidr, field, problems)
    if mode is EndpointAccessMode.PUBLIC and public_cidrs and list(public_cidrs) != [OPEN_TO_THE_INTERNET]:
        # EKS (and aws_eks_v2) only restrict the public endpoint while the private one is on.
        problems.add(
            field,
            list(public_cidrs),
            "an allow-list only with the publicAndPrivate endpoint",
            "choose the publicAndPrivate endpoint (nodes then use the private one), or remove the allow-list",
        )


def check_principal_arns(arns: Sequence[str], field: str, problems: Problems) -> None:
    for arn in arns:
        if is_unresolved(arn):
            continue
        if not _PRINCIPAL_ARN.match(arn):
            problems.add(
                field,
                arn,
                "IAM role or user ARNs such as arn:aws:iam::123456789012:role/Admin",
                "pass the ARN of the IAM role or user (not an account id or a role name)",
            )
    if len(set(arns)) != len(arns):
        problems.add(field, list(arns), "each principal once", "remove the repeated ARN")
