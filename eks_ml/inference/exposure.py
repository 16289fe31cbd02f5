"""How clients reach a model service: the ALB's scheme, its listener and who may connect.

vLLM's OpenAI-compatible API authenticates no one by default, so an internet-facing endpoint must have
TLS (an ACM certificate on an HTTPS-only listener) and either a source CIDR allow-list or the explicit
acknowledgement ``allow_any_source=True``. The Ingress annotations are the AWS Load Balancer Controller's
(v3.2.2 docs, guide/ingress/annotations.md: scheme, certificate-arn, listen-ports, ssl-policy,
inbound-cidrs); EKS Auto Mode's load balancing reads the same ones (Amazon EKS User Guide, "Create an
IngressClass to configure an Application Load Balancer": only group.name, the WAF and Shield annotations
and kubernetes.io/ingress.class are unsupported there).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import Token
from aws_cdk import aws_ec2 as ec2

from ..errors import Problems, ValidationError
from ..network.rules import check_cidr

ANNOTATION = "alb.ingress.kubernetes.io/"
HTTPS_PORT = 443
# TLS 1.3 with TLS 1.2 fallback: the policy Elastic Load Balancing recommends ("Security policies for your
# Application Load Balancer"); the controller's own default is ELBSecurityPolicy-2016-08 (TLS 1.0+).
TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
ANY_SOURCE = "0.0.0.0/0"
# arn:<partition>:acm:<region>:<account>:certificate/<uuid>
_ACM_ARN = re.compile(r"^arn:aws[a-z-]*:acm:([a-z]{2}(?:-gov)?-[a-z]+-\d):\d{12}:certificate/[0-9a-f-]{36}$")
_NOT_AUTHENTICATED = "vLLM's API does not authenticate requests"


@dataclass(frozen=True)
class Exposure:
    """The reachability props of one model service (see ModelServiceProps)."""

    public: object
    certificate_arn: object
    allowed_cidrs: object
    allow_any_source: object

    @property
    def scheme(self) -> str:
        return "internet-facing" if self.public is True else "internal"

    @property
    def cidrs(self) -> tuple[str, ...]:
        return tuple(self.allowed_cidrs) if isinstance(self.allowed_cidrs, (list, tuple)) else ()

    def check(self, field: str, problems: Problems) -> None:
        """The exposure rules; ModelServiceProps has checked the types of ``public`` and ``allow_any_source``."""
        self._check_certificate(field, problems)
        self._check_sources(field, problems)
        if self.public is not True:
            if self.allow_any_source is True:
                problems.add(
                    f"{field}.allow_any_source",
                    True,
                    "allow_any_source=True only with public=True",
                    "remove allow_any_source; an internal endpoint is reachable only from the VPC's networks",
                )
            return
        if self.certificate_arn is None:
            problems.add(
                f"{field}.certificate_arn",
                None,
                "an ACM certificate ARN when public=True (the endpoint listens on HTTPS 443 only)",
                "request or import a certificate in ACM for the endpoint's DNS name in the cluster's region "
                "and pass certificate_arn='arn:aws:acm:<region>:<account>:certificate/<id>'",
            )
        if not self.cidrs and self.allow_any_source is not True:
            problems.add(
                f"{field}.allowed_cidrs",
                list(self.cidrs),
                "a source CIDR allow-list when public=True, or allow_any_source=True",
                f"list the client ranges (e.g. allowed_cidrs=['203.0.113.0/24']), or set allow_any_source=True "
                f"knowing that {_NOT_AUTHENTICATED}",
            )

    def _check_certificate(self, field: str, problems: Problems) -> None:
        arn = self.certificate_arn
        if arn is None or (isinstance(arn, str) and Token.is_unresolved(arn)):
            return
        if not isinstance(arn, str) or not _ACM_ARN.match(arn):
            problems.add(
                f"{field}.certificate_arn",
                arn,
                "an ACM certificate ARN (arn:aws:acm:<region>:<account>:certificate/<id>)",
                "copy the ARN from `aws acm list-certificates`",
            )

    def check_placement(self, field: str, problems: Problems, *, region: str, vpc: ec2.IVpc) -> None:
        """Rules that need the cluster: the certificate's region and somewhere to put a public ALB."""
        arn = self.certificate_arn
        match = _ACM_ARN.match(arn) if isinstance(arn, str) and not Token.is_unresolved(arn) else None
        if match and not Token.is_unresolved(region) and match.group(1) != region:
            problems.add(
                f"{field}.certificate_arn",
                arn,
                f"a certificate in the cluster's region ({region}); an ALB takes certificates of its own region",
                f"request or import the certificate in ACM in {region}",
            )
        if self.public is True and not vpc.public_subnets:
            problems.add(
                f"{field}.public",
                True,
                "public=True only in a VPC with public subnets (an internet-facing ALB lives there)",
                "add public subnets tagged kubernetes.io/role/elb=1 (MlVpc has them), or keep the service internal",
            )

    def _check_sources(self, field: str, problems: Problems) -> None:
        cidrs = self.allowed_cidrs
        if isinstance(cidrs, str) or not isinstance(cidrs, (list, tuple)):
            problems.add(
                f"{field}.allowed_cidrs",
                cidrs,
                "a list of CIDR blocks",
                f"wrap the block in a list: allowed_cidrs=[{cidrs!r}]" if isinstance(cidrs, str) else "pass a list",
            )
            return
        for cidr in cidrs:
            if not isinstance(cidr, str):
                problems.add(f"{field}.allowed_cidrs", cidr, "CIDR strings such as '203.0.113.0/24'", "quote it")
                continue
            network = check_cidr(cidr, f"{field}.allowed_cidrs", problems)
            if network is not None and network.prefixlen == 0:
                problems.add(
                    f"{field}.allowed_cidrs",
                    cidr,
                    "specific client ranges, not every address",
                    "remove it and set allow_any_source=True if the endpoint must be open to any source",
                )
        if cidrs and self.allow_any_source is True:
            problems.add(
                f"{field}.allow_any_source",
                True,
                "either an allow-list or allow_any_source=True, not both",
                "keep allowed_cidrs and remove allow_any_source, or the reverse",
            )

    def annotations(self) -> dict[str, str]:
        """The ALB annotations of the service's Ingress (call after check())."""
        found = {ANNOTATION + "scheme": self.scheme}
        if isinstance(self.certificate_arn, str):
            # HTTPS only: no HTTP listener to redirect from, so no request ever travels in clear text.
            found[ANNOTATION + "certificate-arn"] = self.certificate_arn
            found[ANNOTATION + "listen-ports"] = json.dumps([{"HTTPS": HTTPS_PORT}])
            found[ANNOTATION + "ssl-policy"] = TLS_POLICY
        sources = self.sources()
        if sources:
            found[ANNOTATION + "inbound-cidrs"] = ",".join(sources)
        return found

    def sources(self) -> Sequence[str]:
        """Who may open connections to the load balancer; empty means the controller's default."""
        if self.cidrs:
            return self.cidrs
        return [ANY_SOURCE] if self.public is True and self.allow_any_source is True else []

    def warning(self, name: str) -> str:
        """What a public endpoint exposes, for the synth-time warning."""
        sources = ", ".join(self.sources())
        return (
            f"Model service {name} is internet-facing: vLLM's OpenAI-compatible API (completions, model list, "
            f"metrics), which does not authenticate requests, is reachable over HTTPS on port {HTTPS_PORT} from "
            f"{sources}. Anyone who can connect can use the model at your cost; narrow allowed_cidrs or put "
            "authentication in front of it."
        )


