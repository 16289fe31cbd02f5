"""The CEL gate: every x-kubernetes-validations rule of the pinned charts' CRDs is evaluated, and real rules
catch real mistakes. Each negative case starts from an object that passes and breaks one thing."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .support import cel_rules, crds
from .support.k8s_cel import FUNCTIONS
from .support.manifests import requires_chart_cache, validate_object

pytestmark = requires_chart_cache


def all_rules(schema: Any) -> Iterator[str]:
    """Every rule anywhere in a schema, whatever keyword it sits under."""
    if isinstance(schema, dict):
        for rule in schema.get("x-kubernetes-validations", ()):
            yield rule["rule"]
        for value in schema.values():
            yield from all_rules(value)
    elif isinstance(schema, list):
        for item in schema:
            yield from all_rules(item)


def structural_rules(schema: dict[str, Any]) -> Iterator[str]:
    """The rules at locations the gate walks: properties, items and additionalProperties."""
    for rule in schema.get("x-kubernetes-validations", ()):
        yield rule["rule"]
    children = [*schema.get("properties", {}).values(), schema.get("items"), schema.get("additionalProperties")]
    for child in children:
        if isinstance(child, dict):
            yield from structural_rules(child)


def pinned_rules() -> list[str]:
    return [rule for schema in crds.served_schemas().values() for rule in all_rules(schema)]


def test_every_rule_sits_where_the_gate_walks() -> None:
    for key, schema in crds.served_schemas().items():
        assert sorted(structural_rules(schema)) == sorted(all_rules(schema)), key


def test_every_rule_compiles_and_calls_only_functions_we_provide() -> None:
    rules = pinned_rules()
    assert len(rules) > 100
    called = {name for rule in rules for name in cel_rules.called_functions(rule)}
    assert called - cel_rules.STANDARD - set(FUNCTIONS) == set()
    # Only what the rules use is implemented: an extension no rule calls would be untested surface.
    assert set(FUNCTIONS) <= called
    assert cel_rules.UNSUPPORTED == {}
    # Failures are reported with each rule's message: a messageExpression would need evaluating too.
    assert not any("messageExpression" in json.dumps(schema) for schema in crds.served_schemas().values())


def test_transition_rules_are_recognised_by_their_use_of_old_self() -> None:
    assert cel_rules.is_transition("self == oldSelf")
    assert not cel_rules.is_transition("self.message != 'oldSelf'")
    transition = [rule for rule in pinned_rules() if cel_rules.is_transition(rule)]
    assert transition and all("oldSelf" in rule for rule in transition)


NODEPOOL: dict[str, Any] = {
    "apiVersion": "karpenter.sh/v1",
    "kind": "NodePool",
    "metadata": {"name": "gpu"},
    "spec": {
        "template": {
            "metadata": {"labels": {"eks-ml.io/pool": "gpu"}},
            "spec": {
                "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "gpu"},
                "requirements": [
                    {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]},
                    {"key": "karpenter.k8s.aws/instance-family", "operator": "In", "values": ["g6"]},
                ],
            },
        }
    },
}
EC2NODECLASS: dict[str, Any] = {
    "apiVersion": "karpenter.k8s.aws/v1",
    "kind": "EC2NodeClass",
    "metadata": {"name": "gpu"},
    "spec": {
        "role": "node-role",
        "amiSelectorTerms": [{"alias": "al2023@latest"}],
        "subnetSelectorTerms": [{"tags": {"karpenter.sh/discovery": "ml"}}],
        "securityGroupSelectorTerms": [{"tags": {"karpenter.sh/discovery": "ml"}}],
    },
}
CLUSTERQUEUE: dict[str, Any] = {
    "apiVersion": "kueue.x-k8s.io/v1beta2",
    "kind": "ClusterQueue",
    "metadata": {"name": "training"},
    "spec": {
        "resourceGroups": [
            {
                "coveredResources": ["cpu", "nvidia.com/gpu"],
                "flavors": [
                    {
                        "name": "p5",
                        "resources": [
                            {"name": "cpu", "nominalQuota": 96},
                            {"name": "nvidia.com/gpu", "nominalQuota": 8},
                        ],
                    }
                ],
            }
        ]
    },
}
RESOURCEFLAVOR: dict[str, Any] = {
    "apiVersion": "kueue.x-k8s.io/v1beta2",
    "kind": "ResourceFlavor",
    "metadata": {"name": "p5"},
    "spec": {
        "nodeLabels": {"eks-ml.io/node-group": "p5"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}],
    },
}
RUNTIME: dict[str, Any] = {
    "apiVersion": "trainer.kubeflow.org/v1alpha1",
    "kind": "ClusterTrainingRuntime",
    "metadata": {"name": "torch"},
    "spec": {
        "mlPolicy": {"numNodes": 1, "torch": {}},
        "template": {
            "spec": {
                "replicatedJobs": [
                    {
                        "name": "initializer",
                        "template": {
                            "spec": {"template": {"spec": {"containers": [{"name": "init", "image": "busybox"}]}}}
                        },
                    },
                    {
                        "name": "node",
                        "template": {
                            "spec": {"template": {"spec": {"containers": [{"name": "node", "image": "busybox"}]}}}
                        },
                    },
                ]
            }
        },
    },
}
TRAINJOB: dict[str, Any] = {
    "apiVersion": "trainer.kubeflow.org/v1alpha1",
    "kind": "TrainJob",
    "metadata": {"name": "llama-sft", "namespace": "training"},
    "spec": {"runtimeRef": {"name": "torch"}},
}


def set_at(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A change that sets ``value`` at a dotted path (list indexes as numbers)."""

    def change(obj: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = obj
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return change


def both(*changes: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def change(obj: dict[str, Any]) -> None:
        for each in changes:
            each(obj)

    return change


BROKEN = [
    pytest.param(
        NODEPOOL,
        set_at(
            "spec.template.spec.requirements.0", {"key": "karpenter.sh/nodepool", "operator": "In", "values": ["x"]}
        ),
        'label "karpenter.sh/nodepool" is restricted',
        id="nodepool-requirement-on-karpenter.sh/nodepool",
    ),
    pytest.param(
        NODEPOOL,
        set_at("spec.template.spec.requirements.1.key", "karpenter.k8s.aws/instance-family-typo"),
        'label domain "karpenter.k8s.aws" is restricted',  # find('^([^/]+)').endsWith(...)
        id="nodepool-requirement-on-an-unknown-karpenter.k8s.aws-label",
    ),
    pytest.param(
        NODEPOOL,
        set_at("spec.template.metadata.labels", {"karpenter.sh/team": "ml"}),
        'label domain "karpenter.sh" is restricted',
        id="nodepool-template-label-in-the-karpenter.sh-domain",
    ),
    pytest.param(
        NODEPOOL,
        set_at(
            "spec.template.spec.requirements.1",
            {"key": "karpenter.k8s.aws/instance-gpu-count", "operator": "Gt", "values": ["1", "2"]},
        ),
        "requirements operator 'Gt', 'Lt', 'Gte', or 'Lte' must have a single positive integer value",
        id="nodepool-gt-with-two-values",
    ),
    pytest.param(
        NODEPOOL,
        set_at("spec.disruption", {"consolidateAfter": "10m", "budgets": [{"nodes": "10%", "schedule": "@daily"}]}),
        "'schedule' must be set with 'duration'",
        id="nodepool-budget-schedule-without-duration",
    ),
    pytest.param(
        EC2NODECLASS,
        set_at("spec.amiSelectorTerms", [{"alias": "al2023@latest", "tags": {"team": "ml"}}]),
        "'alias' is mutually exclusive, cannot be set with a combination of other fields in amiSelectorTerms",
        id="ec2nodeclass-alias-with-tags",
    ),
    pytest.param(
        EC2NODECLASS,
        set_at("spec.amiSelectorTerms", [{"alias": "al2023@latest"}, {"id": "ami-0123456789abcdef0"}]),
        "'alias' is mutually exclusive, cannot be set with a combination of other amiSelectorTerms",
        id="ec2nodeclass-alias-beside-another-term",
    ),
    pytest.param(
        EC2NODECLASS,
        set_at("spec.amiSelectorTerms", [{"alias": "ubuntu@latest"}]),
        # split('@')[0]
        "family is not supported, must be one of the following: 'al2', 'al2023', 'bottlerocket', 'windows2019', 'windows2022', 'windows2025'",
        id="ec2nodeclass-alias-of-an-unsupported-family",
    ),
    pytest.param(
        EC2NODECLASS,
        set_at("spec.amiSelectorTerms", [{"alias": "windows2022@v20260101"}]),
        "windows families may only specify version 'latest'",  # split('@')[1]
        id="ec2nodeclass-pinned-windows-alias",
    ),
    pytest.param(
        EC2NODECLASS,
        set_at("spec.amiFamily", "Bottlerocket"),
        "if set, amiFamily must be 'AL2023' or 'Custom' when using an AL2023 alias",
        id="ec2nodeclass-ami-family-contradicting-the-alias",
    ),
    pytest.param(
        EC2NODECLASS,
        set_at("spec.tags", {"karpenter.sh/nodepool": "gpu"}),
        "tag contains a restricted tag matching karpenter.sh/nodepool",
        id="ec2nodeclass-restricted-tag",
    ),
    pytest.param(
        CLUSTERQUEUE,
        set_at("spec.resourceGroups.0.flavors.0.resources", [{"name": "cpu", "nominalQuota": 96}]),
        "flavors must have the same number of resources as the coveredResources",
        id="clusterqueue-flavor-missing-a-covered-resource",
    ),
    pytest.param(
        CLUSTERQUEUE,
        set_at("spec.resourceGroups.0.flavors.0.resources.0.borrowingLimit", 10),
        "borrowingLimit must be nil when cohort is empty",
        id="clusterqueue-borrowing-without-a-cohort",
    ),
    pytest.param(
        CLUSTERQUEUE,
        # whenCanBorrow is not set: its schema default (MayStopSearch) is applied first, as the server does.
        set_at("spec.flavorFungibility", {"preference": "BorrowingOverPreemption"}),
        "preference can only be set when both whenCanBorrow and whenCanPreempt are TryNextFlavor",
        id="clusterqueue-preference-with-defaulted-fungibility",
    ),
    pytest.param(
        RESOURCEFLAVOR,
        set_at("spec.tolerations.0", {"key": "nvidia.com/gpu", "operator": "Exists", "value": "true"}),
        "a value must be empty when 'operator' is 'Exists'",
        id="resourceflavor-exists-toleration-with-a-value",
    ),
    pytest.param(
        RESOURCEFLAVOR,
        set_at("spec.nodeTaints", [{"key": "a", "value": "b", "effect": "Sometimes"}]),
        "supported taint effect values: 'NoSchedule', 'PreferNoSchedule', 'NoExecute'",
        id="resourceflavor-taint-with-an-unknown-effect",
    ),
    pytest.param(
        RUNTIME,
        set_at("spec.mlPolicy.mpi", {"numProcPerNode": 8}),
        "Only one of the policy can be configured",
        id="runtime-torch-and-mpi",
    ),
    pytest.param(
        RUNTIME,
        both(
            set_at("spec.template.spec.startupPolicy", {"startupPolicyOrder": "InOrder"}),
            set_at("spec.template.spec.replicatedJobs.1.dependsOn", [{"name": "initializer", "status": "Complete"}]),
        ),
        "StartupPolicy and DependsOn APIs are mutually exclusive",  # the JobSet rule inside the runtime
        id="runtime-jobset-depends-on-with-in-order-startup",
    ),
    pytest.param(
        TRAINJOB,
        set_at("metadata.name", "Llama_SFT"),
        "metadata.name must match RFC 1035 DNS label format",
        id="trainjob-name-not-a-dns-label",
    ),
]


@pytest.mark.parametrize(
    "valid", [NODEPOOL, EC2NODECLASS, CLUSTERQUEUE, RESOURCEFLAVOR, RUNTIME, TRAINJOB], ids=lambda o: o["kind"]
)
def test_the_unbroken_objects_pass(valid: dict[str, Any]) -> None:
    stats = cel_rules.CelStats()
    assert validate_object(valid, stats) == []
    assert stats.evaluated > 0


@pytest.mark.parametrize(("valid", "change", "message"), BROKEN)
def test_a_rule_of_the_pinned_crds_catches_the_mistake(
    valid: dict[str, Any], change: Callable[[dict[str, Any]], None], message: str
) -> None:
    broken = copy.deepcopy(valid)
    change(broken)
    problems = validate_object(broken)
    assert any(problem.endswith(f": {message}") for problem in problems), problems


def test_rules_of_absent_fields_do_not_run_and_transition_rules_are_counted() -> None:
    stats = cel_rules.CelStats()
    assert validate_object(NODEPOOL, stats) == []
    # Without template labels (optional, no default) the rules on the labels map must not run.
    without_labels = copy.deepcopy(NODEPOOL)
    del without_labels["spec"]["template"]["metadata"]
    fewer = cel_rules.CelStats()
    assert validate_object(without_labels, fewer) == []
    spec = crds.served_schemas()[("karpenter.sh/v1", "NodePool")]["properties"]["spec"]
    labels = spec["properties"]["template"]["properties"]["metadata"]["properties"]["labels"]
    assert stats.evaluated - fewer.evaluated == len(labels["x-kubernetes-validations"]) > 0
    # On create there is no old object: `self.group == oldSelf.group` and friends are not applicable.
    assert stats.transition.get("self.group == oldSelf.group") == 1


def test_a_rule_that_errors_or_does_not_compile_is_a_problem_not_a_pass() -> None:
    schema = {
        "type": "object",
        "properties": {
            "a": {"type": "object", "x-kubernetes-validations": [{"rule": "self.missing == 1", "message": "m"}]},
            "b": {"type": "string", "x-kubernetes-validations": [{"rule": "self.startsWith(", "message": "m"}]},
        },
    }
    problems, stats = cel_rules.check(schema, {"a": {}, "b": "x"})
    assert len(problems) == 2 and stats.failed == 2
    assert problems[0].startswith("a: rule 'self.missing == 1' did not evaluate to true or false")
    assert problems[1].startswith("b: rule 'self.startsWith(' does not compile")
