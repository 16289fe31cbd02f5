"""The Karpenter controller policy against Karpenter v1's reference policy, statement by statement."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest
from aws_cdk import Token, Validations

from eks_ml import ValidationError
from eks_ml.errors import Problems
from eks_ml.inference import InferenceCluster
from eks_ml.inference.karpenter import IAM_ROLE_NAME_LIMIT, check_cluster_name_for_karpenter
from eks_ml.inference.karpenter_policy import OMITTED

from .support.inference import inference_cluster
from .support.synth import joined, of_type, resource_id

CLUSTER = "serve"

# Karpenter's reference controller policy for v1.14, transcribed from
# https://github.com/aws/karpenter-provider-aws/blob/1d927085dd81a9df9301e613f371dac5b4d16bfe/website/content/en/v1.14/getting-started/getting-started-with-karpenter/cloudformation.yaml
# (docs commit "docs: update for patch release v1.14.1"; the v1.14 page equals the "docs" (latest) page there).
# Upstream splits it into six managed policies; the Sids are unique across them. ${...} as in its Fn::Sub.
_EC2 = "arn:${AWS::Partition}:ec2:${AWS::Region}"
_LAUNCHED = [
    f"{_EC2}:*:{kind}/*"
    for kind in ("fleet", "instance", "volume", "network-interface", "launch-template", "spot-instances-request")
]
_PROFILES = "arn:${AWS::Partition}:iam::${AWS::AccountId}:instance-profile/*"
_OWNED_RESOURCE = {
    "StringEquals": {"aws:ResourceTag/kubernetes.io/cluster/${ClusterName}": "owned"},
    "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"},
}
_OWNED_REQUEST = {
    "aws:RequestTag/kubernetes.io/cluster/${ClusterName}": "owned",
    "aws:RequestTag/eks:eks-cluster-name": "${ClusterName}",
}
REFERENCE: dict[str, dict[str, Any]] = {
    # --- KarpenterControllerNodeLifecyclePolicy
    "AllowScopedEC2InstanceAccessActions": {
        "Resource": [
            f"{_EC2}::image/*",
            f"{_EC2}::snapshot/*",
            f"{_EC2}:*:security-group/*",
            f"{_EC2}:*:subnet/*",
            f"{_EC2}:*:capacity-reservation/*",
            f"{_EC2}:*:placement-group/*",
        ],
        "Action": ["ec2:RunInstances", "ec2:CreateFleet"],
    },
    "AllowScopedEC2LaunchTemplateAccessActions": {
        "Resource": f"{_EC2}:*:launch-template/*",
        "Action": ["ec2:RunInstances", "ec2:CreateFleet"],
        "Condition": _OWNED_RESOURCE,
    },
    "AllowScopedEC2InstanceActionsWithTags": {
        "Resource": _LAUNCHED,
        "Action": ["ec2:RunInstances", "ec2:CreateFleet", "ec2:CreateLaunchTemplate"],
        "Condition": {
            "StringEquals": _OWNED_REQUEST,
            "StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"},
        },
    },
    "AllowScopedResourceCreationTagging": {
        "Resource": _LAUNCHED,
        "Action": "ec2:CreateTags",
        "Condition": {
            "StringEquals": {
                **_OWNED_REQUEST,
                "ec2:CreateAction": ["RunInstances", "CreateFleet", "CreateLaunchTemplate"],
            },
            "StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"},
        },
    },
    "AllowScopedResourceTagging": {
        "Resource": f"{_EC2}:*:instance/*",
        "Action": "ec2:CreateTags",
        "Condition": {
            **_OWNED_RESOURCE,
            "StringEqualsIfExists": {"aws:RequestTag/eks:eks-cluster-name": "${ClusterName}"},
            "ForAllValues:StringEquals": {"aws:TagKeys": ["eks:eks-cluster-name", "karpenter.sh/nodeclaim", "Name"]},
        },
    },
    "AllowScopedDeletion": {
        "Resource": [f"{_EC2}:*:instance/*", f"{_EC2}:*:launch-template/*"],
        "Action": ["ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"],
        "Condition": _OWNED_RESOURCE,
    },
    # --- KarpenterControllerIAMIntegrationPolicy
    "AllowPassingInstanceRole": {
        "Resource": "${KarpenterNodeRole.Arn}",
        "Action": "iam:PassRole",
        "Condition": {"StringEquals": {"iam:PassedToService": ["ec2.amazonaws.com", "ec2.amazonaws.com.cn"]}},
    },
    "AllowScopedInstanceProfileCreationActions": {
        "Resource": _PROFILES,
        "Action": ["iam:CreateInstanceProfile"],
        "Condition": {
            "StringEquals": {**_OWNED_REQUEST, "aws:RequestTag/topology.kubernetes.io/region": "${AWS::Region}"},
            "StringLike": {"aws:RequestTag/karpenter.k8s.aws/ec2nodeclass": "*"},
        },
    },
    "AllowScopedInstanceProfileTagActions": {
        "Resource": _PROFILES,
        "Action": ["iam:TagInstanceProfile"],
        "Condition": {
            "StringEquals": {
                "aws:ResourceTag/kubernetes.io/cluster/${ClusterName}": "owned",
                "aws:ResourceTag/topology.kubernetes.io/region": "${AWS::Region}",
                **_OWNED_REQUEST,
                "aws:RequestTag/topology.kubernetes.io/region": "${AWS::Region}",
            },
            "StringLike": {
                "aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass": "*",
                "aws:RequestTag/karpenter.k8s.aws/ec2nodeclass": "*",
            },
        },
    },
    "AllowScopedInstanceProfileActions": {
        "Resource": _PROFILES,
        "Action": ["iam:AddRoleToInstanceProfile", "iam:RemoveRoleFromInstanceProfile", "iam:DeleteInstanceProfile"],
        "Condition": {
            "StringEquals": {
                "aws:ResourceTag/kubernetes.io/cluster/${ClusterName}": "owned",
                "aws:ResourceTag/topology.kubernetes.io/region": "${AWS::Region}",
            },
            "StringLike": {"aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass": "*"},
        },
    },
    # --- KarpenterControllerEKSIntegrationPolicy
    "AllowAPIServerEndpointDiscovery": {
        "Resource": "arn:${AWS::Partition}:eks:${AWS::Region}:${AWS::AccountId}:cluster/${ClusterName}",
        "Action": "eks:DescribeCluster",
    },
    # --- KarpenterControllerInterruptionPolicy
    "AllowInterruptionQueueActions": {
        "Resource": "${KarpenterInterruptionQueue.Arn}",
        "Action": ["sqs:DeleteMessage", "sqs:GetQueueUrl", "sqs:ReceiveMessage"],
    },
    # --- KarpenterControllerZonalShiftPolicy
    "AllowZonalShiftStatusReadOnly": {
        "Resource": "*",
        "Action": ["arc-zonal-shift:GetManagedResource"],
        "Condition": {
            "StringEquals": {
                "arc-zonal-shift:ResourceIdentifier": (
                    "arn:${AWS::Partition}:eks:${AWS::Region}:${AWS::AccountId}:cluster/${ClusterName}"
                )
            }
        },
    },
    # --- KarpenterControllerResourceDiscoveryPolicy
    "AllowRegionalReadActions": {
        "Resource": "*",
        "Action": [
            "ec2:DescribeCapacityReservations",
            "ec2:DescribeImages",
            "ec2:DescribeInstances",
            "ec2:DescribeInstanceStatus",
            "ec2:DescribeInstanceTypeOfferings",
            "ec2:DescribeInstanceTypes",
            "ec2:DescribeLaunchTemplates",
            "ec2:DescribePlacementGroups",
            "ec2:DescribeSecurityGroups",
            "ec2:DescribeSpotPriceHistory",
            "ec2:DescribeSubnets",
        ],
        "Condition": {"StringEquals": {"aws:RequestedRegion": "${AWS::Region}"}},
    },
    "AllowSSMReadActions": {
        "Resource": "arn:${AWS::Partition}:ssm:${AWS::Region}::parameter/aws/service/*",
        "Action": "ssm:GetParameter",
    },
    "AllowPricingReadActions": {"Resource": "*", "Action": "pricing:GetProducts"},
    "AllowUnscopedInstanceProfileListAction": {"Resource": "*", "Action": "iam:ListInstanceProfiles"},
    "AllowInstanceProfileReadActions": {"Resource": _PROFILES, "Action": "iam:GetInstanceProfile"},
}
EXPECTED_SIDS = sorted(set(REFERENCE) - set(OMITTED))


# --- comparing policies ---------------------------------------------------------------------------------


def render(value: Any, names: dict[str, str]) -> str:
    """A CloudFormation string as upstream's Fn::Sub writes it: ${AWS::Region}, ${LogicalName.Arn}."""
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return "${" + value["Ref"] + "}"
    if "Fn::GetAtt" in value:
        logical_id, attribute = value["Fn::GetAtt"]
        return "${" + names.get(logical_id, logical_id) + "." + attribute + "}"
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(render(part, names) for part in parts)
    raise AssertionError(f"unexpected CloudFormation value {value!r}")


