"""AWS Load Balancer Controller with an EKS Pod Identity role (aws_eks_v2's AlbController uses IRSA)."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any, cast

from aws_cdk import Stack
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from constructs import Construct, IDependable

from .. import helm
from .._pseudo import partition
from .._tgz import read_member
from ..cluster.pod_identity import associate, pod_identity_role
from ..cluster.system_nodes import SystemPlacement
from ..k8s.pod_security import HARDENED_CONTAINER
from ..nag import PACK, acknowledge_all, acknowledge_inline_policy
from ..placement import ClusterModel

SERVICE_ACCOUNT = "aws-load-balancer-controller"
CONTROLLER_VERSION = "v3.2.2"
# Two replicas (the chart's default) at the upstream chart's example requests.
CONTROLLER_RESOURCES = {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}}


@functools.cache
def controller_policy(version: str = CONTROLLER_VERSION) -> dict[str, Any]:
    """The controller's upstream IAM policy, as aws-cdk-lib maintains and ships it for ``version``: from the
    copy of aws-cdk-lib the jsii runtime has already unpacked, else out of its bundle (0.15 s more)."""
    bundle_dir = resources.files("aws_cdk._jsii")
    (bundle,) = [entry for entry in bundle_dir.iterdir() if entry.name.startswith("aws-cdk-lib@")]
    cdk_version = bundle.name.removeprefix("aws-cdk-lib@").removesuffix(".jsii.tgz")
    unpacked = _unpacked_member(cdk_version, policy_member(version).removeprefix("package/"))
    if unpacked is not None:
        return cast(dict[str, Any], json.loads(unpacked.read_bytes()))
    with resources.as_file(bundle) as path:
        policy: dict[str, Any] = json.loads(read_member(path, policy_member(version)))
    return policy


def _unpacked_member(cdk_version: str, member: str) -> Path | None:
    """``member`` in the jsii runtime's package cache (on by default; JSII_RUNTIME_PACKAGE_CACHE_ROOT moves it,
    and its layout is <root>/<package>/<version>/<digest>/): every digest of one version has the same files."""
    if os.environ.get("JSII_RUNTIME_PACKAGE_CACHE", "enabled").lower() != "enabled":
        return None
    cache_home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    root = Path(os.environ.get("JSII_RUNTIME_PACKAGE_CACHE_ROOT") or cache_home / "aws" / "jsii" / "package-cache")
    return next(iter(sorted((root / "aws-cdk-lib" / cdk_version).glob(f"*/{member}"))), None)


def policy_member(version: str) -> str:
    return f"package/aws-eks-v2/lib/addons/alb-iam_policy-{version}.json"


def wildcard_resources(policy: dict[str, Any]) -> set[str]:
    found: set[str] = set()
    for statement in policy["Statement"]:
        resource = statement.get("Resource", [])
        found.update(r for r in (resource if isinstance(resource, list) else [resource]) if "*" in r)
    return found


def _in_partition(resource: str | list[str]) -> str | list[str]:
    # The upstream file hard-codes arn:aws:; use the stack's partition (GovCloud, China).
    if isinstance(resource, list):
        return [r.replace("arn:aws:", f"arn:{partition()}:") for r in resource]
    return resource.replace("arn:aws:", f"arn:{partition()}:")


class LoadBalancerController(Construct):
    """Attributes: ``role``, ``chart``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster: eks.ICluster,
        cluster_name: str,
        model: ClusterModel,
        placement: SystemPlacement,
        after: Sequence[IDependable] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        self.role = pod_identity_role(
            self,
            "Role",
            description=f"AWS Load Balancer Controller {CONTROLLER_VERSION} of {cluster_name} (EKS Pod Identity)",
        )
        for statement in controller_policy()["Statement"]:
            self.role.add_to_policy(
                iam.PolicyStatement.from_json({**statement, "Resource": _in_partition(statement["Resource"])})
            )
        # Every wildcard resource of the upstream policy: "*" for describe calls, and ARN patterns for what the
        # controller creates itself (names unknown in advance; tag conditions restrict it to its own).
        reason = (
            "Upstream AWS Load Balancer Controller policy as shipped by aws-cdk-lib: describe calls take no "
            "resource ARNs, and writes are limited by conditions on the elbv2.k8s.aws/cluster tag."
        )
        acknowledge_all(
            self.role,
            (
                (f"{PACK}-IAM5[Resource::{resource.replace('arn:aws:', 'arn:<AWS::Partition>:')}]", reason)
                for resource in sorted(wildcard_resources(controller_policy()))
            ),
        )
        acknowledge_inline_policy(
            self.role,
            "The controller's upstream policy, written as the inline policy of its own Pod Identity role: it "
            "follows the controller version pinned with it, with no other principal able to attach it.",
        )
        association = associate(
            self,
            "PodIdentity",
            cluster=cluster,
            namespace=helm.AWS_LOAD_BALANCER_CONTROLLER.namespace,
            service_account=SERVICE_ACCOUNT,
            role=self.role,
        )
        self.chart = helm.install(
            self,
            "Chart",
            cluster,
            helm.AWS_LOAD_BALANCER_CONTROLLER,
            {
                "clusterName": cluster_name,
                # Given explicitly so the controller never needs instance metadata.
                "region": Stack.of(self).region,
                "vpcId": cluster.vpc.vpc_id,
                "serviceAccount": {"create": True, "name": SERVICE_ACCOUNT},
                **placement.values(),
                "resources": CONTROLLER_RESOURCES,
                # Merged into the chart's non-root, read-only, no-escalation context: no capabilities, and the
                # runtime's default seccomp profile.
                "securityContext": {
                    "capabilities": HARDENED_CONTAINER["capabilities"],
                    "seccompProfile": HARDENED_CONTAINER["seccompProfile"],
                },
            },
            model=model,
            wait=True,  # its webhooks must serve before Services and Ingresses are applied
            after=[association, *after],
            placement=placement.values(),
        )
