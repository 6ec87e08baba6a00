"""Which objects the audit counts as workloads, and the part of each that it keeps.

A *workload* is an object that owns pods and is not itself owned: a Deployment, StatefulSet,
DaemonSet, Job or CronJob, or a bare Pod — each only when no controller owns it. Counting
top-level objects only means one broken Deployment is one non-compliant workload, not one per
ReplicaSet and pod; a Job started by a CronJob, or a pod adopted by a ReplicaSet, is counted
through its owner. Which kinds are audited is said in :mod:`production_policy.engine.kinds`
(ReplicaSets are not).

The controller keeps a :class:`Subject` per workload, never the body: the pod its template makes,
reduced to what the policy rules read (``pods.pod_from_template``), so the audit can judge the
workload again whenever a policy or a namespace changes, without asking the API server for it.
Workloads whose pods are alike to the rules (the same containers' names, ports, resources and
probes: the replicas of one chart, say) share one copy of that part, and every kept copy shares
its field names and short strings with the others.
"""

from __future__ import annotations

import hashlib
import json
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from production_policy.engine import kinds
from production_policy.engine.interning import shared
from production_policy.engine.pods import PodView, pod_from_template

AUDITED_KINDS = tuple(kind.kind for kind in kinds.AUDITED)
"""The kinds the audit counts, in the order the status lists them when all else is equal."""

API_VERSIONS = {kind.kind: kind.api_version for kind in kinds.AUDITED}


@dataclass(frozen=True, order=True, slots=True)
class WorkloadRef:
    """A workload's identity; ordered by namespace, then kind, then name."""

    namespace: str
    kind: str
    name: str

    def describe(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class Subject:
    """What the audit keeps of one workload."""

    ref: WorkloadRef
    uid: str
    pod: PodView
    """The pod its template makes."""

    @property
    def injected(self) -> tuple[str, ...]:
        """For a bare Pod: the defaults the mutating webhook injected (its ``injected`` annotation)."""
        return self.pod.injected if self.ref.kind == "Pod" else ()


def controlled(obj: Mapping[str, Any]) -> bool:
    """Whether a controller owns the object (an ownerReference with ``controller: true``)."""
    metadata = obj.get("metadata")
    owners = metadata.get("ownerReferences") if isinstance(metadata, Mapping) else None
    return isinstance(owners, list) and any(
        isinstance(owner, Mapping) and owner.get("controller") is True for owner in owners
    )


def workload_ref(obj: Mapping[str, Any]) -> WorkloadRef | None:
    """The identity of an object of an audited kind (owned or not); None for anything else."""
    kind, metadata = obj.get("kind"), obj.get("metadata")
    if kind not in AUDITED_KINDS or not isinstance(metadata, Mapping):
        return None
    namespace, name = metadata.get("namespace"), metadata.get("name")
    if not isinstance(namespace, str) or not isinstance(name, str):
        return None
    return WorkloadRef(shared(namespace), shared(str(kind)), name)


def audit_subject(obj: Mapping[str, Any]) -> Subject | None:
    """The subject of an audited workload; None when the object is not one (other kind, or controlled)."""
    ref = workload_ref(obj)
    pod = pod_from_template(obj)
    if ref is None or pod is None or controlled(obj):
        return None
    uid = obj.get("metadata", {}).get("uid")
    return Subject(ref, uid if isinstance(uid, str) else "", replace(pod, spec=_shared_spec(pod.spec)))


class _SharedSpec(dict[str, Any]):
    """A ``PodView.spec`` that subjects share: a dict that can be referred to weakly."""

    __slots__ = ("__weakref__",)


_specs: weakref.WeakValueDictionary[bytes, _SharedSpec] = weakref.WeakValueDictionary()
"""Each spec kept by some subject, by the digest of its canonical JSON; gone with its last subject."""


def _shared_spec(spec: Mapping[str, Any]) -> Mapping[str, Any]:
    """The copy of ``spec`` that the subjects share (read-only, as every ``PodView.spec`` is)."""
    try:
        text = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        return spec  # not JSON (an API server only sends JSON): kept as it is, not shared
    digest = hashlib.sha256(text.encode()).digest()
    found = _specs.get(digest)
    if found is None:
        found = _specs[digest] = _SharedSpec({key: _compacted(value) for key, value in spec.items()})
    return found


SHORT = 64
"""Strings up to this long in a kept spec are shared (field names, units, ports' names, paths)."""


def _compacted(value: Any) -> Any:
    """A copy of decoded JSON whose names and short strings are the shared copies.

    Each decoded body brings its own copy of every field name ("containerPort", "requests",
    "initialDelaySeconds"...): kept as they come, they would be most of what a spec costs.
    """
    if isinstance(value, str):
        return shared(value) if len(value) <= SHORT else value
    if isinstance(value, dict):
        return {shared(key): _compacted(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_compacted(item) for item in value]
    return value
