"""The admission policy that confines the burn-in service account to its own node and its own keys.

RBAC can only grant the burn-in steps ``patch`` on every node (nodes are cluster-scoped, and a role's
resourceNames are fixed when it is applied). This ValidatingAdmissionPolicy narrows that at admission: an
update of a node by the burn-in service account is denied unless

1. the node is the one the caller's token is bound to: a pod-bound service account token carries the name
   of its pod's node, which the API server puts in ``request.userInfo.extra['authentication.kubernetes.io/
   node-name']``. A request without that claim (a token that is not pod-bound, such as one from a Secret or
   a TokenRequest without a pod) is denied: the policy fails closed;
2. it changes nothing but the burn-in taint, the burn-in label and the reason annotation.

Facts (looked up, not guessed):

- ValidatingAdmissionPolicy ``admissionregistration.k8s.io/v1`` is GA since Kubernetes 1.30.
- ServiceAccountTokenPodNodeInfo (the node name and UID in pod-bound tokens): alpha 1.29, beta and on by
  default 1.30, GA and locked on 1.32 (kubernetes/kubernetes, pkg/features/versioned_kube_features.go,
  release-1.32 and later). eks-ml supports Kubernetes 1.33 and later (eks_ml/cluster/versions.py), so every
  projected token of the burn-in pods carries it.
- A JSON merge patch reaches admission as an UPDATE with the patched object and the stored old object.
- Node update through the main resource ignores status, so only metadata and spec are compared.
"""

from __future__ import annotations

from collections.abc import Mapping

from cdk8s_plus_35 import k8s
from constructs import Construct

# The claim the service account authenticator copies from a pod-bound token into the request's user extra.
NODE_NAME_EXTRA = "authentication.kubernetes.io/node-name"

# NodeSpec's fields besides taints (Kubernetes 1.35 API, io.k8s.api.core.v1.NodeSpec); a typed object cannot
# be iterated in CEL, so each is compared by name. tests/test_burn_in_policy.py fails when the schema of the
# pinned Kubernetes version has a field this list does not name.
NODE_SPEC_FIELDS_KEPT = ("configSource", "externalID", "podCIDR", "podCIDRs", "providerID", "unschedulable")
# Metadata lists the burn-in never touches; changing them could keep a node from being deleted or tie it to
# another owner.
NODE_METADATA_FIELDS_KEPT = ("finalizers", "ownerReferences")


def service_account_username(namespace: str, service_account: str) -> str:
    return f"system:serviceaccount:{namespace}:{service_account}"


def _cel_string(value: str) -> str:
    # Keys are Kubernetes label/annotation keys (no quotes or backslashes); json.dumps would also do, but a
    # single-quoted literal keeps the YAML readable.
    if "'" in value or "\\" in value:
        raise ValueError(f"cannot quote {value!r} as a CEL string literal")
    return f"'{value}'"


def _unchanged(path: str) -> str:
    """``object.<path>`` equals ``oldObject.<path>``, set or not set alike."""
    parent, _, name = path.rpartition(".")
    new, old = f"object.{parent}", f"oldObject.{parent}"
    return f"has({new}.{name}) == has({old}.{name}) && (!has({new}.{name}) || {new}.{name} == {old}.{name})"


def _map_unchanged_except(variable: str, key: str) -> str:
    """Every key of the new and old map but ``key`` is present in both with the same value."""
    new, old = f"variables.{variable}", f"variables.old_{variable}"
    return f"{new}.all(k, k == {key} || (k in {old} && {old}[k] == {new}[k])) && {old}.all(k, k == {key} || k in {new})"


def validations(taint_key: str, label_key: str, reason_annotation: str) -> list[tuple[str, str]]:
    """(expression, message) of each rule, in the order the API server evaluates them."""
    spec = " && ".join(_unchanged(f"spec.{name}") for name in NODE_SPEC_FIELDS_KEPT)
    metadata = " && ".join(_unchanged(f"metadata.{name}") for name in NODE_METADATA_FIELDS_KEPT)
    taint = _cel_string(taint_key)
    return [
        (
            f"has(request.userInfo.extra) && {_cel_string(NODE_NAME_EXTRA)} in request.userInfo.extra && "
            f"request.userInfo.extra[{_cel_string(NODE_NAME_EXTRA)}].size() == 1 && "
            f"request.userInfo.extra[{_cel_string(NODE_NAME_EXTRA)}][0] == object.metadata.name",
            "the burn-in service account may update only the node its pod runs on "
            "(its token must be pod-bound and carry the node name)",
        ),
        (spec, "the burn-in service account may change no node spec field but taints"),
        (
            f"variables.taints.filter(t, t.key != {taint}) == variables.old_taints.filter(t, t.key != {taint})",
            f"the burn-in service account may change only the {taint_key} taint",
        ),
        (
            _map_unchanged_except("labels", _cel_string(label_key)),
            f"the burn-in service account may change only the {label_key} label",
        ),
        (
            _map_unchanged_except("annotations", _cel_string(reason_annotation)),
            f"the burn-in service account may change only the {reason_annotation} annotation",
        ),
        (metadata, "the burn-in service account may not change a node's finalizers or owner references"),
    ]


def variables() -> dict[str, str]:
    """Name -> expression; absent lists and maps read as empty so the rules need no has() of their own."""
    result: dict[str, str] = {}
    for name, path, empty in (
        ("taints", "spec.taints", "[]"),
        ("labels", "metadata.labels", "{}"),
        ("annotations", "metadata.annotations", "{}"),
    ):
        for prefix, obj in (("", "object"), ("old_", "oldObject")):
            result[f"{prefix}{name}"] = f"has({obj}.{path}) ? {obj}.{path} : {empty}"
    return result


def own_node_policy(
    scope: Construct,
    *,
    name: str,
    namespace: str,
    service_account: str,
    taint_key: str,
    label_key: str,
    reason_annotation: str,
    labels: Mapping[str, str],
) -> tuple[k8s.KubeValidatingAdmissionPolicy, k8s.KubeValidatingAdmissionPolicyBinding]:
    """The policy and its binding (Deny), matched to node updates by exactly ``namespace``/``service_account``."""
    policy = k8s.KubeValidatingAdmissionPolicy(
        scope,
        "OwnNodePolicy",
        metadata=k8s.ObjectMeta(name=name, labels=dict(labels)),
        spec=k8s.ValidatingAdmissionPolicySpec(
            # An expression that cannot be evaluated denies the request rather than letting it through.
            failure_policy="Fail",
            match_constraints=k8s.MatchResources(
                resource_rules=[
                    k8s.NamedRuleWithOperations(
                        api_groups=[""], api_versions=["v1"], operations=["UPDATE"], resources=["nodes"]
                    )
                ]
            ),
            match_conditions=[
                k8s.MatchCondition(
                    name="burn-in-service-account",
                    expression=f"request.userInfo.username == "
                    f"{_cel_string(service_account_username(namespace, service_account))}",
                )
            ],
            variables=[k8s.Variable(name=key, expression=value) for key, value in variables().items()],
            validations=[
                k8s.Validation(expression=expression, message=message, reason="Forbidden")
                for expression, message in validations(taint_key, label_key, reason_annotation)
            ],
        ),
    )
    binding = k8s.KubeValidatingAdmissionPolicyBinding(
        scope,
        "OwnNodePolicyBinding",
        metadata=k8s.ObjectMeta(name=name, labels=dict(labels)),
        spec=k8s.ValidatingAdmissionPolicyBindingSpec(policy_name=name, validation_actions=["Deny"]),
    )
    binding.add_dependency(policy)
    return policy, binding
