"""ProductionPolicies compiled into admission policies the API server runs itself (no webhook hop).

All policies, in precedence order, become one MutatingAdmissionPolicy (the defaults) and one
ValidatingAdmissionPolicy per enforcement mode (Enforce bound with ``[Deny]``, Warn with
``[Warn]``), each with one binding; names are fixed, so RBAC can name them and the chart can
create them. Audit policies give defaults (the MAP injects them, as the webhook does) but no
validation: Audit results live in the policy status, which the controller's audit writes.
There are no params: each policy is compiled to literal CEL, and the priority merge of defaults
to ordered per-field conditions (see ``cel``). The output is plain, deterministic data: the same
policies and settings give the same objects, byte for byte once serialised.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from production_policy import GROUP
from production_policy.api import ProductionPolicy
from production_policy.engine.apiserver.cel import collect_defaults
from production_policy.engine.apiserver.mutating import mutating_policy
from production_policy.engine.apiserver.validating import has_rules, validating_policies
from production_policy.engine.compiled import CompiledPolicy, precedence_order
from production_policy.engine.matching import system_namespace_selector

ENGINES = ("webhook", "apiserver", "both")
"""``admission.engine``: who enforces at admission: our webhooks, the admission policies compiled into
the API server, or both (the pod and workload validating webhooks then fail open)."""
DEFAULTS_NAME = f"{GROUP}-defaults"
ENFORCE_NAME = f"{GROUP}-enforce"
WARN_NAME = f"{GROUP}-warn"
POLICY_NAMES = (DEFAULTS_NAME, ENFORCE_NAME, WARN_NAME)
"""The admission policies, and their bindings, which carry the same names."""


@dataclass(frozen=True)
class InstallSettings:
    """What an install decides that the compiled policies depend on."""

    operator_namespace: str
    excluded_namespaces: tuple[str, ...] = ()
    validating_failure_policy: str = "Fail"
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Compilation:
    """The admission objects, in the order to apply them (each policy before its binding), and per
    policy what the API server does not do for it (the webhook and the controller still do)."""

    objects: list[dict[str, Any]]
    not_compiled: dict[str, list[str]]


AUDIT_NOTE = "rules: enforcement Audit is not an admission decision; the controller's audit reports them"
QOS_NOTE = (
    "minQoSClass on workload templates with pod-level resource limits but no pod-level cpu or memory "
    "request (the QoS class then needs the containers' aggregated requests): judged by the webhook only"
)


def not_compiled(policy: ProductionPolicy) -> list[str]:
    """What of ``policy`` the compiled admission policies leave out, one sentence each; empty when
    the API server enforces all of it."""
    notes = []
    if policy.spec.enforcement == "Audit" and has_rules(policy):
        notes.append(AUDIT_NOTE)
    elif policy.spec.resources.min_qos_class in ("Burstable", "Guaranteed"):
        notes.append(QOS_NOTE)
    return notes


def compile_policies(policies: Sequence[CompiledPolicy], settings: InstallSettings) -> Compilation:
    """The MutatingAdmissionPolicy, the two ValidatingAdmissionPolicies and their bindings for
    ``policies`` (any order: they are sorted by precedence here), as plain dicts."""
    precedence = precedence_order(policies)
    ordered = tuple(compiled.policy for compiled in precedence)
    defaults = collect_defaults(ordered)
    labels = dict(settings.labels)
    selector = system_namespace_selector(settings.operator_namespace, settings.excluded_namespaces)
    withdrawals = tuple(compiled.withdrawn for compiled in precedence)
    mutating = mutating_policy(DEFAULTS_NAME, ordered, defaults, labels, withdrawals)
    enforce, warn = validating_policies(
        (ENFORCE_NAME, WARN_NAME), ordered, defaults, settings.validating_failure_policy, labels
    )
    objects = [
        mutating,
        _binding("MutatingAdmissionPolicyBinding", DEFAULTS_NAME, selector, labels, {}),
        enforce,
        _binding(
            "ValidatingAdmissionPolicyBinding",
            ENFORCE_NAME,
            selector,
            labels,
            {"validationActions": ["Deny"]},
        ),
        warn,
        _binding(
            "ValidatingAdmissionPolicyBinding", WARN_NAME, selector, labels, {"validationActions": ["Warn"]}
        ),
    ]
    return Compilation(objects, {policy.name: not_compiled(policy) for policy in ordered})


def _binding(
    kind: str, name: str, selector: dict[str, Any], labels: dict[str, str], extra: dict[str, Any]
) -> dict[str, Any]:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": kind,
        "metadata": {"name": name, "labels": dict(labels)},
        "spec": {"policyName": name, "matchResources": {"namespaceSelector": selector}, **extra},
    }


__all__ = [
    "DEFAULTS_NAME",
    "ENFORCE_NAME",
    "ENGINES",
    "POLICY_NAMES",
    "WARN_NAME",
    "Compilation",
    "InstallSettings",
    "compile_policies",
    "not_compiled",
]
