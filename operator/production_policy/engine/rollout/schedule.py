"""When a workload whose referenced data changed is rolled: debounce, interval, breaker, cap.

A pure state machine, one state per workload, advanced by :func:`step` whenever the controller
looks at the workload (an event, or the wake-up time the previous step asked for):

- **Debounce.** A change waits until the data has been still for ``debounceSeconds`` (so a burst
  of edits gives one rollout), but never longer than ``DEBOUNCE_MAX_FACTOR`` times that after the
  first change of the burst, so a source that never settles still rolls and can trip the breaker.
- **Minimum interval.** Never two rollouts of one workload closer than ``minIntervalSeconds``.
  The last rollout time is also stored on the workload, so a restart does not reset it.
- **Breaker.** A workload that was rolled ``maxRolloutsPerWindow`` times within ``windowSeconds``
  and is due again is not rolled: the breaker opens (reported once) and stays open until the data
  has been still for a whole window. Then the latest data is rolled once and the count restarts.
- **Blocked.** A paused Deployment, an ``OnDelete`` strategy, or a missing required source: the
  workload is reported once per pending change and left alone; it rolls when it can.
- **Cap.** A due rollout waits while the cap of concurrent rollouts of any of its policies is full.

Times are seconds since the epoch, the same clock as the annotations on the workload.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from production_policy.engine.rollout.baseline import Missing, SourceChange
from production_policy.engine.rollout.facts import WorkloadFacts
from production_policy.engine.rollout.settings import RolloutSettings

DEBOUNCE_MAX_FACTOR = 5
"""A burst of changes is rolled at the latest this many debounce periods after its first change."""

ROLLOUT_TIMEOUT_SECONDS = 600.0
"""A rollout still running after this long stops counting against the cap (Kubernetes' default
progress deadline): a stuck workload must not block every other one."""

NOTE_MAX = 1000
"""Events carry at most 1 kB of note."""

NOTHING_REPORTED: frozenset[str] = frozenset()
"""One empty set for every workload with nothing reported (each ``frozenset()`` is a new one)."""


class Action(enum.Enum):
    """What :func:`step` decided."""

    IDLE = "idle"
    """Nothing to roll."""
    WAIT = "wait"
    """A change is pending: debounce or minimum interval."""
    BREAKER = "breaker"
    """A change is pending but the breaker is open."""
    BLOCKED = "blocked"
    """A change is pending but the workload cannot be rolled (paused, OnDelete, missing source)."""
    QUEUED = "queued"
    """A change is due but a concurrency cap is full."""
    ROLL = "roll"
    """Roll now."""


@dataclass(frozen=True, slots=True)
class Pending:
    """A change of the referenced data that is not rolled out yet."""

    since: float
    """When the first change of this burst was seen."""
    changed: float
    """When the data was last seen to change."""


@dataclass(frozen=True, slots=True)
class WorkloadState:
    """What the controller remembers of one workload between looks at it (in memory only)."""

    data: str | None = None
    """Digest of the referenced data when last looked at."""
    changed: float | None = None
    """When the referenced data was last seen to change."""
    pending: Pending | None = None
    rollouts: tuple[float, ...] = ()
    """Our rollouts of this workload within the breaker window."""
    breaker_open: bool = False
    reported: frozenset[str] = NOTHING_REPORTED
    """Reports already made for the pending change, so each is made once."""


@dataclass(frozen=True)
class Report:
    """A Kubernetes Event to post on the workload. Names sources and keys, never values."""

    reason: str
    note: str
    warning: bool = False


@dataclass(frozen=True)
class Step:
    """The outcome of one look at a workload."""

    action: Action
    state: WorkloadState
    wake_at: float | None = None
    """Look again at this time, unless an event comes first."""
    reports: tuple[Report, ...] = ()
    why: str = ""
    """One line for the log; empty when nothing new happened (nothing to log)."""


@dataclass(frozen=True)
class Blocker:
    """Why a due rollout cannot be made now."""

    key: str
    note: str


def blocker(facts: WorkloadFacts, missing: Sequence[Missing]) -> Blocker | None:
    """Whether the workload cannot be rolled now, and why (for its Event)."""
    if facts.paused:
        return Blocker("paused", "the Deployment is paused; it is rolled when resumed")
    if facts.on_delete:
        return Blocker(
            "on-delete",
            f"the {facts.kind} uses updateStrategy OnDelete, so a rollout would replace "
            "no pod; delete its pods to start them with the new data",
        )
    if missing:
        return Blocker(
            "missing",
            f"required {', '.join(m.describe() for m in missing)} missing, so new pods "
            "could not start; it is rolled once the data exists",
        )
    return None


def describe_changes(changes: Iterable[SourceChange]) -> str:
    """Sources and key names for Events and logs: ``ConfigMap app key LOG_LEVEL; Secret db key password``."""
    return "; ".join(change.describe() for change in changes)


def step(
    now: float,
    state: WorkloadState,
    *,
    data: str,
    changes: Sequence[SourceChange],
    rolled_at: float | None,
    settings: RolloutSettings,
    blocked: Blocker | None,
    capacity: bool,
) -> Step:
    """Advance one workload's state.

    ``data`` is the digest of the referenced data now; ``changes`` what differs from the stored
    baseline (empty: nothing to roll); ``rolled_at`` the last rollout time stored on the workload;
    ``capacity`` whether every concurrency cap of its policies has room.
    """
    window = settings.window_seconds
    changed = state.changed if state.changed is not None and state.data == data else now
    rollouts = tuple(t for t in state.rollouts if now - t < window)
    reports: list[Report] = []
    why = ""
    breaker_open = state.breaker_open
    if breaker_open and now >= changed + window:
        breaker_open, rollouts = False, ()
        reports.append(
            Report(
                "ConfigRolloutBreakerClosed",
                f"the referenced data was still for {window:g}s; rollouts resume",
            )
        )
        why = "breaker closed"
    base = replace(state, data=data, changed=changed, rollouts=rollouts, breaker_open=breaker_open)

    if not changes:
        wake = changed + window if breaker_open else None
        idle = replace(base, pending=None, reported=NOTHING_REPORTED)
        return Step(Action.IDLE, idle, wake, tuple(reports), why)

    if state.pending is None:
        pending = Pending(since=now, changed=now)
    elif state.data != data:
        pending = Pending(since=state.pending.since, changed=now)
    else:
        pending = state.pending
    reported = state.reported if state.pending is not None and state.data == data else NOTHING_REPORTED
    base = replace(base, pending=pending, reported=reported)
    what = describe_changes(changes)

    debounce = settings.debounce_seconds
    due = min(pending.changed + debounce, pending.since + DEBOUNCE_MAX_FACTOR * debounce)
    last = max([t for t in (rolled_at, *rollouts[-1:]) if t is not None], default=None)
    if last is not None:
        due = max(due, last + settings.min_interval_seconds)
    if breaker_open:
        due = max(due, changed + window)
    if now < due:
        waiting = "breaker open" if breaker_open else "debounce/interval"
        note = f"pending ({waiting}) for {due - now:.1f}s: {what}" if state.pending is None else ""
        action = Action.BREAKER if breaker_open else Action.WAIT
        return Step(action, base, due, tuple(reports), why or note)

    if len(rollouts) >= settings.max_rollouts_per_window:
        opened = replace(base, breaker_open=True)
        note = (
            f"rolled {len(rollouts)} times within {window:g}s and its configuration changed again ({what}); "
            f"rollouts stop until the referenced data has been still for {window:g}s"
        )
        report = Report("ConfigRolloutBreakerOpen", _cut(note), warning=True)
        return Step(Action.BREAKER, opened, changed + window, (*reports, report), f"breaker opened: {what}")

    if blocked is not None:
        if f"blocked:{blocked.key}" in base.reported:
            return Step(Action.BLOCKED, base, None, tuple(reports), why)
        report = Report("ConfigRolloutBlocked", _cut(f"not rolled for {what}: {blocked.note}"), warning=True)
        marked = replace(base, reported=base.reported | {f"blocked:{blocked.key}"})
        return Step(Action.BLOCKED, marked, None, (*reports, report), f"blocked ({blocked.key}): {what}")

    if not capacity:
        if "queued" in base.reported:
            return Step(Action.QUEUED, base, None, tuple(reports), why)
        marked = replace(base, reported=base.reported | {"queued"})
        return Step(Action.QUEUED, marked, None, tuple(reports), f"queued behind the concurrency cap: {what}")

    rolled = replace(base, pending=None, rollouts=(*rollouts, now), reported=NOTHING_REPORTED)
    report = Report("ConfigRollout", _cut(f"rolling restart: {what} changed"))
    return Step(Action.ROLL, rolled, None, (*reports, report), f"rolled: {what}")


def _cut(note: str) -> str:
    return note if len(note) <= NOTE_MAX else note[: NOTE_MAX - 3] + "..."


@dataclass(frozen=True, slots=True)
class InFlight:
    """A rollout the controller started and the workload has not finished."""

    policies: frozenset[str]
    since: float
    generation: int
    """The generation the rollout's write produced; the workload must observe at least this one."""


