"""The audit's pending work, batched, so that a burst of changes costs a few passes, not one each.

Two kinds of work wait here: policies whose status may be stale (marked as their tallies change),
and workloads to judge again because a policy or a namespace's labels changed (by namespace, or
all of them). The writer waits until changes have been quiet for ``quiet`` seconds, but never
longer than ``max_delay`` after the first unwritten status change — a steady stream of changes
still shows in the status, a few seconds late at most. Judging again waits for a quiet period
after its first request, so a burst of policy edits is one pass over the workloads.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

QUIET_SECONDS = 1.0
MAX_DELAY_SECONDS = 5.0


@dataclass(frozen=True)
class Rejudge:
    """The workloads to judge again: every one, or those in ``namespaces``."""

    everything: bool
    namespaces: frozenset[str]

    def covers(self, namespace: str) -> bool:
        """Whether the workloads of ``namespace`` are to be judged again."""
        return self.everything or namespace in self.namespaces


@dataclass
class PendingWork:
    """Statuses to write and workloads to judge again, and since when (seconds, any monotonic clock)."""

    quiet: float = QUIET_SECONDS
    max_delay: float = MAX_DELAY_SECONDS
    names: set[str] = field(default_factory=set)
    """The policies whose status may be stale."""
    first: float | None = None
    last: float | None = None
    namespaces: set[str] = field(default_factory=set)
    """The namespaces whose workloads are to be judged again."""
    everything: bool = False
    """Every workload is to be judged again."""
    rejudge_since: float | None = None

    def mark(self, names: Iterable[str], now: float) -> None:
        """The statuses of ``names`` may have changed at ``now``."""
        names = set(names)
        if not names:
            return
        self.names |= names
        self.first = now if self.first is None else self.first
        self.last = now

    def rejudge(self, scope: frozenset[str] | None, now: float) -> bool:
        """The workloads in the namespaces ``scope`` (None: all) must be judged again.

        Returns whether that is work at all (an empty scope is none).
        """
        if scope is not None and not scope:
            return False
        if scope is None:
            self.everything = True
        else:
            self.namespaces |= scope
        if self.rejudge_since is None:
            self.rejudge_since = now
        return True

    def due_at(self) -> float | None:
        """When the pending work should be done; None when there is none."""
        due = (
            None
            if self.first is None or self.last is None
            else min(self.last + self.quiet, self.first + self.max_delay)
        )
        if self.rejudge_since is not None:
            rejudge = self.rejudge_since + self.quiet
            due = rejudge if due is None else min(due, rejudge)
        return due

    def take_rejudge(self) -> Rejudge | None:
        """The workloads to judge again, now being judged (None: none); that part starts empty again."""
        if not self.everything and not self.namespaces:
            return None
        scope = Rejudge(self.everything, frozenset(self.namespaces))
        self.namespaces, self.everything, self.rejudge_since = set(), False, None
        return scope

    def take(self) -> set[str]:
        """The policies whose status may be stale, now being written; that part starts empty again."""
        names, self.names, self.first, self.last = self.names, set(), None, None
        return names
