"""The fleet: what the controller keeps of every workload between looks, rollouts in flight included.

:func:`~production_policy.engine.rollout.decide.decide` decides for one workload; the
concurrency caps are about all of them. The :class:`Fleet` ledger holds the cluster-wide part:

- **Rollouts in flight.** A rollout holds its place under the caps from the moment it is decided
  (*reserved*), so the very next decision counts it; after its write the place is *confirmed*
  with the generation the write produced, or *given back* when nothing was written. A rollout of
  ours still running since before a restart (``Decision.adopted``) counts too. A rollout stops
  counting once the workload has finished it, is no longer ours to wait for, is gone, or timed
  out (:func:`~production_policy.engine.rollout.schedule.still_running`); then every queued
  workload is worth another look.
- **Queue order.** The longest-waiting change is looked at first, so under a full cap it goes first.
- **Stale facts.** After our own write the watch may still hand us the version we wrote over;
  deciding on it would make the same write again (and fail on its ``resourceVersion``). Those
  facts are skipped until the version our write made arrives.
- **Wake-up times.** When each workload must be looked at again, unless an event comes first:
  the schedule's timers, retries after a failure, and the timeout of each rollout in flight.

Plain data changed in place by the one task that decides (as
:class:`~production_policy.engine.audit.ComplianceBook` is): no I/O, and time is an argument.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from production_policy.engine.compiled import CompiledPolicy
from production_policy.engine.rollout.baseline import SourceData, SourceId
from production_policy.engine.rollout.decide import Decision, Write, decide
from production_policy.engine.rollout.facts import WorkloadFacts
from production_policy.engine.rollout.schedule import (
    ROLLOUT_TIMEOUT_SECONDS,
    Action,
    InFlight,
    WorkloadState,
    still_running,
)

Key = tuple[str, str, str]
"""(kind, namespace, name), as :attr:`WorkloadFacts.key`."""


@dataclass(frozen=True)
class Look:
    """The outcome of one look at one workload."""

    decision: Decision | None
    """What to do; None when the workload is gone or the facts are stale (nothing to do)."""
    released: bool = False
    """The workload's rollout stopped counting against the caps at this look."""
    look_again: frozenset[Key] = frozenset()
    """The workloads queued behind the caps when a place came free: look at them again."""