def load_balancer_cidrs(vpc: ec2.IVpc, *, public: bool) -> list[str]:
    """The blocks a service's ALB sends from (target type ip): the controller places an internet-facing
    ALB in the public subnets (tag kubernetes.io/role/elb) and an internal one in the private subnets
    (kubernetes.io/role/internal-elb); MlVpc tags them so."""
    return subnet_cidrs(vpc, vpc.public_subnets if public else vpc.private_subnets)


def subnet_cidrs(vpc: ec2.IVpc, subnets: Sequence[ec2.ISubnet], *, field: str = "base.vpc") -> list[str]:
    """The subnets' blocks; an imported subnet without its CIDR (or no subnet) falls back to the VPC's. A
    VPC imported without either cannot be written into a NetworkPolicy: ValidationError."""
    # jsii raises RuntimeError for a CIDR that was not given at import ("You cannot reference an imported
    # Subnet's IPv4 CIDR if it was not supplied", "'vpcCidrBlock' was not supplied").
    try:
        return sorted({subnet.ipv4_cidr_block for subnet in subnets}) or [vpc.vpc_cidr_block]
    except RuntimeError:
        pass
    try:
        return [vpc.vpc_cidr_block]
    except RuntimeError:
        raise ValidationError.single(
            field,
            "a VPC imported without its CIDR block",
            "a VPC whose CIDR block (or its subnets' blocks) is known at synth",
            "import it with Vpc.from_vpc_attributes(..., vpc_cidr_block='10.0.0.0/16'), or with "
            "Vpc.from_lookup: the serving namespace's NetworkPolicies admit the load balancer by address",
        ) from None
