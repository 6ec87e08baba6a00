"""When to write statuses: batched, so that a burst of workload changes costs a few writes, not one each.

Policies are marked dirty as their tallies change; the writer waits until changes have been
quiet for ``quiet`` seconds, but never longer than ``max_delay`` after the first unwritten
change — a steady stream of changes still shows in the status, a few seconds late at most.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

QUIET_SECONDS = 1.0
MAX_DELAY_SECONDS = 5.0


@dataclass
class DirtySet:
    """The policies whose status may be stale, and since when (times in seconds, any monotonic clock)."""

    quiet: float = QUIET_SECONDS
    max_delay: float = MAX_DELAY_SECONDS
    names: set[str] = field(default_factory=set)
    first: float | None = None
    last: float | None = None

    def mark(self, names: Iterable[str], now: float) -> None:
        """``names`` changed at ``now``."""
        names = set(names)
        if not names:
            return
        self.names |= names
        self.first = now if self.first is None else self.first
        self.last = now

    def due_at(self) -> float | None:
        """When the dirty policies should be written; None when there are none."""
        if self.first is None or self.last is None:
            return None
        return min(self.last + self.quiet, self.first + self.max_delay)

    def take(self) -> set[str]:
        """The dirty policies, now being written; the set starts empty again."""
        names, self.names, self.first, self.last = self.names, set(), None, None
        return names
