"""What a policy's status says about the API server enforcing it: the ``CompiledToAPIServer`` condition."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from production_policy.engine.apiserver.canary import CanaryResult

CONDITION = "CompiledToAPIServer"
ENFORCED = "Enforced"
PARTLY_ENFORCED = "PartlyEnforced"
PENDING = "Pending"
REJECTED = "Rejected"
TIMED_OUT = "TimedOut"
MUTATING_NOT_RUN = "MutatingPolicyNotRun"
VALIDATING_NOT_RUN = "ValidatingPolicyNotRun"
REASONS = (PENDING, ENFORCED, PARTLY_ENFORCED, REJECTED, TIMED_OUT, MUTATING_NOT_RUN, VALIDATING_NOT_RUN)
WEBHOOK_ENFORCES = "the webhook enforces this policy"


@dataclass(frozen=True)
class EngineState:
    """What the controller found when it last applied the compiled admission policies."""

    error: str | None = None
    """Why the API server refused them (or could not be asked); None when they were applied."""
    canary: CanaryResult | None = None
    """What the canary showed after applying; None until it was run."""
    type_warnings: tuple[str, ...] = ()
    """The API server's type-check warnings on the compiled ValidatingAdmissionPolicies."""
    timed_out: bool = False
    """Whether ``error`` is a write the API server did not answer in time (not a refusal)."""


def compiled_condition(state: EngineState | None, not_compiled: Sequence[str]) -> tuple[str, str, str]:
    """(status, reason, message) of the ``CompiledToAPIServer`` condition of one policy, given the
    engine's state and what of the policy is not compiled (``compile_policies(...).not_compiled``)."""
    if state is None or (state.error is None and state.canary is None):
        return "Unknown", PENDING, "The compiled admission policies are not applied and verified yet."
    if state.error is not None and state.timed_out:
        return (
            "False",
            TIMED_OUT,
            "The API server did not answer a write of the compiled admission policies in time "
            f"({state.error}): {WEBHOOK_ENFORCES}. It compiles their CEL before it answers, which "
            "is slow on a busy API server; the controller tries again in 10 s. If this lasts, the "
            "API server is short of CPU: give it more, or make the policies fewer or smaller "
            "(docs/apiserver-policies.md).",
        )
    if state.error is not None:
        return (
            "False",
            REJECTED,
            f"The API server refused the compiled admission policies ({state.error}): {WEBHOOK_ENFORCES}.",
        )
    assert state.canary is not None
    if not state.canary.mutating:
        return (
            "False",
            MUTATING_NOT_RUN,
            "The API server accepts MutatingAdmissionPolicies but does not run them (the "
            f"MutatingAdmissionPolicy admission plugin or feature gate is off): {WEBHOOK_ENFORCES}.",
        )
    if not state.canary.validating:
        return (
            "False",
            VALIDATING_NOT_RUN,
            f"The API server accepts ValidatingAdmissionPolicies but does not run them: {WEBHOOK_ENFORCES}.",
        )
    message = (
        "The API server enforces this policy itself (MutatingAdmissionPolicy productionpolicy.dev-defaults, "
        "ValidatingAdmissionPolicies productionpolicy.dev-enforce and productionpolicy.dev-warn)."
    )
    if not_compiled:
        message += " Not compiled: " + "; ".join(not_compiled) + "."
    if state.type_warnings:
        message += " Type-check warnings: " + "; ".join(state.type_warnings)
    return "True", PARTLY_ENFORCED if not_compiled else ENFORCED, message
