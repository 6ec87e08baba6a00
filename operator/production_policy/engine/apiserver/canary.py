"""The canary: proof by behaviour that the API server runs admission policies, not just serves their API.

With the ``MutatingAdmissionPolicy`` admission plugin (or its feature gate) off, the API server still
accepts MutatingAdmissionPolicy objects and then does nothing with them: discovery cannot tell.
So a tiny MAP and VAP, bound to ConfigMaps labelled ``productionpolicy.dev/canary`` in the
operator's namespace only, annotate and warn; a dry-run create of such a ConfigMap shows whether
each ran.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from production_policy import GROUP
from production_policy.engine.names import CANARY_ANNOTATION, CANARY_LABEL, NAMESPACE_NAME_LABEL

CANARY_NAME = f"{GROUP}-canary"
CANARY_WARNING = "production-policy canary: validating admission policies run"
_RULES = [
    {
        "apiGroups": [""],
        "apiVersions": ["v1"],
        "operations": ["CREATE"],
        "resources": ["configmaps"],
        "scope": "Namespaced",
    }
]


def _match(operator_namespace: str) -> dict[str, Any]:
    return {
        "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: operator_namespace}},
        "objectSelector": {"matchExpressions": [{"key": CANARY_LABEL, "operator": "Exists"}]},
    }


def canary_objects(operator_namespace: str, labels: Mapping[str, str]) -> list[dict[str, Any]]:
    """The canary MAP, VAP and their bindings (fixed names, like the compiled policies)."""
    metadata = {"name": CANARY_NAME, "labels": dict(labels)}
    key = CANARY_ANNOTATION.replace("/", "~1")
    return [
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingAdmissionPolicy",
            "metadata": metadata,
            "spec": {
                "failurePolicy": "Ignore",
                "reinvocationPolicy": "Never",
                "matchConstraints": {"resourceRules": _RULES},
                "mutations": [
                    {
                        "patchType": "JSONPatch",
                        "jsonPatch": {
                            "expression": "has(object.metadata.annotations) ? "
                            f'[JSONPatch{{op: "add", path: "/metadata/annotations/{key}", value: "mutated"}}]'
                            ' : [JSONPatch{op: "add", path: "/metadata/annotations", '
                            f'value: {{"{CANARY_ANNOTATION}": "mutated"}}}}]'
                        },
                    }
                ],
            },
        },
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingAdmissionPolicyBinding",
            "metadata": metadata,
            "spec": {"policyName": CANARY_NAME, "matchResources": _match(operator_namespace)},
        },
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": metadata,
            "spec": {
                "failurePolicy": "Ignore",
                "matchConstraints": {"resourceRules": _RULES},
                "validations": [{"expression": "false", "message": CANARY_WARNING}],
            },
        },
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": metadata,
            "spec": {
                "policyName": CANARY_NAME,
                "validationActions": ["Warn"],
                "matchResources": _match(operator_namespace),
            },
        },
    ]


def canary_probe() -> dict[str, Any]:
    """The ConfigMap to dry-run create in the operator's namespace."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": CANARY_NAME, "labels": {CANARY_LABEL: "probe"}},
    }


@dataclass(frozen=True)
class CanaryResult:
    """Which kinds of admission policy the API server ran on the canary."""

    mutating: bool
    validating: bool


def read_canary(created: Mapping[str, Any], warnings: Sequence[str]) -> CanaryResult:
    """What the dry-run create of :func:`canary_probe` shows: the annotation, the warning."""
    metadata = created.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, Mapping) else None
    mutated = isinstance(annotations, Mapping) and annotations.get(CANARY_ANNOTATION) == "mutated"
    return CanaryResult(mutated, any(CANARY_WARNING in warning for warning in warnings))
