"""A policy's status as it should be, whether it needs writing, and which Event its change deserves.

The status is recomputed from scratch (from the policy and the tally of its workloads) and
compared with the one stored; only a difference is written. ``lastTransitionTime`` is carried
over while the condition's status stays the same, so recomputing an unchanged status yields an
identical object — that is what lets the controller skip writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from production_policy.api import (
    MAX_STATUS_VIOLATIONS,
    Enforcement,
    ProductionPolicyStatus,
    StatusViolation,
)
from production_policy.api.status import Condition
from production_policy.engine.apiserver.report import CONDITION as COMPILED
from production_policy.engine.audit.book import Tally
from production_policy.engine.audit.events import NOTE_MAX_BYTES, bounded_bytes
from production_policy.engine.audit.judge import bounded

if TYPE_CHECKING:  # engine.probewatch reads the audit's names: importing it here would be a cycle
    from production_policy.engine.probewatch import ProbeTally

READY = "Ready"
ACTIVE = "Active"
"""Reason of Ready=True: the policy is valid and in force."""
INVALID = "InvalidSpec"
"""Reason of Ready=False: the policy cannot be used; the message says why."""
CONDITION_MESSAGE_MAX = 4096

BECAME_READY = "PolicyReady"
BECAME_INVALID = "PolicyInvalid"

_IN_FORCE = {
    "Enforce": "violating pods and workloads are refused",
    "Warn": "violating pods and workloads are admitted with warnings",
    "Audit": "violations are only reported here",
}


@dataclass(frozen=True)
class PolicyFacts:
    """What a policy's status is computed from, besides the tally of its workloads."""

    name: str
    generation: int | None
    enforcement: Enforcement | None
    """None when the policy is unusable."""
    problem: str | None = None
    """Why the engine cannot use the policy (its validation errors); None when it is usable."""
    compiled: tuple[str, str, str] | None = None
    """(status, reason, message) of the CompiledToAPIServer condition; None when the API server is
    not asked to enforce (``admission.engine: webhook``)."""


@dataclass(frozen=True)
class PolicyEvent:
    """An Event to post about a policy: its Ready condition changed."""

    reason: str
    note: str
    warning: bool


def desired_status(
    facts: PolicyFacts,
    tally: Tally,
    previous: Mapping[str, Any] | None,
    now: str,
    probes: ProbeTally | None = None,
) -> dict[str, Any]:
    """The status the policy should have (wire form), given the one it has (``previous``) and ``now``
    (RFC 3339), used only if the Ready condition changes; ``probes``: the injected probes of its
    defaults that fail workloads (None: the probe watch does not run, and the status says nothing).

    An unusable policy applies to nothing: its counts are 0 and Ready=False says why.
    """
    if facts.problem is not None or facts.enforcement is None:
        ready, reason = "False", INVALID
        message = bounded(
            f"The policy is not used: {facts.problem or 'it is invalid'}", CONDITION_MESSAGE_MAX
        )
        tally = Tally()
    else:
        ready, reason = "True", ACTIVE
        message = f"The policy is valid and in force ({facts.enforcement}: {_IN_FORCE[facts.enforcement]})."
    conditions = [_condition(READY, ready, reason, message, facts.generation, previous, now)]
    if facts.compiled is not None:
        status_, reason_, message_ = facts.compiled
        message_ = bounded(message_, CONDITION_MESSAGE_MAX)
        conditions.append(_condition(COMPILED, status_, reason_, message_, facts.generation, previous, now))
    failing: dict[str, Any] = {}
    if probes is not None:  # an unusable policy injects nothing: nothing of it fails
        usable = reason == ACTIVE
        failing["probe_failing_workloads"] = probes.failing_workloads if usable else 0
        failing["probe_failures"] = probes.status_entries() if usable else []
        if probes.withdrawn is not None:
            failing["withdrawn_probes"] = probes.withdrawn_entries() if usable else []
    status = ProductionPolicyStatus(
        observed_generation=facts.generation,
        conditions=conditions,
        matched_workloads=tally.matched,
        non_compliant_workloads=tally.non_compliant,
        violations=[
            StatusViolation(
                namespace=listed.ref.namespace,
                kind=listed.ref.kind,
                name=listed.ref.name,
                message=listed.message,
            )
            for listed in tally.top[:MAX_STATUS_VIOLATIONS]
        ],
        **failing,
    )
    return status.model_dump(by_alias=True, exclude_none=True, mode="json")


def _condition(
    kind: str,
    status: str,
    reason: str,
    message: str,
    generation: int | None,
    previous: Mapping[str, Any] | None,
    now: str,
) -> Condition:
    """A condition whose ``lastTransitionTime`` is carried over while its status stays the same."""
    before = stored_condition(previous, kind)
    transition = now
    if before is not None and before.get("status") == status:
        transition = str(before.get("lastTransitionTime") or now)
    return Condition(
        type=kind,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=transition,
        observed_generation=generation,
    )


def stored_condition(status: Mapping[str, Any] | None, kind: str) -> Mapping[str, Any] | None:
    """The condition of type ``kind`` of a stored status, if it has one."""
    conditions = status.get("conditions") if isinstance(status, Mapping) else None
    for condition in conditions if isinstance(conditions, list) else []:
        if isinstance(condition, Mapping) and condition.get("type") == kind:
            return condition
    return None


def ready_condition(status: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The Ready condition of a stored status, if it has one."""
    return stored_condition(status, READY)


def status_patch(previous: Mapping[str, Any] | None, desired: Mapping[str, Any]) -> dict[str, Any] | None:
    """The JSON merge patch turning the stored status into ``desired``; None when they are the same.

    Fields of the stored status that ``desired`` leaves out are removed (set to null).
    """
    current = dict(previous) if isinstance(previous, Mapping) else {}
    if current == dict(desired):
        return None
    removed = {key: None for key in current if key not in desired}
    return {"status": {**removed, **desired}}


def ready_event(previous: Mapping[str, Any] | None, desired: Mapping[str, Any]) -> PolicyEvent | None:
    """The Event for a change of the Ready condition: the policy became ready, or became invalid."""
    before, after = ready_condition(previous), ready_condition(desired)
    if after is None or (before is not None and before.get("status") == after.get("status")):
        return None
    note = bounded_bytes(str(after.get("message", "")), NOTE_MAX_BYTES)
    if after.get("status") == "True":
        return PolicyEvent(BECAME_READY, note, warning=False)
    return PolicyEvent(BECAME_INVALID, note, warning=True)


def compiled_event(previous: Mapping[str, Any] | None, desired: Mapping[str, Any]) -> PolicyEvent | None:
    """The Event for a change of the CompiledToAPIServer condition (its status or its reason)."""
    before, after = stored_condition(previous, COMPILED), stored_condition(desired, COMPILED)
    if after is None or after.get("status") == "Unknown":
        return None
    if before is not None and (before.get("status"), before.get("reason")) == (
        after.get("status"),
        after.get("reason"),
    ):
        return None
    note = bounded_bytes(str(after.get("message", "")), NOTE_MAX_BYTES)
    return PolicyEvent(str(after.get("reason", COMPILED)), note, warning=after.get("status") != "True")
