"""Judging one workload against every policy, as the admission webhooks would judge its pods.

A workload is judged after defaults: what the mutating webhook would inject into its pods counts
as present, exactly as the validating webhook decides. Ratcheting does not apply: the audit
reports every violation a workload has, also those an UPDATE would let through.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from production_policy.api.status import MESSAGE_MAX
from production_policy.engine.compiled import CompiledPolicy
from production_policy.engine.interning import shared
from production_policy.engine.matching import matching_policies
from production_policy.engine.pods import PodView
from production_policy.engine.rules import Violation
from production_policy.engine.validation import describe, template_violations

ELLIPSIS = "…"


@dataclass(frozen=True, slots=True)
class Finding:
    """How one workload breaks one policy: how many rules, and all of them in one bounded message."""

    count: int
    message: str


NO_FINDINGS: Mapping[str, Finding] = MappingProxyType({})
"""The findings of every compliant workload (one map for all of them)."""


@dataclass(frozen=True, slots=True)
class Judgement:
    """One workload against all policies: those that match it, and the findings of those it breaks.

    Kept for every audited workload: the sets of matching policies are shared, and so is the
    empty map of findings of every compliant workload.
    """

    matched: frozenset[str] = frozenset()
    findings: Mapping[str, Finding] = field(default_factory=lambda: NO_FINDINGS)
    """By policy name; only the policies the workload breaks."""


def judge(
    pod: PodView,
    namespace: str,
    namespace_labels: Mapping[str, str],
    policies: Sequence[CompiledPolicy],
) -> Judgement:
    """The judgement of a workload, given as the pod its template makes (see ``subjects.audit_subject``).

    Each violation counts against the policy that demands the fix (``Violation.policy``).
    """
    matched = matching_policies(policies, namespace, namespace_labels, pod.labels, pod.kinds)
    if not matched:
        return Judgement()
    by_policy: dict[str, list[Violation]] = {}
    for violation in template_violations(pod.spec, matched):
        by_policy.setdefault(violation.policy, []).append(violation)
    findings = {name: Finding(len(found), finding_message(found)) for name, found in by_policy.items()}
    return Judgement(shared(frozenset(policy.name for policy in matched)), findings or NO_FINDINGS)


def finding_message(violations: Sequence[Violation]) -> str:
    """Every violation in one line (``container "app": no readinessProbe — ...; pod: ...``), cut to fit."""
    return bounded("; ".join(describe(violation) for violation in violations), MESSAGE_MAX)


def bounded(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, marked with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - len(ELLIPSIS)] + ELLIPSIS


def affected_namespaces(before: CompiledPolicy | None, after: CompiledPolicy | None) -> frozenset[str] | None:
    """The namespaces whose workloads must be judged again after a policy changed from ``before`` to
    ``after`` (None: absent or unusable); None means every namespace.

    A policy's defaults can satisfy another policy's requirements, so every workload it matched or
    now matches is judged again — not only for this policy. When neither version restricts
    ``match.namespaces``, that can be any workload. An unchanged spec (a status write, a label)
    needs nothing.
    """
    if before is None and after is None:
        return frozenset()
    if before == after:  # compiled policies are equal when their name and spec are
        return frozenset()
    namespaces: set[str] = set()
    for version in (before, after):
        if version is None:
            continue
        match = version.policy.spec.match
        if not match.namespaces:
            return None
        namespaces.update(match.namespaces)
    return frozenset(namespaces)
