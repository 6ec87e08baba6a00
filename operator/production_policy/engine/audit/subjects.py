"""Which objects the audit counts as workloads, and the part of each that it keeps.

A *workload* is an object that owns pods and is not itself owned: a Deployment, StatefulSet,
DaemonSet, Job or CronJob, or a bare Pod — each only when no controller owns it. Counting
top-level objects only means one broken Deployment is one non-compliant workload, not one per
ReplicaSet and pod; a Job started by a CronJob, or a pod adopted by a ReplicaSet, is counted
through its owner. Which kinds are audited is said in :mod:`production_policy.engine.kinds`
(ReplicaSets are not).

The controller keeps a :class:`Subject` per workload, never the body: the pod template's labels
and, of its spec, only the fields the policy rules read (see :func:`judged_spec`), so the audit
can judge the workload again whenever a policy or a namespace changes, without asking the API
server for the workload.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from production_policy.engine import kinds
from production_policy.engine.names import INJECTED_ANNOTATION
from production_policy.engine.pods import pod_template

AUDITED_KINDS = tuple(kind.kind for kind in kinds.AUDITED)
"""The kinds the audit counts, in the order the status lists them when all else is equal."""

API_VERSIONS = {kind.kind: kind.api_version for kind in kinds.AUDITED}

# What the rules and the defaulting read of a pod spec (engine.rules, engine.defaulting,
# engine.qos, engine.pods): pod-level resources, and per container its name, ports, probes,
# resources and (for native sidecars) restartPolicy. Everything else — images, commands, env,
# volumes — is dropped: it is most of a spec's size and the audit never needs it.
_POD_FIELDS = ("containers", "initContainers", "resources")
_CONTAINER_FIELDS = (
    "name",
    "ports",
    "resources",
    "readinessProbe",
    "livenessProbe",
    "startupProbe",
    "restartPolicy",
)


@dataclass(frozen=True, order=True)
class WorkloadRef:
    """A workload's identity; ordered by namespace, then kind, then name."""

    namespace: str
    kind: str
    name: str

    def describe(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


@dataclass(frozen=True)
class Subject:
    """What the audit keeps of one workload."""

    ref: WorkloadRef
    uid: str
    pod: Mapping[str, Any]
    """A Pod holding the template's labels and the judged part of its spec (see :func:`judged_spec`)."""
    injected: tuple[str, ...] = ()
    """For a bare Pod: the defaults the mutating webhook injected (its ``injected`` annotation)."""


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
    return WorkloadRef(namespace, str(kind), name)


def audit_subject(obj: Mapping[str, Any]) -> Subject | None:
    """The subject of an audited workload; None when the object is not one (other kind, or controlled)."""
    ref = workload_ref(obj)
    template = pod_template(obj)
    if ref is None or template is None or controlled(obj):
        return None
    metadata, spec = template
    labels = metadata.get("labels")
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"labels": dict(labels) if isinstance(labels, Mapping) else {}},
        "spec": judged_spec(spec),
    }
    uid = obj.get("metadata", {}).get("uid")
    return Subject(ref, uid if isinstance(uid, str) else "", pod, _injected(obj) if ref.kind == "Pod" else ())


def judged_spec(pod_spec: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a pod spec that policy rules read; judging it gives what judging the whole spec gives."""
    reduced: dict[str, Any] = {}
    for field in _POD_FIELDS:
        value = pod_spec.get(field)
        if value is None:
            continue
        if field == "resources":
            reduced[field] = value
            continue
        reduced[field] = [
            {key: item[key] for key in _CONTAINER_FIELDS if key in item}
            if isinstance(item, Mapping)
            else item
            for item in (value if isinstance(value, list) else [])
        ]
    return reduced


def _injected(obj: Mapping[str, Any]) -> tuple[str, ...]:
    annotations = obj.get("metadata", {}).get("annotations")
    value = annotations.get(INJECTED_ANNOTATION) if isinstance(annotations, Mapping) else None
    return tuple(entry for entry in value.split(",") if entry) if isinstance(value, str) else ()
