"""NetworkPolicies of the model-serving namespace: deny everything, then allow only what serving needs.

Kubernetes allows the union of all policies that select a pod, so the namespace gets one default-deny
policy (ingress and egress, every pod), one DNS policy, and each model server its own allow rules. The
kubelet's probes need no rule: traffic from a pod's own node is always allowed (Kubernetes docs, "Network
Policies"). Enforcement is the cluster's: the VPC CNI add-on with ``enableNetworkPolicy`` or, with EKS
Auto Mode, the network policy controller (eks_ml.cluster.addons and InferenceNamespaceChart).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from cdk8s_plus_35 import k8s
from constructs import Construct

DEFAULT_DENY = "default-deny"
ALLOW_DNS = "allow-dns"
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"  # set on every namespace by the API server
# The CoreDNS pods of the EKS add-on.
KUBE_DNS_NAMESPACE = "kube-system"
KUBE_DNS_LABELS = {"k8s-app": "kube-dns"}
DNS_PORT = 53
HTTPS_PORT = 443
# Instance metadata, the EKS Pod Identity agent and other link-local endpoints: never reachable through the
# HTTPS egress rule (model servers hold no Pod Identity association).
LINK_LOCAL = "169.254.0.0/16"
ANYWHERE = "0.0.0.0/0"


def _tcp(port: int) -> k8s.NetworkPolicyPort:
    return k8s.NetworkPolicyPort(protocol="TCP", port=k8s.IntOrString.from_number(port))


def default_deny(scope: Construct, namespace: str) -> k8s.KubeNetworkPolicy:
    """Selects every pod of the namespace for ingress and egress and allows nothing."""
    return k8s.KubeNetworkPolicy(
        scope,
        "DefaultDeny",
        metadata=k8s.ObjectMeta(name=DEFAULT_DENY, namespace=namespace),
        spec=k8s.NetworkPolicySpec(pod_selector=k8s.LabelSelector(), policy_types=["Ingress", "Egress"]),
    )


def allow_dns(scope: Construct, namespace: str, *, auto_mode: bool) -> k8s.KubeNetworkPolicy:
    """Lets every pod of the namespace resolve names. Self-managed clusters run CoreDNS as kube-dns pods in
    kube-system (the selector the VPC CNI maintainers give, which also admits the kube-dns Service's
    ClusterIP: aws/aws-network-policy-agent#230); EKS Auto Mode resolves on the node itself, whose address
    no selector names, so there port 53 is allowed to every address, written as an explicit ipBlock
    rather than an empty peer list that an enforcer might read differently."""
    ports = [
        k8s.NetworkPolicyPort(protocol=protocol, port=k8s.IntOrString.from_number(DNS_PORT))
        for protocol in ("UDP", "TCP")
    ]
    to = (
        [k8s.NetworkPolicyPeer(ip_block=k8s.IpBlock(cidr=ANYWHERE))]
        if auto_mode
        else [
            k8s.NetworkPolicyPeer(
                namespace_selector=k8s.LabelSelector(match_labels={NAMESPACE_NAME_LABEL: KUBE_DNS_NAMESPACE}),
                pod_selector=k8s.LabelSelector(match_labels=dict(KUBE_DNS_LABELS)),
            )
        ]
    )
    return k8s.KubeNetworkPolicy(
        scope,
        "AllowDns",
        metadata=k8s.ObjectMeta(name=ALLOW_DNS, namespace=namespace),
        spec=k8s.NetworkPolicySpec(
            pod_selector=k8s.LabelSelector(),
            policy_types=["Egress"],
            egress=[k8s.NetworkPolicyEgressRule(to=to, ports=ports)],
        ),
    )


def allow_server(
    scope: Construct,
    *,
    name: str,
    namespace: str,
    labels: Mapping[str, str],
    port: int,
    load_balancer_cidrs: Sequence[str],
    scraper_namespaces: Sequence[str],
    scraper_cidrs: Sequence[str],
    https_egress: bool,
) -> k8s.KubeNetworkPolicy:
    """The server port from the load balancer's subnets (ALB target type ip: the ALB's own addresses in
    the VPC), from the in-cluster metrics scrapers' namespaces and from the managed scraper's subnets (vLLM
    serves /metrics on the same port); with ``https_egress`` HTTPS out (Hugging Face Hub downloads; its
    addresses are not published)."""
    blocks = list(dict.fromkeys([*load_balancer_cidrs, *scraper_cidrs]))  # each block once, in order
    sources = [k8s.NetworkPolicyPeer(ip_block=k8s.IpBlock(cidr=cidr)) for cidr in blocks] + [
        k8s.NetworkPolicyPeer(
            namespace_selector=k8s.LabelSelector(match_labels={NAMESPACE_NAME_LABEL: scraper}),
        )
        for scraper in scraper_namespaces
    ]
    egress = (
        [
            k8s.NetworkPolicyEgressRule(
                to=[k8s.NetworkPolicyPeer(ip_block=k8s.IpBlock(cidr=ANYWHERE, except_=[LINK_LOCAL]))],
                ports=[_tcp(HTTPS_PORT)],
            )
        ]
        if https_egress
        else None
    )
    return k8s.KubeNetworkPolicy(
        scope,
        "NetworkPolicy",
        metadata=k8s.ObjectMeta(name=name, namespace=namespace, labels=dict(labels)),
        spec=k8s.NetworkPolicySpec(
            pod_selector=k8s.LabelSelector(match_labels=dict(labels)),
            policy_types=["Ingress", "Egress"] if https_egress else ["Ingress"],
            ingress=[k8s.NetworkPolicyIngressRule(from_=sources, ports=[_tcp(port)])],
            egress=egress,
        ),
    )
