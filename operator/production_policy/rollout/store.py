"""The controller's view of the managed kinds: facts per workload, and who references what.

Fed by watch events; holds :class:`WorkloadFacts` only (references, our annotations, a few
status fields), never whole bodies.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import TypeVar

from production_policy.engine.rollout import WorkloadFacts

WorkloadKey = tuple[str, str, str]
"""(kind, namespace, name)."""
SourceKey = tuple[str, str, str]
"""(namespace, kind, name) of a ConfigMap or Secret."""


class WorkloadStore:
    """Facts by workload, workloads by referenced source and by namespace."""

    def __init__(self) -> None:
        self._facts: dict[WorkloadKey, WorkloadFacts] = {}
        self._referrers: defaultdict[SourceKey, set[WorkloadKey]] = defaultdict(set)
        self._by_namespace: defaultdict[str, set[WorkloadKey]] = defaultdict(set)

    def __len__(self) -> int:
        return len(self._facts)

    def get(self, key: WorkloadKey) -> WorkloadFacts | None:
        return self._facts.get(key)

    def put(self, facts: WorkloadFacts) -> None:
        self.remove(facts.key)
        self._facts[facts.key] = facts
        self._by_namespace[facts.namespace].add(facts.key)
        for ref in facts.references:
            self._referrers[(facts.namespace, ref.kind, ref.name)].add(facts.key)

    def remove(self, key: WorkloadKey) -> None:
        old = self._facts.pop(key, None)
        if old is None:
            return
        _discard(self._by_namespace, old.namespace, key)
        for ref in old.references:
            _discard(self._referrers, (old.namespace, ref.kind, ref.name), key)

    def referrers(self, source: SourceKey) -> set[WorkloadKey]:
        return set(self._referrers.get(source, ()))

    def in_namespace(self, namespace: str) -> set[WorkloadKey]:
        return set(self._by_namespace.get(namespace, ()))

    def keys(self) -> Iterable[WorkloadKey]:
        return list(self._facts)


K = TypeVar("K")


def _discard(mapping: dict[K, set[WorkloadKey]], key: K, value: WorkloadKey) -> None:
    members = mapping.get(key)
    if members is not None:
        members.discard(value)
        if not members:
            del mapping[key]  # an empty set per deleted source would grow forever