def _as_sorted(value: Any, names: dict[str, str]) -> list[str]:
    return sorted(render(v, names) for v in (value if isinstance(value, list) else [value]))


def normalized(statement: dict[str, Any], names: dict[str, str], cluster_name: str) -> dict[str, Any]:
    """Single values as one-element lists, lists sorted, ${ClusterName} filled in, Effect defaulted."""

    def fill(text: str) -> str:
        return text.replace("${ClusterName}", cluster_name)

    return {
        "Effect": statement.get("Effect", "Allow"),
        "Action": _as_sorted(statement["Action"], names),
        "Resource": [fill(r) for r in _as_sorted(statement["Resource"], names)],
        "Condition": {
            operator: {fill(key): [fill(v) for v in _as_sorted(values, names)] for key, values in keys.items()}
            for operator, keys in statement.get("Condition", {}).items()
        },
    }


def differences(statements: list[dict[str, Any]], names: dict[str, str], cluster_name: str) -> list[str]:
    """Every way the synthesized statements differ from the reference (minus OMITTED)."""
    found = {s.get("Sid"): s for s in statements}
    problems = [f"{sid}: missing" for sid in EXPECTED_SIDS if sid not in found]
    problems += [f"{sid}: not in the reference" for sid in found if sid not in EXPECTED_SIDS]
    for sid in EXPECTED_SIDS:
        if sid not in found:
            continue
        want = normalized({"Effect": "Allow", **REFERENCE[sid]}, {}, cluster_name)
        got = normalized(found[sid], names, cluster_name)
        problems += [
            f"{sid}: {part} is {got[part]!r}, reference {want[part]!r}" for part in want if got[part] != want[part]
        ]
    return problems


