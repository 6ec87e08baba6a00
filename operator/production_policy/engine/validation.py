"""The validating webhook's answer for a Pod or a workload: every violation, after defaults, as one verdict.

Validation runs on the pod (template) as it will be created: with the defaults the mutating
webhook would inject, and with requests defaulted from limits as Kubernetes does. On UPDATE,
violations the old template already had are not counted (ratcheting), so a legacy workload can
still be scaled, relabelled and fixed one step at a time. The old template is judged by the same
policies as the new one: ratcheting concerns what the change did to the pod spec.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from production_policy.engine.compiled import CompiledPolicy, precedence_order
from production_policy.engine.defaulting import with_defaults
from production_policy.engine.matching import matching_policies
from production_policy.engine.merge import merge_defaults
from production_policy.engine.pods import controlled_by_workload, pod_from_template
from production_policy.engine.rules import SpecFacts, Violation, policy_violations


@dataclass(frozen=True)
class Verdict:
    """What a policy check of one object found.

    ``violations``: all of them. ``denied``: one comes from an Enforce policy. ``message``: every
    Enforce and Warn violation in one human sentence per policy (Audit ones stay out of sight).
    ``warnings``: one line per Warn violation. ``audit``: the Audit violations.
    """

    violations: list[Violation] = field(default_factory=list)
    denied: bool = False
    message: str = ""
    warnings: list[str] = field(default_factory=list)
    audit: list[Violation] = field(default_factory=list)


def template_violations(pod_spec: Mapping[str, Any], policies: Sequence[CompiledPolicy]) -> list[Violation]:
    """The violations of ``pod_spec`` (a ``PodView.spec``) once the defaults of ``policies`` are
    applied, policy by policy."""
    spec, gaps = with_defaults(pod_spec, merge_defaults(policies))
    facts = SpecFacts(spec, gaps.limits)  # parsed once, read by every policy
    return [
        violation
        for policy in precedence_order(policies)
        for violation in policy_violations(facts, policy.rules, gaps.probes)
    ]


def evaluate_workload(
    obj: Mapping[str, Any],
    namespace: str,
    namespace_labels: Mapping[str, str],
    policies: Sequence[CompiledPolicy],
    old_obj: Mapping[str, Any] | None = None,
) -> Verdict:
    """Judge a Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job or CronJob (others: empty verdict).

    With ``old_obj`` (an UPDATE), only violations the old pod template did not have count. An
    object a workload controller owns is not judged again (see :func:`controlled_by_workload`).
    """
    pod = pod_from_template(obj)
    if pod is None or controlled_by_workload(obj):
        return Verdict()
    matched = matching_policies(policies, namespace, namespace_labels, pod.labels, pod.kinds)
    if not matched:
        return Verdict()
    violations = template_violations(pod.spec, matched)
    old_pod = pod_from_template(old_obj) if old_obj is not None else None
    if old_pod is not None:
        known = {violation.key for violation in template_violations(old_pod.spec, matched)}
        violations = [violation for violation in violations if violation.key not in known]
    return verdict(violations)


def verdict(violations: Sequence[Violation]) -> Verdict:
    """The verdict for a list of violations: denial, consolidated message, warnings, audit."""
    shown = [v for v in violations if v.enforcement == "Enforce"] + [
        v for v in violations if v.enforcement == "Warn"
    ]
    by_policy: dict[tuple[str, str], list[str]] = {}
    for violation in shown:
        by_policy.setdefault((violation.policy, violation.enforcement), []).append(describe(violation))
    message = ". ".join(
        f'production policy "{policy}" ({enforcement}): {"; ".join(lines)}'
        for (policy, enforcement), lines in by_policy.items()
    )
    return Verdict(
        violations=list(violations),
        denied=any(v.enforcement == "Enforce" for v in violations),
        message=message,
        warnings=[
            f'production policy "{v.policy}" (Warn): {describe(v)}'
            for v in violations
            if v.enforcement == "Warn"
        ],
        audit=[v for v in violations if v.enforcement == "Audit"],
    )


def describe(violation: Violation) -> str:
    """``container "app": no readinessProbe — add a readinessProbe``, or ``pod: ...`` for pod-wide rules."""
    where = f'container "{violation.container}"' if violation.container else "pod"
    return f"{where}: {violation.message}"
