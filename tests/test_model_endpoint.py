"""Public model endpoints and the model-serving namespace's NetworkPolicies.

A public endpoint must be HTTPS-only with an ACM certificate and either a source allow-list or the
explicit allow_any_source acknowledgement, and must say what it exposes at synth. The serving namespace
denies everything by default; a small NetworkPolicy evaluator (tests/support/netpol.py) shows that each
server's port is reachable from the load balancer's subnets and the metrics scraper only, and that the
server reaches only DNS (and HTTPS out when it downloads from the Hub).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from aws_cdk import Stack, Token, assertions
from aws_cdk import aws_ec2 as ec2

from eks_ml import BaseClusterProps, MlVpc, MlVpcProps, ValidationError
from eks_ml.errors import Problems
from eks_ml.inference import InferenceCluster, InferenceClusterProps
from eks_ml.inference.exposure import TLS_POLICY
from eks_ml.inference.model_service import HubWeights, ModelServiceProps, S3Weights
from eks_ml.observability import Backend, ObservabilityAddon, ObservabilityAddonProps

from .support import eks_checks
from .support.manifests import applied_objects, validate_objects
from .support.netpol import Endpoint, allows
from .support.synth import joined, library_stack

CERTIFICATE = "arn:aws:acm:us-west-2:111111111111:certificate/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
OFFICE = "203.0.113.0/24"
NAMESPACE = "inference"
# MlVpc's layout for 10.0.0.0/16 in two AZs: public /24s, private /18s (nodes, pods, internal ALBs).
PUBLIC_SUBNET_IP = "10.0.0.10"
PRIVATE_SUBNET_IP = "10.0.64.20"
INTERNET_IP = "198.51.100.7"
PORT = 8000

INTERNAL_HUB = ModelServiceProps(
    name="chat", instance_type="g6e.xlarge", weights=HubWeights(model_id="Qwen/Qwen3-8B"), parameters_billions=8.2
)
PUBLIC_S3 = ModelServiceProps(
    name="public-chat",
    instance_type="g6e.xlarge",
    weights=S3Weights(bucket="model-weights", prefix="qwen3-8b/"),
    parameters_billions=8.2,
    public=True,
    certificate_arn=CERTIFICATE,
    allowed_cidrs=[OFFICE],
)


def synth(
    *services: ModelServiceProps, auto_mode: bool = False, vpc: ec2.IVpc | None = None, **props: Any
) -> tuple[InferenceCluster, Stack]:
    stack = Stack.of(vpc) if vpc is not None else library_stack()[1]
    if vpc is None:
        vpc = MlVpc(stack, "Network", MlVpcProps(availability_zones=("us-west-2a", "us-west-2b"))).vpc
    cluster = InferenceCluster(
        stack,
        "Inference",
        InferenceClusterProps(
            base=BaseClusterProps(vpc=vpc, cluster_name="serve", auto_mode=auto_mode),
            model_services=services,
            **props,
        ),
    )
    return cluster, stack


@pytest.fixture(scope="module")
def served() -> tuple[InferenceCluster, Stack]:
    return synth(INTERNAL_HUB, PUBLIC_S3)


def applied(cluster: InferenceCluster) -> list[dict[str, Any]]:
    return [o for _, chart in cluster.applied_charts for o in chart.to_json()]


def ingress(cluster: InferenceCluster, service: str) -> dict[str, str]:
    (found,) = [o for o in cluster.service_charts[service].to_json() if o["kind"] == "Ingress"]
    annotations: dict[str, str] = found["metadata"]["annotations"]
    return annotations


# --- the public endpoint ---------------------------------------------------------------------------------


def test_public_endpoint_is_https_only_with_a_source_allow_list(served: Any) -> None:
    cluster, _ = served
    annotations = ingress(cluster, "public-chat")
    assert annotations["alb.ingress.kubernetes.io/scheme"] == "internet-facing"
    assert annotations["alb.ingress.kubernetes.io/certificate-arn"] == CERTIFICATE
    assert json.loads(annotations["alb.ingress.kubernetes.io/listen-ports"]) == [{"HTTPS": 443}]  # no HTTP at all
    assert annotations["alb.ingress.kubernetes.io/ssl-policy"] == TLS_POLICY == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    assert annotations["alb.ingress.kubernetes.io/inbound-cidrs"] == OFFICE
    assert "alb.ingress.kubernetes.io/ssl-redirect" not in annotations  # nothing listens on 80 to redirect


def test_internal_endpoint_keeps_the_controller_defaults(served: Any) -> None:
    cluster, _ = served
    annotations = ingress(cluster, "chat")
    assert annotations["alb.ingress.kubernetes.io/scheme"] == "internal"
    assert not {"certificate-arn", "listen-ports", "inbound-cidrs"} & {k.split("/")[1] for k in annotations}


def test_allow_any_source_is_written_out_explicitly() -> None:
    open_service = ModelServiceProps(
        **{**PUBLIC_S3.__dict__, "allowed_cidrs": (), "allow_any_source": True}  # type: ignore[arg-type]
    )
    cluster, _ = synth(open_service)
    assert ingress(cluster, "public-chat")["alb.ingress.kubernetes.io/inbound-cidrs"] == "0.0.0.0/0"


def test_a_public_endpoint_warns_at_synth_what_it_exposes(served: Any) -> None:
    _, stack = served
    warnings = assertions.Annotations.from_stack(stack).find_warning(
        "*", assertions.Match.string_like_regexp("public-chat is internet-facing")
    )
    (warning,) = warnings
    text = warning.entry.data
    assert "does not authenticate requests" in text and "HTTPS on port 443" in text and OFFICE in text
    assert not assertions.Annotations.from_stack(stack).find_warning(
        "*", assertions.Match.string_like_regexp("Model service chat ")
    )


def test_a_certificate_from_another_construct_is_accepted() -> None:
    problems = Problems()
    arn = Token.as_string({"Ref": "Certificate"})  # e.g. aws_certificatemanager.Certificate(...).certificate_arn
    ModelServiceProps(**{**PUBLIC_S3.__dict__, "certificate_arn": arn}).check("svc", problems)
    assert problems.found == []


BAD = [
    pytest.param(
        {"certificate_arn": None},
        r"certificate_arn=None: allowed an ACM certificate ARN when public=True .*Fix: request or import a certificate",
        id="public-without-certificate",
    ),
    pytest.param(
        {"allowed_cidrs": ()},
        r"allowed_cidrs=\[\]: allowed a source CIDR allow-list when public=True, or allow_any_source=True",
        id="public-without-allow-list-or-acknowledgement",
    ),
    pytest.param(
        {"public": "false"},
        r"public='false': allowed True or False \(got str\)\. Fix: write True or False, not 'false'",
        id="public-as-string-false",
    ),
    pytest.param({"allow_any_source": "yes"}, r"allow_any_source='yes': allowed True or False", id="ack-as-string"),
    pytest.param(
        {"allowed_cidrs": OFFICE},
        r"allowed_cidrs='203.0.113.0/24': allowed a list of CIDR blocks\. Fix: wrap the block in a list",
        id="allow-list-as-string",
    ),
    pytest.param(
        {"allowed_cidrs": ["0.0.0.0/0"]},
        r"allowed_cidrs='0.0.0.0/0': allowed specific client ranges.*set allow_any_source=True",
        id="allow-list-of-everything",
    ),
    pytest.param({"allowed_cidrs": ["203.0.113.0/33"]}, r"allowed_cidrs='203.0.113.0/33'", id="bad-cidr"),
    pytest.param(
        {"allow_any_source": True},
        r"allow_any_source=True: allowed either an allow-list or allow_any_source=True, not both",
        id="allow-list-and-any-source",
    ),
    pytest.param(
        {"public": False, "allowed_cidrs": (), "allow_any_source": True},
        r"allow_any_source=True: allowed allow_any_source=True only with public=True",
        id="any-source-on-internal",
    ),
    pytest.param(
        {"certificate_arn": "arn:aws:iam::111111111111:server-certificate/x"},
        r"certificate_arn='arn:aws:iam::.*allowed an ACM certificate ARN",
        id="not-an-acm-arn",
    ),
    pytest.param(
        {"certificate_arn": CERTIFICATE.replace("us-west-2", "us-east-1")},
        r"allowed a certificate in the cluster's region \(us-west-2\)",
        id="certificate-of-another-region",
    ),
]


@pytest.mark.parametrize(("changes", "message"), BAD)
def test_bad_exposure(changes: dict[str, Any], message: str) -> None:
    service = ModelServiceProps(**{**PUBLIC_S3.__dict__, **changes})
    with pytest.raises(ValidationError, match=message) as raised:
        synth(service)
    assert all(problem.field.startswith("model_services[0].") for problem in raised.value.problems)


def test_public_needs_public_subnets() -> None:
    _, stack = library_stack()
    vpc = ec2.Vpc.from_vpc_attributes(
        stack,
        "Imported",
        vpc_id="vpc-1",
        vpc_cidr_block="10.1.0.0/16",
        availability_zones=["us-west-2a", "us-west-2b"],
        private_subnet_ids=["subnet-1", "subnet-2"],
    )
    with pytest.raises(ValidationError, match=r"public=True: allowed public=True only in a VPC with public subnets"):
        InferenceCluster(
            stack,
            "Inference",
            InferenceClusterProps(base=BaseClusterProps(vpc=vpc, cluster_name="serve"), model_services=[PUBLIC_S3]),
        )


# --- NetworkPolicies ---------------------------------------------------------------------------------------


def pod(namespace: str, ip: str, **labels: str) -> Endpoint:
    return Endpoint(ip=ip, namespace=namespace, labels=labels)


def server(name: str) -> Endpoint:
    return pod(NAMESPACE, "10.0.70.1", **{"app.kubernetes.io/name": name})


PROMETHEUS = pod("monitoring", "10.0.65.3", **{"app.kubernetes.io/name": "prometheus"})
KUBE_DNS = pod("kube-system", "10.0.66.4", **{"k8s-app": "kube-dns"})


def test_network_policies_pass_the_validator(served: Any) -> None:
    cluster, _ = served
    policies = [o for o in applied(cluster) if o["kind"] == "NetworkPolicy"]
    assert sorted(p["metadata"]["name"] for p in policies) == ["allow-dns", "chat", "default-deny", "public-chat"]
    assert validate_objects(policies) == []


def test_public_server_port_is_reachable_from_its_load_balancer_and_the_scraper_only(served: Any) -> None:
    cluster, _ = served
    objects = applied(cluster)
    target = server("public-chat")
    assert allows(objects, source=Endpoint(PUBLIC_SUBNET_IP), target=target, port=PORT)  # the ALB (public subnets)
    assert allows(objects, source=PROMETHEUS, target=target, port=PORT)  # /metrics for the autoscaler
    denied = [
        Endpoint(INTERNET_IP),  # only through the ALB
        Endpoint(PRIVATE_SUBNET_IP),  # not an ALB of this service
        pod("default", PRIVATE_SUBNET_IP, app="curious"),
        pod(NAMESPACE, "10.0.70.9", **{"app.kubernetes.io/name": "chat"}),  # its neighbour
        pod("eks-ml-observability", "10.0.65.8", app="exporter"),  # exporters are scraped, they do not scrape
    ]
    assert [allows(objects, source=s, target=target, port=PORT) for s in denied] == [False] * len(denied)
    assert not allows(objects, source=Endpoint(PUBLIC_SUBNET_IP), target=target, port=22)


def test_internal_server_port_is_reachable_from_the_private_subnets_and_the_scraper(served: Any) -> None:
    cluster, _ = served
    objects = applied(cluster)
    target = server("chat")
    assert allows(objects, source=Endpoint(PRIVATE_SUBNET_IP), target=target, port=PORT)  # internal ALB
    assert allows(objects, source=PROMETHEUS, target=target, port=PORT)
    assert not allows(objects, source=Endpoint(PUBLIC_SUBNET_IP), target=target, port=PORT)
    assert not allows(objects, source=Endpoint("192.168.10.1"), target=target, port=PORT)  # peered or on-premises


def test_servers_reach_dns_and_only_hub_downloads_reach_https(served: Any) -> None:
    cluster, _ = served
    objects = applied(cluster)
    hub, s3 = server("chat"), server("public-chat")
    for source in (hub, s3):
        assert allows(objects, source=source, target=KUBE_DNS, port=53, protocol="UDP")
        assert allows(objects, source=source, target=KUBE_DNS, port=53)
        assert not allows(
            objects, source=source, target=pod("default", "10.0.67.1", app="dns"), port=53, protocol="UDP"
        )
    huggingface = Endpoint("3.160.0.1")
    assert allows(objects, source=hub, target=huggingface, port=443)
    assert not allows(objects, source=hub, target=huggingface, port=80)
    assert not allows(objects, source=s3, target=huggingface, port=443)  # Mountpoint reads S3, not the pod
    for link_local in ("169.254.169.254", "169.254.170.23"):  # instance metadata, Pod Identity agent
        assert not allows(objects, source=hub, target=Endpoint(link_local), port=443)
        assert not allows(objects, source=hub, target=Endpoint(link_local), port=80)
    assert not allows(objects, source=hub, target=s3, port=PORT)  # servers do not talk to each other


def test_servers_need_no_pod_identity(served: Any) -> None:
    _, stack = served
    template = assertions.Template.from_stack(stack).to_json()
    associations = [
        r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::EKS::PodIdentityAssociation"
    ]
    assert associations and all(a["Namespace"] != NAMESPACE for a in associations)  # so no agent egress


def edit_manifests(template: dict[str, Any], edit: Any) -> dict[str, Any]:
    """A copy of ``template`` whose applied objects went through ``edit`` (which returns None to drop one)."""
    broken = copy.deepcopy(template)
    for resource in broken["Resources"].values():
        if resource["Type"] == "Custom::AWSCDK-EKS-KubernetesResource":
            objects = [edit(copy.deepcopy(o)) for o in json.loads(joined(resource["Properties"]["Manifest"]))]
            resource["Properties"]["Manifest"] = json.dumps([o for o in objects if o is not None])
    return broken


def test_a_namespace_without_default_deny_is_open_and_the_gate_says_so(served: Any) -> None:
    cluster, stack = served
    objects = applied(cluster)
    stray = pod(NAMESPACE, "10.0.70.5", app="debug")
    assert not allows(objects, source=pod("default", PRIVATE_SUBNET_IP), target=stray, port=9999)
    assert not allows(objects, source=server("public-chat"), target=Endpoint(INTERNET_IP), port=443)
    broken = [o for o in objects if o["metadata"].get("name") != "default-deny"]
    assert allows(broken, source=pod("default", PRIVATE_SUBNET_IP), target=stray, port=9999)

    template = assertions.Template.from_stack(stack).to_json()
    assert eks_checks.exposure_findings(template) == []
    without_deny = edit_manifests(template, lambda o: None if o["metadata"].get("name") == "default-deny" else o)
    assert eks_checks.exposure_findings(without_deny) == [
        "Ingress inference/chat: namespace inference has no default-deny NetworkPolicy",
        "Ingress inference/public-chat: namespace inference has no default-deny NetworkPolicy",
    ]


def test_the_gate_refuses_a_plain_http_or_open_public_ingress(served: Any) -> None:
    _, stack = served
    template = assertions.Template.from_stack(stack).to_json()

    def strip_tls_and_allow_list(obj: dict[str, Any]) -> dict[str, Any]:
        if obj["kind"] == "Ingress":
            annotations = obj["metadata"]["annotations"]
            for key in ("certificate-arn", "inbound-cidrs", "listen-ports"):
                annotations.pop(f"alb.ingress.kubernetes.io/{key}", None)
        return obj

    assert eks_checks.exposure_findings(edit_manifests(template, strip_tls_and_allow_list)) == [
        "Ingress inference/public-chat: internet-facing without a TLS certificate",
        "Ingress inference/public-chat: internet-facing with a plain HTTP listener [{'HTTP': 80}]",
        "Ingress inference/public-chat: internet-facing without an explicit inbound-cidrs allow-list",
    ]


def test_the_managed_scraper_gets_in_only_when_the_cluster_admits_it() -> None:
    cluster, stack = synth(PUBLIC_S3, managed_scraper_access=True)
    scraper = Endpoint(PRIVATE_SUBNET_IP)  # its network interfaces sit in the private subnets
    assert allows(applied(cluster), source=scraper, target=server("public-chat"), port=PORT)
    assert not allows(applied(cluster), source=Endpoint(INTERNET_IP), target=server("public-chat"), port=PORT)
    ObservabilityAddon(stack, "Observability", ObservabilityAddonProps(cluster=cluster, backend=Backend.PROMETHEUS))

    closed, closed_stack = synth(PUBLIC_S3)
    assert not allows(applied(closed), source=scraper, target=server("public-chat"), port=PORT)
    with pytest.raises(
        ValidationError,
        match=r"cluster.managed_scraper_access=False: allowed True when the Prometheus backend scrapes .*"
        r"Fix: build the cluster with InferenceClusterProps\(managed_scraper_access=True\)",
    ):
        ObservabilityAddon(
            closed_stack, "Observability", ObservabilityAddonProps(cluster=closed, backend=Backend.PROMETHEUS)
        )
    with pytest.raises(ValidationError, match=r"managed_scraper_access='yes': allowed True or False"):
        synth(PUBLIC_S3, managed_scraper_access="yes")


# --- enforcement ------------------------------------------------------------------------------------------


def test_the_vpc_cni_enforces_network_policies(served: Any) -> None:
    _, stack = served
    template = assertions.Template.from_stack(stack).to_json()
    (cni,) = [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::EKS::Addon" and r["Properties"]["AddonName"] == "vpc-cni"
    ]
    assert json.loads(cni["ConfigurationValues"])["enableNetworkPolicy"] == "true"
    broken = copy.deepcopy(template)
    for resource in broken["Resources"].values():
        if resource["Type"] == "AWS::EKS::Addon" and resource["Properties"]["AddonName"] == "vpc-cni":
            resource["Properties"]["ConfigurationValues"] = json.dumps({"env": {"ENABLE_PREFIX_DELEGATION": "true"}})
    assert eks_checks.exposure_findings(broken) == [
        "NetworkPolicies are applied but nothing enforces them (VPC CNI enableNetworkPolicy is off)"
    ]


def test_auto_mode_switches_on_its_network_policy_controller() -> None:
    cluster, stack = synth(INTERNAL_HUB, auto_mode=True)
    objects = applied(cluster)
    (config,) = [o for o in objects if o["kind"] == "ConfigMap"]
    assert config["metadata"] == {"name": "amazon-vpc-cni", "namespace": "kube-system"}
    assert config["data"] == {"enable-network-policy-controller": "true"}
    assert validate_objects([config]) == []
    template = assertions.Template.from_stack(stack).to_json()
    assert eks_checks.exposure_findings(template) == []
    assert any(o["kind"] == "ConfigMap" for o in applied_objects(template))
    # Auto Mode resolves names on the node: DNS may go to any address, on port 53 only.
    node_dns = Endpoint("10.0.64.99")
    assert allows(objects, source=server("chat"), target=node_dns, port=53, protocol="UDP")
    assert not allows(objects, source=server("chat"), target=node_dns, port=54, protocol="UDP")


def test_a_vpc_imported_without_its_blocks_is_refused() -> None:
    _, stack = library_stack()
    vpc = ec2.Vpc.from_vpc_attributes(
        stack,
        "Imported",
        vpc_id="vpc-1",
        availability_zones=["us-west-2a", "us-west-2b"],
        private_subnet_ids=["subnet-1", "subnet-2"],
    )
    with pytest.raises(ValidationError, match=r"base.vpc='a VPC imported without its CIDR block'.*vpc_cidr_block="):
        synth(INTERNAL_HUB, vpc=vpc)
    with_block = ec2.Vpc.from_vpc_attributes(
        library_stack()[1],
        "WithBlock",
        vpc_id="vpc-2",
        vpc_cidr_block="10.1.0.0/16",
        availability_zones=["us-west-2a", "us-west-2b"],
        private_subnet_ids=["subnet-3", "subnet-4"],
    )
    cluster, _ = synth(INTERNAL_HUB, vpc=with_block)
    assert allows(applied(cluster), source=Endpoint("10.1.200.1"), target=server("chat"), port=PORT)


@pytest.mark.parametrize("variant", ["default_synth", "prometheus_synth", "auto_mode_synth"])
def test_default_app_variants_pass_the_exposure_gate(variant: str, request: pytest.FixtureRequest) -> None:
    synthesis = request.getfixturevalue(variant)
    for stack, template in synthesis.templates.items():
        assert eks_checks.exposure_findings(template) == [], stack
    names = {
        o["metadata"]["name"] for o in applied_objects(synthesis.templates["Inference"]) if o["kind"] == "NetworkPolicy"
    }
    assert {"default-deny", "allow-dns", "qwen3-8b", "qwen3-8b-inf2"} <= names