_READ_ONLY = re.compile(r"^[a-z0-9-]+:(Describe|Get|List)[A-Za-z]*$")


def unconditioned_mutations(statements: list[dict[str, Any]]) -> list[str]:
    """Statements allowing a mutating EC2 or IAM action on every resource ("*") with no condition."""
    found = []
    for statement in statements:
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        mutating = [a for a in actions if a.split(":")[0] in ("ec2", "iam") and not _READ_ONLY.match(a)]
        if statement["Effect"] == "Allow" and "*" in resources and mutating and not statement.get("Condition"):
            found.append(f"{statement.get('Sid')}: {mutating} on *")
    return found


# --- the synthesized policy -----------------------------------------------------------------------------


def synth(cluster_name: str = CLUSTER, **base: Any) -> tuple[InferenceCluster, dict[str, Any]]:
    return inference_cluster(base={"cluster_name": cluster_name, **base})


class Policy:
    """The controller role's policy statements and the logical ids upstream names its references by."""

    def __init__(self, cluster: InferenceCluster, template: dict[str, Any]) -> None:
        role_id = resource_id(template, "AWS::IAM::Role", RoleName=cluster.karpenter.node_role_name)
        (queue_id,) = of_type(template, "AWS::SQS::Queue")
        self.names = {role_id: "KarpenterNodeRole", queue_id: "KarpenterInterruptionQueue"}
        association = next(iter(of_type(template, "AWS::EKS::PodIdentityAssociation").values()))
        controller_role = association["Properties"]["RoleArn"]["Fn::GetAtt"][0]
        (policy,) = [
            p
            for p in of_type(template, "AWS::IAM::Policy").values()
            if p["Properties"]["Roles"] == [{"Ref": controller_role}]
        ]
        self.statements: list[dict[str, Any]] = policy["Properties"]["PolicyDocument"]["Statement"]