class Fleet:
    """Per-workload schedule states, rollouts in flight, our last writes and wake-up times."""

    def __init__(self) -> None:
        self._states: dict[Key, WorkloadState] = {}
        self._running: dict[Key, InFlight] = {}
        self._reserved: dict[Key, InFlight | None] = {}
        """Per rollout being written: what ``_running`` held before its place was reserved."""
        self._written: dict[Key, str] = {}
        """The resourceVersion each of our last writes replaced."""
        self._wake: dict[Key, float] = {}
        self._queued: set[Key] = set()

    @property
    def in_flight(self) -> Mapping[Key, InFlight]:
        """The rollouts counting against the caps now, reserved ones included (read-only)."""
        return MappingProxyType(self._running)

    def look(
        self,
        now: float,
        facts: WorkloadFacts,
        *,
        policies: Sequence[CompiledPolicy],
        namespace_labels: Mapping[str, str],
        ignored_namespaces: Collection[str],
        sources: Mapping[SourceId, SourceData],
        key_id: str,
    ) -> Look:
        """Look at a workload that exists: release its rollout if over, skip stale facts, decide.

        The decision is applied to the ledger at once as far as it does not depend on a write: an
        adopted rollout is counted, a rollout to write holds its place under the caps, and a
        decision without a write is kept. A decision with a write is kept by :meth:`written`,
        or its place given back by :meth:`not_written`, once the write is done.
        """
        key = facts.key
        flight = self._running.get(key)
        released = flight is not None and not still_running(flight, facts, now)
        look_again = self._release(key) if released else frozenset()
        written = self._written.get(key)
        if written == facts.resource_version:
            return Look(None, released, look_again)  # our last write is not in the watch stream yet
        if written is not None:
            del self._written[key]  # it is now: a version the watch has passed never comes back
        decision = decide(
            now,
            facts,
            policies=policies,
            namespace_labels=namespace_labels,
            ignored_namespaces=ignored_namespaces,
            sources=sources,
            state=self._states.get(key),
            running=[flight for other, flight in self._running.items() if other != key],
            key_id=key_id,
            own=self._running.get(key),
        )
        if decision.adopted is not None:
            self._running[key] = decision.adopted
        if decision.patch is None:
            self._keep(key, decision)
        elif decision.write is Write.ROLLOUT and decision.settings is not None:
            # The generation the rollout must reach is only known once its write returns.
            self._reserved[key] = self._running.get(key)
            self._running[key] = InFlight(decision.settings.policies, now, facts.generation + 1)
        return Look(decision, released, look_again)

    def gone(self, key: Key) -> Look:
        """The workload was deleted: release its rollout, forget everything else about it."""
        released = key in self._running
        look_again = self._release(key) if released else frozenset()
        self._forget(key)
        return Look(None, released, look_again)

    def written(
        self, facts: WorkloadFacts, decision: Decision, now: float, *, resource_version: str, generation: int
    ) -> None:
        """The write of ``decision`` (made on ``facts``) succeeded at ``now``; keep its outcome.

        ``resource_version`` and ``generation`` are the workload's after the write. A rollout's
        place is confirmed: it runs from ``now`` until the workload has observed ``generation``.
        """
        key = facts.key
        self._reserved.pop(key, None)
        if resource_version != facts.resource_version:
            self._written[key] = facts.resource_version
        if decision.write is Write.ROLLOUT and decision.settings is not None:
            self._running[key] = InFlight(decision.settings.policies, now, generation)
        self._keep(key, decision)

    def not_written(self, key: Key) -> None:
        """The write decided at the last look failed or was refused: give back the place it held."""
        if key not in self._reserved:
            return
        before = self._reserved.pop(key)
        if before is None:
            self._running.pop(key, None)
        else:
            self._running[key] = before

    def retry_at(self, key: Key, at: float) -> None:
        """Look at the workload again at ``at`` (after a failure), unless an event comes first."""
        self._wake[key] = at

    def take_due(self, now: float) -> set[Key]:
        """The workloads due for a look at ``now``: their wake-up time passed, or their rollout timed out.

        Their wake-up times are used up: the look decides the next one.
        """
        due = {key for key, at in self._wake.items() if at <= now}
        # A rollout that never reports progress must stop holding its place under the caps.
        due |= {key for key, flight in self._running.items() if now - flight.since >= ROLLOUT_TIMEOUT_SECONDS}
        for key in due:
            self._wake.pop(key, None)
        return due

    def wake_at(self) -> float | None:
        """When the next workload is due (see :meth:`take_due`); None: only an event can make one."""
        times = [
            *self._wake.values(),
            *(flight.since + ROLLOUT_TIMEOUT_SECONDS for flight in self._running.values()),
        ]
        return min(times, default=None)

    def order(self, keys: Iterable[Key]) -> list[Key]:
        """``keys`` in the order to look at them: the longest-waiting change first, then by name."""

        def waiting_since(key: Key) -> tuple[float, Key]:
            state = self._states.get(key)
            pending = state.pending if state is not None else None
            return (pending.since if pending is not None else float("inf"), key)

        return sorted(keys, key=waiting_since)

    def _release(self, key: Key) -> frozenset[Key]:
        del self._running[key]
        return frozenset(self._queued)  # room under the caps: the queued may go now

    def _keep(self, key: Key, decision: Decision) -> None:
        step = decision.step
        if step is None:
            if decision.settings is None:
                self._forget(key)  # unmanaged
            return
        self._states[key] = step.state
        if step.wake_at is not None:
            self._wake[key] = step.wake_at
        else:
            self._wake.pop(key, None)
        if step.action is Action.QUEUED:
            self._queued.add(key)
        else:
            self._queued.discard(key)

    def _forget(self, key: Key) -> None:
        # Not its rollout: a rollout no longer ours to manage still runs, and counts until it ends.
        for memory in (self._states, self._wake, self._written):
            memory.pop(key, None)
        self._queued.discard(key)
