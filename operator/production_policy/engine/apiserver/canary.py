"""The canary: proof by behaviour that the API server runs admission policies, not just serves their API.

With the ``MutatingAdmissionPolicy`` admission plugin (or its feature gate) off, the API server still
accepts MutatingAdmissionPolicy objects and then does nothing with them: discovery cannot tell.
So a tiny MAP and VAP, bound to Events labelled ``productionpolicy.dev/canary`` in the operator's
namespace only, annotate and warn; a dry-run create of such an Event shows whether each ran. An
Event because the controller may already create those: the canary needs no permission of its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from production_policy import GROUP
from production_policy.engine.names import (
    CANARY_ANNOTATION,
    CANARY_LABEL,
    NAMESPACE_NAME_LABEL,
    REPORTING_CONTROLLER,
)

CANARY_NAME = f"{GROUP}-canary"
CANARY_WARNING = "production-policy canary: validating admission policies run"
_RULES = [
    {
        "apiGroups": ["events.k8s.io"],
        "apiVersions": ["v1"],
        "operations": ["CREATE"],
        "resources": ["events"],
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


def canary_probe(operator_namespace: str, now: str) -> dict[str, Any]:
    """The Event to dry-run create in the operator's namespace (``now``: RFC 3339 with microseconds)."""
    return {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": CANARY_NAME, "labels": {CANARY_LABEL: "probe"}},
        # The API server wants an Event about something in its own namespace.
        "regarding": {
            "apiVersion": "v1",
            "kind": "Namespace",
            "name": operator_namespace,
            "namespace": operator_namespace,
        },
        "eventTime": now,
        "reportingController": REPORTING_CONTROLLER,
        "reportingInstance": CANARY_NAME,
        "action": "Verify",
        "reason": "Canary",
        "type": "Normal",
        "note": "dry run only: never stored",
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
