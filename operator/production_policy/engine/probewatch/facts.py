"""What the probe watch keeps of a pod and of a kubelet Event: only what its decision reads.

A pod is kept only if the webhook injected at least one probe into it (its
``productionpolicy.dev/injected`` annotation has a ``container:readiness``, ``:liveness`` or
``:startup`` entry); of each such container only the injected probes (their definitions, as the
pod spec has them), its restart count, readiness, start and last termination. A probe the user
wrote has no entry in the annotation and is never kept: it is not ours to judge.

A kubelet Event is kept only if it is ``Unhealthy`` (a probe failed: "Liveness probe failed: HTTP
probe failed with statuscode: 404") or ``Killing`` because a probe failed ("Container app failed
liveness probe, will be restarted"), about a container of a pod.

Every function here reads untrusted shapes (a watch event's raw JSON) and treats a member of the
wrong type as absent; none raises.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from production_policy.engine import kinds
from production_policy.engine.audit.subjects import WorkloadRef
from production_policy.engine.compiled import PROBE_KINDS, ProbeKind, probe_field
from production_policy.engine.names import INJECTED_ANNOTATION
from production_policy.engine.rollout.facts import parse_time

UNHEALTHY = "Unhealthy"
KILLING = "Killing"
KUBELET_REASONS = (UNHEALTHY, KILLING)
"""The reasons of the kubelet Events the probe watch reads."""

TEMPLATE_LABELS = ("pod-template-hash", "controller-revision-hash")
"""Labels naming the template revision a pod was made from: the Deployment controller's (on its
ReplicaSets' pods), the StatefulSet and DaemonSet controllers'."""

_FIELD_PATH = re.compile(r"^spec\.(?:initContainers|containers)\{(?P<name>[^}]+)\}$")
_UNHEALTHY = re.compile(r"^(?P<kind>Readiness|Liveness|Startup) probe (?:failed|errored)")
_KILLING = re.compile(r"failed (?P<kind>liveness|startup) probe, will be restarted")


@dataclass(frozen=True)
class ContainerFacts:
    """One container of a kept pod: its injected probes and what the kubelet says of it."""

    name: str
    injected: Mapping[ProbeKind, Mapping[str, Any]]
    """The probes the webhook injected, by kind, as the pod spec has them."""
    restarts: int = 0
    ready: bool = False
    started: bool | None = None
    """The kubelet's ``started`` (the startup probe passed); None when it does not say."""
    running_since: float | None = None
    """``state.running.startedAt``; None when the container is not running."""
    last_exit: str | None = None
    """``lastState.terminated.reason`` (``Error``, ``Completed``, ``OOMKilled``)."""
    last_exit_at: float | None = None
    """``lastState.terminated.finishedAt``: when the container last died."""


@dataclass(frozen=True)
class PodFacts:
    """A pod with an injected probe, reduced to what the probe watch decides from."""

    uid: str
    workload: WorkloadRef
    """The workload whose pods these are (see :func:`workload_of`)."""
    template: str
    """The template revision it was made from (see :data:`TEMPLATE_LABELS`); "" when unknown."""
    created: float
    """``metadata.creationTimestamp``: the newest pod's template is the workload's current one."""
    started: float | None
    """``status.startTime``: when the kubelet took the pod."""
    unready_since: float | None
    """When the pod's ContainersReady condition last turned False; None when it is True or absent."""
    labels: Mapping[str, str]
    """The pod's labels: which policy gave a default is worked out from them."""
    kinds: frozenset[str]
    """The kinds ``match.kinds`` sees the pod as."""
    containers: tuple[ContainerFacts, ...]
    """The containers with an injected probe, in spec order."""


@dataclass(frozen=True)
class KubeletReport:
    """A kubelet Event about one container's probe: a failure (``Unhealthy``) or a kill (``Killing``)."""

    pod_uid: str
    container: str
    probe: ProbeKind
    killed: bool
    """A ``Killing`` Event: the kubelet restarts the container because the probe failed."""
    message: str
    at: float
    """The Event's last occurrence."""


def injected_probes(annotation: Any) -> dict[str, frozenset[ProbeKind]]:
    """The probe kinds the webhook injected, by container name, from the ``injected`` annotation's value."""
    found: dict[str, set[ProbeKind]] = {}
    if not isinstance(annotation, str):
        return {}
    for entry in annotation.split(","):
        container, _, what = entry.strip().rpartition(":")
        for kind in PROBE_KINDS:
            if container and what == kind:
                found.setdefault(container, set()).add(kind)
    return {name: frozenset(probes) for name, probes in found.items()}