@pytest.fixture(scope="module")
def default() -> tuple[InferenceCluster, dict[str, Any]]:
    return synth()


@pytest.fixture(scope="module")
def policy(default: Any) -> Policy:
    return Policy(*default)


def test_the_policy_has_every_reference_statement_but_the_omitted_one(policy: Policy) -> None:
    assert len(REFERENCE) == 18 and len(EXPECTED_SIDS) == 17
    assert sorted(s["Sid"] for s in policy.statements) == EXPECTED_SIDS


@pytest.mark.parametrize("sid", EXPECTED_SIDS)
def test_each_statement_matches_the_reference(policy: Policy, sid: str) -> None:
    (statement,) = [s for s in policy.statements if s["Sid"] == sid]
    assert differences([statement], policy.names, CLUSTER) == [
        f"{other}: missing" for other in EXPECTED_SIDS if other != sid
    ]


def test_the_whole_policy_matches_the_reference(policy: Policy) -> None:
    assert differences(policy.statements, policy.names, CLUSTER) == []


BROKEN = [
    # The policy eks-ml had before issue 9: termination needed a nodepool tag only.
    pytest.param(
        "AllowScopedDeletion",
        lambda s: s.update(Condition={"StringLike": {"ec2:ResourceTag/karpenter.sh/nodepool": "*"}}),
        id="termination-without-ownership",
    ),
    pytest.param("AllowScopedDeletion", lambda s: s.update(Resource="*"), id="delete-anything"),
    pytest.param("AllowSSMReadActions", lambda s: s.update(Resource="*"), id="ssm-every-parameter"),
    pytest.param("AllowRegionalReadActions", lambda s: s.pop("Condition"), id="reads-in-any-region"),
    pytest.param(
        "AllowScopedEC2InstanceActionsWithTags",
        lambda s: s["Condition"]["StringEquals"].pop("aws:RequestTag/eks:eks-cluster-name"),
        id="launch-without-cluster-name-tag",
    ),
    pytest.param("AllowPassingInstanceRole", lambda s: s["Condition"].clear(), id="pass-role-to-any-service"),
    pytest.param(
        "AllowInterruptionQueueActions",
        lambda s: s["Action"].append("sqs:GetQueueAttributes"),
        id="extra-queue-action",
    ),
    pytest.param("AllowPricingReadActions", lambda s: s.update(Sid="AllowPricing"), id="renamed-statement"),
]


@pytest.mark.parametrize(("sid", "mutate"), BROKEN)
def test_a_statement_that_departs_from_the_reference_is_caught(policy: Policy, sid: str, mutate: Any) -> None:
    statements = copy.deepcopy(policy.statements)
    mutate(next(s for s in statements if s["Sid"] == sid))
    assert differences(statements, policy.names, CLUSTER) != []


def test_no_statement_allows_a_mutating_ec2_or_iam_action_on_everything_unconditionally(policy: Policy) -> None:
    assert unconditioned_mutations(policy.statements) == []


