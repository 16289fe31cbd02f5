"""Our own checks for what cdk-nag's EKS rules do not see on aws_eks_v2 clusters.

Each check reads a synthesized template and returns findings; the tests require none for every stack
and prove each check can fail on a template built to break it.
"""

from __future__ import annotations

import json
from typing import Any

from .manifests import applied_objects

ALL_LOG_TYPES = {"api", "audit", "authenticator", "controllerManager", "scheduler"}
MAX_IMDS_HOP_LIMIT = 2


def _by_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template.get("Resources", {}).items() if r["Type"] == resource_type}


def _ref(value: Any) -> str | None:
    if isinstance(value, dict):
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            return str(value["Fn::GetAtt"][0])
    return None


def cluster_findings(template: dict[str, Any]) -> list[str]:
    findings = []
    keys = _by_type(template, "AWS::KMS::Key")
    for name, cluster in _by_type(template, "AWS::EKS::Cluster").items():
        props = cluster["Properties"]
        vpc = props["ResourcesVpcConfig"]
        if not vpc.get("EndpointPrivateAccess"):
            findings.append(f"{name}: private endpoint access is off (nodes would reach the API over the internet)")
        if vpc.get("EndpointPublicAccess", True) and not vpc.get("PublicAccessCidrs"):
            findings.append(f"{name}: public endpoint without an explicit CIDR allow-list")
        enabled = {t["Type"] for t in props.get("Logging", {}).get("ClusterLogging", {}).get("EnabledTypes", [])}
        if enabled != ALL_LOG_TYPES:
            findings.append(f"{name}: control-plane log types {sorted(enabled)} (want all five)")
        encryption = props.get("EncryptionConfig", [])
        secrets = [e for e in encryption if "secrets" in e.get("Resources", [])]
        if not secrets:
            findings.append(f"{name}: secrets are not envelope-encrypted with KMS")
        for entry in secrets:
            key = _ref(entry["Provider"]["KeyArn"])
            if key is None or key not in keys or not keys[key]["Properties"].get("EnableKeyRotation"):
                findings.append(f"{name}: secrets key {key} is not a rotating KMS key in this stack")
    return findings


def launch_template_findings(template: dict[str, Any]) -> list[str]:
    findings = []
    for name, resource in _by_type(template, "AWS::EC2::LaunchTemplate").items():
        data = resource["Properties"]["LaunchTemplateData"]
        metadata = data.get("MetadataOptions", {})
        if metadata.get("HttpTokens") != "required":
            findings.append(f"{name}: IMDSv2 is not required")
        if metadata.get("HttpPutResponseHopLimit", 1) > MAX_IMDS_HOP_LIMIT:
            findings.append(f"{name}: IMDS hop limit {metadata['HttpPutResponseHopLimit']} > {MAX_IMDS_HOP_LIMIT}")
        for device in data.get("BlockDeviceMappings", []):
            if "Ebs" in device and not device["Ebs"].get("Encrypted"):
                findings.append(f"{name}: volume {device['DeviceName']} is not encrypted")
    return findings


def nodegroup_findings(template: dict[str, Any]) -> list[str]:
    findings = []
    templates = _by_type(template, "AWS::EC2::LaunchTemplate")
    for name, resource in _by_type(template, "AWS::EKS::Nodegroup").items():
        props = resource["Properties"]
        launch_template = _ref(props.get("LaunchTemplate", {}).get("Id"))
        if launch_template not in templates:
            findings.append(f"{name}: no launch template of this stack (IMDSv2 and volume encryption unenforced)")
        if not props.get("NodeRepairConfig", {}).get("Enabled"):
            findings.append(f"{name}: node auto repair is off")
    return findings


ALB = "alb.ingress.kubernetes.io/"


def _enforces_network_policies(template: dict[str, Any], objects: list[dict[str, Any]]) -> bool:
    """The VPC CNI add-on with enableNetworkPolicy, or EKS Auto Mode's controller switched on."""
    for addon in _by_type(template, "AWS::EKS::Addon").values():
        props = addon["Properties"]
        if props["AddonName"] == "vpc-cni":
            configuration = json.loads(props.get("ConfigurationValues") or "{}")
            if configuration.get("enableNetworkPolicy") == "true":
                return True
    return any(
        o["kind"] == "ConfigMap"
        and (o["metadata"]["name"], o["metadata"].get("namespace")) == ("amazon-vpc-cni", "kube-system")
        and o.get("data", {}).get("enable-network-policy-controller") == "true"
        for o in objects
    )


def _default_deny(policy: dict[str, Any]) -> bool:
    spec = policy["spec"]
    return (
        not spec.get("podSelector")
        and set(spec.get("policyTypes", [])) == {"Ingress", "Egress"}
        and not spec.get("ingress")
        and not spec.get("egress")
    )


def exposure_findings(template: dict[str, Any]) -> list[str]:
    """Internet-facing ALBs must be HTTPS-only with a source allow-list; every namespace that serves
    through an Ingress must deny by default; NetworkPolicies must be enforced where they are applied."""
    findings = []
    objects = applied_objects(template)
    for ingress in (o for o in objects if o["kind"] == "Ingress"):
        name = f"Ingress {ingress['metadata'].get('namespace')}/{ingress['metadata']['name']}"
        annotations = ingress["metadata"].get("annotations", {})
        if annotations.get(ALB + "scheme") == "internet-facing":
            if not annotations.get(ALB + "certificate-arn"):
                findings.append(f"{name}: internet-facing without a TLS certificate")
            ports = json.loads(annotations.get(ALB + "listen-ports", '[{"HTTP": 80}]'))
            if any("HTTPS" not in port for port in ports):
                findings.append(f"{name}: internet-facing with a plain HTTP listener {ports}")
            if not annotations.get(ALB + "inbound-cidrs"):
                findings.append(f"{name}: internet-facing without an explicit inbound-cidrs allow-list")
        namespace = ingress["metadata"].get("namespace")
        if not any(
            o["kind"] == "NetworkPolicy" and o["metadata"].get("namespace") == namespace and _default_deny(o)
            for o in objects
        ):
            findings.append(f"{name}: namespace {namespace} has no default-deny NetworkPolicy")
    if any(o["kind"] == "NetworkPolicy" for o in objects) and not _enforces_network_policies(template, objects):
        findings.append("NetworkPolicies are applied but nothing enforces them (VPC CNI enableNetworkPolicy is off)")
    return findings


def all_findings(template: dict[str, Any]) -> list[str]:
    return (
        cluster_findings(template)
        + launch_template_findings(template)
        + nodegroup_findings(template)
        + exposure_findings(template)
    )