def workload_of(namespace: str, metadata: Mapping[str, Any]) -> WorkloadRef:
    """The workload a pod belongs to (see :func:`production_policy.engine.kinds.pod_workload`)."""
    return WorkloadRef(namespace, *kinds.pod_workload(metadata))


def pod_facts(pod: Mapping[str, Any]) -> PodFacts | None:
    """What the probe watch keeps of a pod; None when the webhook injected no probe into it."""
    metadata, spec, status = (_mapping(pod.get(key)) for key in ("metadata", "spec", "status"))
    injected = injected_probes(_mapping(metadata.get("annotations")).get(INJECTED_ANNOTATION))
    namespace, uid = metadata.get("namespace"), metadata.get("uid")
    if not injected or not isinstance(namespace, str) or not isinstance(uid, str):
        return None
    statuses = {
        str(entry.get("name")): entry
        for field in ("containerStatuses", "initContainerStatuses")
        for entry in _list(status.get(field))
        if isinstance(entry, Mapping)
    }
    containers = []
    for field in ("containers", "initContainers"):
        for container in _list(spec.get(field)):
            if not isinstance(container, Mapping) or container.get("name") not in injected:
                continue
            name = str(container["name"])
            probes = {
                kind: probe
                for kind in sorted(injected[name], key=PROBE_KINDS.index)
                if isinstance(probe := container.get(probe_field(kind)), Mapping)
            }
            if probes:
                containers.append(_container_facts(name, probes, _mapping(statuses.get(name))))
    if not containers:
        return None
    labels = {k: v for k, v in _mapping(metadata.get("labels")).items() if isinstance(v, str)}
    return PodFacts(
        uid=uid,
        workload=workload_of(namespace, metadata),
        template=next((labels[label] for label in TEMPLATE_LABELS if label in labels), ""),
        created=parse_time(metadata.get("creationTimestamp")) or 0.0,
        started=parse_time(status.get("startTime")),
        unready_since=_unready_since(status),
        labels=labels,
        kinds=kinds.counted_as({"kind": "Pod", "metadata": metadata}),
        containers=tuple(containers),
    )


def _container_facts(
    name: str, probes: Mapping[ProbeKind, Mapping[str, Any]], status: Mapping[str, Any]
) -> ContainerFacts:
    restarts = status.get("restartCount")
    started = status.get("started")
    running = _mapping(_mapping(status.get("state")).get("running"))
    terminated = _mapping(_mapping(status.get("lastState")).get("terminated"))
    last_exit = terminated.get("reason")
    return ContainerFacts(
        name=name,
        injected=probes,
        restarts=restarts if isinstance(restarts, int) and not isinstance(restarts, bool) else 0,
        ready=status.get("ready") is True,
        started=started if isinstance(started, bool) else None,
        running_since=parse_time(running.get("startedAt")) if running else None,
        last_exit=last_exit if isinstance(last_exit, str) else None,
        last_exit_at=parse_time(terminated.get("finishedAt")),
    )


def _unready_since(status: Mapping[str, Any]) -> float | None:
    for condition in _list(status.get("conditions")):
        if isinstance(condition, Mapping) and condition.get("type") == "ContainersReady":
            if condition.get("status") == "True":
                return None
            return parse_time(condition.get("lastTransitionTime"))
    return None


def kubelet_report(event: Mapping[str, Any]) -> KubeletReport | None:
    """The probe failure or probe kill a core/v1 Event reports; None for any other Event.

    Its time is the last occurrence the Event records (``lastTimestamp``, else ``series`` or
    ``eventTime``), so a failure the kubelet repeats and the API server aggregates keeps its time
    current.
    """
    reason, message = event.get("reason"), event.get("message")
    involved = _mapping(event.get("involvedObject"))
    if reason not in KUBELET_REASONS or not isinstance(message, str) or involved.get("kind") != "Pod":
        return None
    uid, field_path = involved.get("uid"), involved.get("fieldPath")
    target = _FIELD_PATH.match(field_path) if isinstance(field_path, str) else None
    if not isinstance(uid, str) or target is None:
        return None
    found = (_KILLING if reason == KILLING else _UNHEALTHY).search(message)
    if found is None:
        return None  # a Killing for another cause (the pod is deleted, say)
    series = _mapping(event.get("series"))
    at = (
        parse_time(event.get("lastTimestamp"))
        or parse_time(series.get("lastObservedTime"))
        or parse_time(event.get("eventTime"))
        or parse_time(event.get("firstTimestamp"))
    )
    if at is None:
        return None
    kind: ProbeKind = found.group("kind").lower()  # type: ignore[assignment]  # the pattern's three words
    return KubeletReport(uid, target.group("name"), kind, reason == KILLING, message, at)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