@pytest.mark.parametrize(
    "broken",
    [
        # The first statement eks-ml had before issue 9.
        {"Sid": "AllowEC2LaunchAndDiscovery", "Effect": "Allow", "Resource": "*", "Action": ["ec2:RunInstances"]},
        {"Sid": "Profiles", "Effect": "Allow", "Resource": ["*"], "Action": "iam:DeleteInstanceProfile"},
    ],
)
def test_an_unconditioned_mutation_on_everything_is_caught(policy: Policy, broken: dict[str, Any]) -> None:
    (found,) = unconditioned_mutations([*policy.statements, broken])
    assert found.startswith(f"{broken['Sid']}: ")


# --- what the conditions rely on ------------------------------------------------------------------------


def test_the_tags_the_conditions_require_are_the_ones_karpenter_applies(default: Any, policy: Policy) -> None:
    """Karpenter tags what it creates with kubernetes.io/cluster/<settings.clusterName>: owned,
    eks:eks-cluster-name, karpenter.sh/nodepool and karpenter.k8s.aws/ec2nodeclass (v1.14.1
    pkg/utils/utils.go GetTags, pkg/apis/v1/ec2nodeclass.go InstanceProfileTags); the conditions must
    name the same cluster, and no EC2NodeClass may set those keys itself."""
    cluster, template = default
    chart = template["Resources"][resource_id(template, "Custom::AWSCDK-EKS-HelmChart", Release="karpenter")]
    settings = json.loads(joined(chart["Properties"]["Values"]))["settings"]
    assert settings["clusterName"] == CLUSTER
    assert "enableZonalShift" not in settings  # why AllowZonalShiftStatusReadOnly is omitted
    keys = {key for s in policy.statements for keys in s.get("Condition", {}).values() for key in keys}
    ownership = {k for k in keys if "kubernetes.io/cluster/" in k}
    assert ownership == {
        "aws:RequestTag/kubernetes.io/cluster/serve",
        "aws:ResourceTag/kubernetes.io/cluster/serve",
    }
    restricted = re.compile(r"^(kubernetes\.io/cluster/|eks:eks-cluster-name$|karpenter\.(sh|k8s\.aws)/)")
    node_classes = [o for o in cluster.pools_chart.to_json() if o["kind"] == "EC2NodeClass"]
    assert len(node_classes) == 3
    for node_class in node_classes:
        assert not [key for key in node_class["spec"]["tags"] if restricted.match(key)]
        # The role Karpenter passes to EC2 is the one PassRole allows.
        assert node_class["spec"]["role"] == cluster.karpenter.node_role_name
    (pass_role,) = [s for s in policy.statements if s["Sid"] == "AllowPassingInstanceRole"]
    assert render(pass_role["Resource"], policy.names) == "${KarpenterNodeRole.Arn}"


def resolved(value: Any, names: dict[str, str]) -> Any:
    """A policy document with every CloudFormation reference rendered as upstream writes it."""
    if isinstance(value, dict) and ({"Ref", "Fn::GetAtt", "Fn::Join"} & set(value)):
        return render(value, names)
    if isinstance(value, dict):
        return {key: resolved(v, names) for key, v in value.items()}
    if isinstance(value, list):
        return [resolved(v, names) for v in value]
    return value


# IAM's limit on the inline policies of one role, together, in characters without whitespace.
ROLE_INLINE_POLICY_LIMIT = 10_240
LONGEST_NAME = "c" * (IAM_ROLE_NAME_LIMIT - len("-karpenter-node"))


def policy_size(policy: Policy, cluster_name: str) -> int:
    """Characters of the policy as IAM stores it, with long real values in place of the references."""
    text = json.dumps(
        {"Version": "2012-10-17", "Statement": resolved(policy.statements, policy.names)}, separators=(",", ":")
    )
    for placeholder, value in {
        "${AWS::Partition}": "aws-us-gov",
        "${AWS::Region}": "ap-southeast-5",
        "${AWS::AccountId}": "111122223333",
        "${KarpenterNodeRole.Arn}": f"arn:aws-us-gov:iam::111122223333:role/{cluster_name}-karpenter-node",
        "${KarpenterInterruptionQueue.Arn}": f"arn:aws-us-gov:sqs:ap-southeast-5:111122223333:{cluster_name}-karpenter",
    }.items():
        text = text.replace(placeholder, value)
    assert "${" not in text
    return len(text)


