"""Every permission the Helm chart grants, spelled out once for the offline and the live tests.

A new permission must be added here on purpose; the unit test compares the rendered Roles with
this table, the e2e test compares what the API server says each ServiceAccount may do.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from production_policy.admission.configuration import CONFIGURATION_NAME
from production_policy.engine.apiserver import DEFAULTS_NAME, ENFORCE_NAME, WARN_NAME
from production_policy.engine.apiserver.canary import CANARY_NAME

# (apiGroup, resource, resourceNames or None, verb)
Permission = tuple[str, str, tuple[str, ...] | None, str]

_READ = ("get", "list", "watch")


def _grant(
    group: str, resources: Iterable[str], verbs: Iterable[str], names: tuple[str, ...] | None = None
) -> set[Permission]:
    return {(group, resource, names, verb) for resource in resources for verb in verbs}


# (kind of role, component) -> permissions
EXPECTED: dict[tuple[str, str], set[Permission]] = {
    ("ClusterRole", "webhook"): _grant("productionpolicy.dev", ["productionpolicies"], _READ)
    | _grant("", ["namespaces"], _READ),
    ("ClusterRole", "controller"): _grant("productionpolicy.dev", ["productionpolicies"], _READ)
    | _grant("productionpolicy.dev", ["productionpolicies/status"], ["patch", "update"])
    | _grant("", ["namespaces", "configmaps", "secrets"], _READ)
    | _grant("apps", ["deployments", "statefulsets", "daemonsets"], [*_READ, "patch"])
    | _grant("", ["pods"], _READ)
    | _grant("batch", ["jobs", "cronjobs"], _READ)
    | _grant("", ["events"], ["create", "patch"])
    | _grant("events.k8s.io", ["events"], ["create", "patch"])
    # The probe watch (controller.probeWatch.enabled, the default): the kubelet's Unhealthy/Killing Events.
    | _grant("", ["events"], ["list", "watch"]),
    # Only in the release namespace: the controller creates its digest key Secret there, and its
    # replicas elect a leader on one Lease.
    ("Role", "controller"): _grant("", ["secrets"], ["create"])
    | _grant("coordination.k8s.io", ["leases"], ["create"])
    | _grant("coordination.k8s.io", ["leases"], ["get", "update"], ("production-policy-controller",)),
    # Only while the pre-delete hook runs.
    ("ClusterRole", "cleanup"): _grant(
        "admissionregistration.k8s.io",
        ["mutatingwebhookconfigurations", "validatingwebhookconfigurations"],
        ["get", "delete"],
        (CONFIGURATION_NAME,),
    ),
}


# With admission.engine apiserver or both: the named admission objects the chart creates, never create.
COMPILED_POLICIES: set[Permission] = _grant(
    "admissionregistration.k8s.io",
    ["mutatingadmissionpolicies", "mutatingadmissionpolicybindings"],
    ["get", "patch", "update"],
    (CANARY_NAME, DEFAULTS_NAME),
) | _grant(
    "admissionregistration.k8s.io",
    ["validatingadmissionpolicies", "validatingadmissionpolicybindings"],
    ["get", "patch", "update"],
    (CANARY_NAME, ENFORCE_NAME, WARN_NAME),
)


def expected(engine: str) -> dict[tuple[str, str], set[Permission]]:
    """EXPECTED for a release whose ``admission.engine`` is ``engine``."""
    if engine == "webhook":
        return EXPECTED
    controller = ("ClusterRole", "controller")
    return {**EXPECTED, controller: EXPECTED[controller] | COMPILED_POLICIES}


def flatten(rules: Iterable[dict[str, Any]]) -> set[Permission]:
    """Rules (of a Role or of a SelfSubjectRulesReview) as one permission per verb."""
    result: set[Permission] = set()
    for rule in rules:
        names = tuple(rule["resourceNames"]) if rule.get("resourceNames") else None
        for group in rule.get("apiGroups") or []:
            result |= _grant(group, rule.get("resources") or [], rule.get("verbs") or [], names)
    return result


def wildcards(permissions: Iterable[Permission]) -> set[Permission]:
    return {p for p in permissions if "*" in (p[0], p[1], p[3]) or "*" in (p[2] or ())}
