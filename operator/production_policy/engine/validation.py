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

MAX_MESSAGE = 1700
"""Code points of a denial message kept: the compiled VAP's ``messageExpression`` result must stay
under 5 KiB (at most 3 bytes a code point), and the webhook says the same."""
MAX_WARNING_LENGTH = 250
"""Code points of one warning kept: past 4 Ki code points of warnings in all, the API server cuts
each to 256 and then drops the rest."""
MAX_WARNINGS = 16
"""Warnings per request, the last one saying how many more there are: a compiled VAP has one
validation per warning, a fixed number, and more would pass the API server's 4 Ki anyway."""
MORE_WARNINGS = "… and {} more Warn violations"
"""The last warning when more than :data:`MAX_WARNINGS` Warn violations are found."""


@dataclass(frozen=True)
class Verdict:
    """What a policy check of one object found.

    ``violations``: all of them. ``denied``: one comes from an Enforce policy. ``message``: every
    Enforce violation in one human sentence per policy, the denial's text (at most
    :data:`MAX_MESSAGE` code points). ``warnings``: one line per Warn violation, denied or not (see
    :data:`MAX_WARNINGS`). ``audit``: the Audit violations, which admission never shows.
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
    """The verdict for a list of violations: denial, consolidated message, warnings, audit.

    Each mode has its own channel, as the compiled ValidatingAdmissionPolicies have one policy per
    mode: the message names the Enforce violations only, and the Warn ones are warnings, also on
    a denial (the API server passes a webhook's warnings on with its refusal).
    """
    by_policy: dict[str, list[str]] = {}
    for violation in violations:
        if violation.enforcement == "Enforce":
            by_policy.setdefault(violation.policy, []).append(describe(violation))
    message = ". ".join(
        f'production policy "{policy}" (Enforce): {"; ".join(lines)}' for policy, lines in by_policy.items()
    )
    warned = [
        f'production policy "{v.policy}" (Warn): {describe(v)}' for v in violations if v.enforcement == "Warn"
    ]
    return Verdict(
        violations=list(violations),
        denied=bool(by_policy),
        message=_cut(message, MAX_MESSAGE),
        warnings=_bounded_warnings(warned),
        audit=[v for v in violations if v.enforcement == "Audit"],
    )


def _bounded_warnings(warnings: list[str]) -> list[str]:
    """At most :data:`MAX_WARNINGS` warnings, each cut to :data:`MAX_WARNING_LENGTH`; when there are
    more, the last says how many are not listed (always two or more)."""
    if len(warnings) > MAX_WARNINGS:
        listed = MAX_WARNINGS - 1
        warnings = [*warnings[:listed], MORE_WARNINGS.format(len(warnings) - listed)]
    return [_cut(w, MAX_WARNING_LENGTH) for w in warnings]


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe(violation: Violation) -> str:
    """``container "app": no readinessProbe — add a readinessProbe``, or ``pod: ...`` for pod-wide rules."""
    where = f'container "{violation.container}"' if violation.container else "pod"
    return f"{where}: {violation.message}"
