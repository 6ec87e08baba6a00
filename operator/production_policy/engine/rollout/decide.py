"""One look at one workload: is it managed, what changed, and what to do about it now."""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from production_policy.engine.compiled import CompiledPolicy
from production_policy.engine.matching import matching_policies
from production_policy.engine.rollout.baseline import (
    Comparison,
    SourceData,
    SourceId,
    compare,
    config_digest,
    decode,
    observe,
)
from production_policy.engine.rollout.facts import WorkloadFacts
from production_policy.engine.rollout.schedule import (
    Action,
    InFlight,
    Step,
    WorkloadState,
    adopt_running,
    blocker,
    has_capacity,
    step,
)
from production_policy.engine.rollout.settings import RolloutSettings, merge_settings, namespace_ignored
from production_policy.engine.rollout.writes import baseline_patch, rollout_patch


class Write(enum.Enum):
    """The kind of write a decision asks for."""

    NONE = "none"
    BASELINE = "baseline"
    ROLLOUT = "rollout"


@dataclass(frozen=True)
class Decision:
    """What to do with a workload now, and the state to keep if the write (if any) succeeds."""

    write: Write
    patch: dict[str, Any] | None
    step: Step | None
    """None for an unmanaged workload, a first sight or a change of references only."""
    settings: RolloutSettings | None
    why: str
    """One line for the log; empty when nothing new happened."""
    unmanaged: str | None = None
    """Why the controller leaves the workload alone; None when it manages it."""
    adopted: InFlight | None = None
    """A rollout of ours found still running (after a restart): it counts against the caps from now on."""

    @property
    def state(self) -> WorkloadState | None:
        """The state to keep; None: forget the workload."""
        return self.step.state if self.step is not None else None


def unmanaged_reason(
    facts: WorkloadFacts,
    policies: Sequence[CompiledPolicy],
    namespace_labels: Mapping[str, str],
    ignored_namespaces: Collection[str],
) -> tuple[str | None, RolloutSettings | None]:
    """Why the controller leaves the workload alone (None: it manages it), and its merged settings."""
    if namespace_ignored(facts.namespace, namespace_labels, ignored_namespaces):
        return "namespace ignored", None
    if facts.opted_out:
        return "opted out by annotation", None
    matched = matching_policies(
        policies, facts.namespace, namespace_labels, facts.template_labels, (facts.kind,)
    )
    settings = merge_settings(policy.policy for policy in matched)
    if settings is None:
        return "no policy enables configRollout", None
    return None, settings


def decide(
    now: float,
    facts: WorkloadFacts,
    *,
    policies: Sequence[CompiledPolicy],
    namespace_labels: Mapping[str, str],
    ignored_namespaces: Collection[str],
    sources: Mapping[SourceId, SourceData],
    state: WorkloadState | None,
    running: Iterable[InFlight],
    key_id: str,
    own: InFlight | None = None,
) -> Decision:
    """Everything the controller decides about one workload, given what it holds of the cluster.

    ``sources`` holds the digests of the ConfigMaps and Secrets of the workload's namespace (only
    those it references are looked up); ``running`` the other workloads' rollouts still in
    progress, ``own`` this workload's (None: the controller knows of none, so a rollout of ours
    still running since before a restart is reported in ``Decision.adopted``).
    """
    reason, settings = unmanaged_reason(facts, policies, namespace_labels, ignored_namespaces)
    if settings is None:
        return Decision(Write.NONE, None, None, None, "", unmanaged=reason)
    adopted = adopt_running(facts, settings.policies, now) if own is None else None
    observation = observe(facts.references, sources)
    stored = decode(facts.baseline)
    comparison = compare(stored, observation, key_id)
    if comparison.first_sight:
        why = "baseline recorded, no rollout: " + (
            "first sight"
            if facts.baseline is None
            else "the stored one is unreadable or of another format"
            if stored is None
            else "the stored one was made with another digest key"
        )
        patch = baseline_patch(facts, comparison.next_baseline)
        return Decision(Write.BASELINE, patch, None, settings, why, adopted=adopted)
    result = step(
        now,
        state or WorkloadState(),
        data=config_digest(comparison.next_baseline),
        changes=comparison.changes,
        rolled_at=facts.rolled_at,
        settings=settings,
        blocked=blocker(facts, observation.missing),
        capacity=has_capacity(settings.max_concurrent, running),
    )
    if result.action is Action.ROLL:
        patch = rollout_patch(facts, comparison.next_baseline, now)
        return Decision(Write.ROLLOUT, patch, result, settings, result.why, adopted=adopted)
    if result.action is Action.IDLE and comparison.rewrite:
        return Decision(
            Write.BASELINE,
            baseline_patch(facts, comparison.next_baseline),
            result,
            settings,
            _references_note(comparison),
            adopted=adopted,
        )
    return Decision(Write.NONE, None, result, settings, result.why, adopted=adopted)


def _references_note(comparison: Comparison) -> str:
    sources = ", ".join(f"{kind} {name}" for kind, name in sorted(comparison.next_baseline.sources))
    return f"baseline updated for changed references, no rollout (tracking: {sources or 'nothing'})"
