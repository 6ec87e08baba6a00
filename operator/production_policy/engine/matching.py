"""Which policies apply to a pod: workload kind x namespace (name and labels) x pod labels, with match
and exclude."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from production_policy.api import ProductionPolicy, WorkloadSelector
from production_policy.api.base import LabelSelector
from production_policy.engine.compiled import CompiledPolicy, precedence_order
from production_policy.engine.names import (
    IGNORE,
    NAMESPACE_NAME_LABEL,
    SYSTEM_NAMESPACES,
    TRUE_VALUES,
    is_ignored,
)


def system_namespace_selector(operator_namespace: str, excluded_namespaces: Iterable[str]) -> dict[str, Any]:
    """The namespaceSelector of every admission hook (webhooks and compiled policies): never the
    control plane's namespaces, the operator's, the excluded ones, or ones labelled ignore=true.

    The API server compares label values exactly, so every value :func:`is_ignored` takes for true
    is listed (a label value cannot hold the spaces it also strips).
    """
    never = sorted({*SYSTEM_NAMESPACES, operator_namespace, *excluded_namespaces})
    return {
        "matchExpressions": [
            {"key": NAMESPACE_NAME_LABEL, "operator": "NotIn", "values": never},
            {"key": IGNORE, "operator": "NotIn", "values": list(TRUE_VALUES)},
        ]
    }


def selector_matches(selector: LabelSelector, labels: Mapping[str, str]) -> bool:
    """Kubernetes label selector semantics: all matchLabels and all matchExpressions hold; {} matches all."""
    for key, value in selector.match_labels.items():
        if labels.get(key) != value:
            return False
    for requirement in selector.match_expressions:
        present = requirement.key in labels
        if requirement.operator == "In":
            holds = present and labels[requirement.key] in requirement.values
        elif requirement.operator == "NotIn":
            holds = not present or labels[requirement.key] not in requirement.values
        elif requirement.operator == "Exists":
            holds = present
        else:  # DoesNotExist
            holds = not present
        if not holds:
            return False
    return True


def _meets_all(
    selector: WorkloadSelector,
    namespace: str,
    namespace_labels: Mapping[str, str],
    pod_labels: Mapping[str, str],
    kinds: Collection[str],
) -> bool:
    """Whether every criterion the selector gives holds (criteria not given hold trivially)."""
    return _meets_all_but_namespace_labels(selector, namespace, pod_labels, kinds) and (
        selector.namespace_selector is None or selector_matches(selector.namespace_selector, namespace_labels)
    )


def _meets_all_but_namespace_labels(
    selector: WorkloadSelector, namespace: str, pod_labels: Mapping[str, str], kinds: Collection[str]
) -> bool:
    return (
        (not selector.kinds or any(kind in kinds for kind in selector.kinds))
        and (not selector.namespaces or namespace in selector.namespaces)
        and (selector.pod_selector is None or selector_matches(selector.pod_selector, pod_labels))
    )


def depends_on_namespace_labels(
    policy: ProductionPolicy, namespace: str, pod_labels: Mapping[str, str], kinds: Collection[str]
) -> bool:
    """Whether, everything else about a pod being known, only its namespace's labels can decide
    whether ``policy`` applies to it: what a caller that does not know them (``check``) cannot
    decide, and must say so rather than guess.

    True when the outcome differs between some two ways the ``match`` and ``exclude``
    namespaceSelectors could turn out.
    """
    spec = policy.spec

    def ways(selector: WorkloadSelector) -> tuple[bool, ...]:
        return (True, False) if selector.namespace_selector is not None else (True,)

    matched = _meets_all_but_namespace_labels(spec.match, namespace, pod_labels, kinds)
    excludable = not spec.exclude.is_empty() and _meets_all_but_namespace_labels(
        spec.exclude, namespace, pod_labels, kinds
    )
    outcomes = {
        matched and match_holds and not (excludable and exclude_holds)
        for match_holds in ways(spec.match)
        for exclude_holds in ways(spec.exclude)
    }
    return len(outcomes) > 1


def policy_matches(
    policy: ProductionPolicy,
    namespace: str,
    namespace_labels: Mapping[str, str],
    pod_labels: Mapping[str, str],
    kinds: Collection[str],
) -> bool:
    """Whether ``policy`` applies to a pod with ``pod_labels`` in ``namespace``, of a workload counted
    as ``kinds`` (:func:`production_policy.engine.kinds.counted_as`).

    ``match`` must hold entirely (empty: everything); ``exclude`` removes the pods meeting every
    criterion it gives (empty: nothing). A namespace labelled ``productionpolicy.dev/ignore=true``
    is never matched (:func:`production_policy.engine.names.is_ignored`).
    """
    if is_ignored(namespace_labels.get(IGNORE)):
        return False
    spec = policy.spec
    if not _meets_all(spec.match, namespace, namespace_labels, pod_labels, kinds):
        return False
    return spec.exclude.is_empty() or not _meets_all(
        spec.exclude, namespace, namespace_labels, pod_labels, kinds
    )


def matching_policies(
    policies: Sequence[CompiledPolicy],
    namespace: str,
    namespace_labels: Mapping[str, str],
    pod_labels: Mapping[str, str],
    kinds: Collection[str],
) -> list[CompiledPolicy]:
    """The policies that apply to a pod of a workload counted as ``kinds``, highest priority first
    (then by name)."""
    if is_ignored(namespace_labels.get(IGNORE)):
        return []
    return [
        policy
        for policy in precedence_order(policies)
        if policy_matches(policy.policy, namespace, namespace_labels, pod_labels, kinds)
    ]
