"""The controller's view of the managed kinds: facts per workload, and who references what.

Fed by watch events; holds :class:`WorkloadFacts` only (references, our annotations, a few
status fields), never whole bodies.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from production_policy.engine.rollout import WorkloadFacts

WorkloadKey = tuple[str, str, str]
"""(kind, namespace, name)."""
SourceKey = tuple[str, str, str]
"""(namespace, kind, name) of a ConfigMap or Secret."""


Referrers = dict[str, WorkloadKey | set[WorkloadKey]]
"""By source name: the one workload referencing it, or the set of them when there are several."""


class WorkloadStore:
    """Facts by workload, workloads by referenced source and by namespace.

    Kept small, as it holds every workload: sources are indexed by namespace and kind, then by
    name (no key tuple per source), and most sources have one referrer, which is held as its key
    itself rather than as a set of one (an empty set alone is 216 bytes).
    """

    def __init__(self) -> None:
        self._facts: dict[WorkloadKey, WorkloadFacts] = {}
        self._referrers: dict[tuple[str, str], Referrers] = {}
        """By (namespace, kind), then by name."""
        self._by_namespace: defaultdict[str, set[WorkloadKey]] = defaultdict(set)

    def __len__(self) -> int:
        return len(self._facts)

    def get(self, key: WorkloadKey) -> WorkloadFacts | None:
        return self._facts.get(key)

    def put(self, facts: WorkloadFacts) -> None:
        key = facts.key
        self.remove(key)
        self._facts[key] = facts
        self._by_namespace[facts.namespace].add(key)
        for ref in facts.references:
            by_name = self._referrers.setdefault((facts.namespace, ref.kind), {})
            members = by_name.setdefault(ref.name, key)
            if isinstance(members, set):
                members.add(key)
            elif members != key:
                by_name[ref.name] = {members, key}

    def remove(self, key: WorkloadKey) -> None:
        old = self._facts.pop(key, None)
        if old is None:
            return
        in_namespace = self._by_namespace.get(old.namespace)
        if in_namespace is not None:
            in_namespace.discard(key)
            if not in_namespace:
                del self._by_namespace[old.namespace]
        for ref in old.references:
            by_name = self._referrers.get((old.namespace, ref.kind), {})
            members = by_name.get(ref.name)
            if isinstance(members, set):
                members.discard(key)
                if len(members) == 1:
                    by_name[ref.name] = next(iter(members))
            elif members == key:
                # Nothing is kept of a source nobody references: deleted ones would pile up.
                del by_name[ref.name]
                if not by_name:
                    del self._referrers[(old.namespace, ref.kind)]

    def referrers(self, source: SourceKey) -> set[WorkloadKey]:
        namespace, kind, name = source
        members = self._referrers.get((namespace, kind), {}).get(name)
        if members is None:
            return set()
        return set(members) if isinstance(members, set) else {members}

    def in_namespace(self, namespace: str) -> set[WorkloadKey]:
        return set(self._by_namespace.get(namespace, ()))

    def keys(self) -> Iterable[WorkloadKey]:
        return list(self._facts)