def still_running(flight: InFlight, facts: WorkloadFacts | None, now: float) -> bool:
    """Whether a started rollout still counts against the concurrency caps."""
    if facts is None or now - flight.since >= ROLLOUT_TIMEOUT_SECONDS:
        return False
    if facts.paused or facts.on_delete:
        return False  # someone paused it, or changed its strategy: it is theirs now, not a running rollout
    return not (facts.observed_generation >= flight.generation and facts.settled)


def adopt_running(facts: WorkloadFacts, policies: frozenset[str], now: float) -> InFlight | None:
    """A rollout we started before a restart and that is still running, so it counts against the caps.

    Known from the stored rollout time: rolled by us lately and not settled yet.
    """
    if facts.rolled_at is None or facts.settled or now - facts.rolled_at >= ROLLOUT_TIMEOUT_SECONDS:
        return None
    return InFlight(policies, facts.rolled_at, facts.generation)


def has_capacity(caps: Mapping[str, int], running: Iterable[InFlight]) -> bool:
    """Whether one more rollout fits under the cap of every policy in ``caps``."""
    counts: dict[str, int] = dict.fromkeys(caps, 0)
    for flight in running:
        for policy in flight.policies & counts.keys():
            counts[policy] += 1
    return all(counts[policy] < cap for policy, cap in caps.items())