@pytest.fixture(scope="module")
def longest() -> tuple[InferenceCluster, dict[str, Any]]:
    return synth(LONGEST_NAME)


def test_the_longest_allowed_cluster_name_fits_the_role_name_and_policy_limits(longest: Any) -> None:
    cluster, template = longest
    assert len(cluster.karpenter.node_role_name) == IAM_ROLE_NAME_LIMIT
    resource_id(template, "AWS::IAM::Role", RoleName=cluster.karpenter.node_role_name)
    policy = Policy(cluster, template)
    assert differences(policy.statements, policy.names, LONGEST_NAME) == []
    size = policy_size(policy, LONGEST_NAME)
    assert 5_000 < size <= ROLE_INLINE_POLICY_LIMIT, size


def test_a_cluster_name_too_long_for_the_node_role_is_refused() -> None:
    name = LONGEST_NAME + "c"
    with pytest.raises(
        ValidationError, match=r"base.cluster_name='c{50}': allowed at most 49 characters with Karpenter"
    ):
        synth(name)
    synth(name, auto_mode=True)  # EKS Auto Mode has no Karpenter node role


def test_karpenter_needs_a_literal_cluster_name() -> None:
    problems = Problems()
    check_cluster_name_for_karpenter(Token.as_string({"Ref": "Name"}), "cluster_name", problems)
    check_cluster_name_for_karpenter(LONGEST_NAME, "cluster_name", problems)
    assert [p.allowed.split(" (")[0] for p in problems.found] == ["a literal name with Karpenter"]


# --- cdk-nag acknowledgements ---------------------------------------------------------------------------


def acknowledged_patterns(cluster: InferenceCluster) -> dict[str, str]:
    """IAM5 resource patterns acknowledged on the controller role, with their reasons."""
    prefix = "AwsSolutions::AwsSolutions-IAM5[Resource::"
    return {
        rule.removeprefix(prefix).removesuffix("]"): reason
        for entry in cluster.karpenter.controller_role.node.metadata
        if entry.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY
        for rule, reason in entry.data.items()
        if rule.startswith(prefix)
    }


def wildcard_patterns(policy: Policy) -> set[str]:
    """Wildcard resources of the policy as cdk-nag names them (pseudo parameters as <AWS::...>)."""
    resources = [r for s in policy.statements for r in _as_sorted(s["Resource"], policy.names)]
    return {re.sub(r"\$\{(AWS::\w+)\}", r"<\1>", r) for r in resources if "*" in r}


def test_each_wildcard_resource_is_acknowledged_once_with_its_own_reason(default: Any, policy: Policy) -> None:
    cluster, _ = default
    acknowledged = acknowledged_patterns(cluster)
    assert set(acknowledged) == wildcard_patterns(policy)
    assert len(acknowledged) == 15
    # No blanket reason: the launch-only patterns share one, everything else says what limits it.
    assert len(set(acknowledged.values())) == 7
    assert "aws:RequestedRegion" in acknowledged["*"]
    assert CLUSTER in acknowledged["arn:<AWS::Partition>:ec2:<AWS::Region>:*:instance/*"]


def test_a_new_wildcard_without_its_own_acknowledgement_is_caught(default: Any, policy: Policy) -> None:
    cluster, _ = default
    broken = copy.deepcopy(policy)
    broken.statements.append(
        {"Sid": "X", "Effect": "Allow", "Action": "ec2:DeleteVolume", "Resource": f"{_EC2}:*:volume-snapshot/*"}
    )
    assert set(acknowledged_patterns(cluster)) != wildcard_patterns(broken)
