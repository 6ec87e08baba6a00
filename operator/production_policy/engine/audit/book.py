"""The audit's ledger: the judgement of every workload, and per policy the workloads it matches.

Kept incrementally: recording a workload's judgement says which policies' tallies it changed,
so that only those policies' statuses are looked at again.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

from production_policy.engine.audit.judge import Finding, Judgement
from production_policy.engine.audit.subjects import WorkloadRef


@dataclass(frozen=True)
class Listed:
    """A violating workload as the status lists it."""

    ref: WorkloadRef
    message: str


@dataclass(frozen=True)
class Tally:
    """What a policy's status reports of the workloads it matches."""

    matched: int = 0
    non_compliant: int = 0
    top: tuple[Listed, ...] = ()


class ComplianceBook:
    """Judgements by workload, and per policy each matched workload's finding (None: compliant)."""

    def __init__(self) -> None:
        self._judgements: dict[WorkloadRef, Judgement] = {}
        self._by_policy: dict[str, dict[WorkloadRef, Finding | None]] = {}

    def __len__(self) -> int:
        return len(self._judgements)

    def record(self, ref: WorkloadRef, judgement: Judgement) -> set[str]:
        """Keep ``ref``'s new judgement; return the policies whose tally it changed."""
        before = self._judgements.get(ref, Judgement())
        if judgement.matched:
            self._judgements[ref] = judgement
        else:
            self._judgements.pop(ref, None)  # matched by nothing: nothing to remember
        changed: set[str] = set()
        for name in before.matched | judgement.matched:
            was, now = name in before.matched, name in judgement.matched
            finding = judgement.findings.get(name)
            if was == now and before.findings.get(name) == finding:
                continue
            changed.add(name)
            entries = self._by_policy.setdefault(name, {})
            if now:
                entries[ref] = finding
            else:
                entries.pop(ref, None)
                if not entries:
                    del self._by_policy[name]
        return changed

    def forget(self, ref: WorkloadRef) -> set[str]:
        """The workload is gone; return the policies whose tally that changed."""
        return self.record(ref, Judgement())

    def tally(self, policy: str, limit: int) -> Tally:
        """The policy's counts and its ``limit`` most severe violations.

        Most severe: the most broken rules first, then by namespace, kind and name, so the list is
        the same for the same workloads however and whenever they were recorded.
        """
        entries = self._by_policy.get(policy, {})
        violating = [(ref, finding) for ref, finding in entries.items() if finding is not None]
        top = heapq.nsmallest(limit, violating, key=lambda item: (-item[1].count, item[0]))
        return Tally(
            len(entries), len(violating), tuple(Listed(ref, finding.message) for ref, finding in top)
        )
