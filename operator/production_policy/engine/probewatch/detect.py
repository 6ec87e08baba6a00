"""Whether an injected probe is failing a workload: the decision, from pod facts and kubelet reports.

A container's injected probe *fails its workload* when, in a pod made from the workload's current
template (that of its newest pod: pods of an older template are on their way out, so a template
change clears what they showed):

- **liveness or startup, restarting it**: the container restarted at least
  :attr:`Thresholds.restarts` times within :attr:`Thresholds.window_seconds`, and the kubelet's
  last ``Killing`` Event about it, within the window, says it was killed for failing that probe.
  A crash loop of the application's own (no such Event) is not ours;
- **readiness, keeping it unready**: the container has been running but unready for
  :attr:`Thresholds.unready_seconds` (since it started, or since the pod's ContainersReady last
  turned False), past its startup probe if it has one;
- **startup, keeping it unstarted**: the container has been running for
  :attr:`Thresholds.unready_seconds` and its startup probe has still not passed.

Only probes the webhook injected are judged (see :mod:`.facts`). The workload *recovers* when no
pod of its current template shows a failure any more: the restarts age out of the window, the
container turns ready, or the pods are replaced.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from production_policy.engine.audit.subjects import WorkloadRef
from production_policy.engine.compiled import CompiledPolicy, ProbeKind
from production_policy.engine.matching import matching_policies
from production_policy.engine.merge import merge_defaults
from production_policy.engine.probewatch.facts import ContainerFacts, KubeletReport, PodFacts


@dataclass(frozen=True)
class Thresholds:
    """When an injected probe counts as failing (the controller's ``--probe-*`` options)."""

    restarts: int = 3
    """Restarts by an injected liveness or startup probe, within the window, that make a failure."""
    window_seconds: float = 600.0
    """The window restarts are counted in (10 minutes: the kubelet's back-off reaches 5 minutes)."""
    unready_seconds: float = 300.0
    """How long a running container may stay unready (or unstarted) under an injected probe."""

    def __post_init__(self) -> None:
        if self.restarts < 1 or self.window_seconds <= 0 or self.unready_seconds <= 0:
            raise ValueError("probe thresholds must be positive (restarts at least 1)")


FailureKey = tuple[WorkloadRef, str, ProbeKind]
"""(workload, container, probe kind): one failing injected probe."""


@dataclass(frozen=True)
class Failure:
    """An injected probe failing a workload: what the Events and the policy status report."""

    workload: WorkloadRef
    container: str
    probe: ProbeKind
    definition: Mapping[str, Any] = field(compare=False)
    """The injected probe, as the pod has it."""
    symptom: str = field(compare=False)
    """What the kubelet did, in the thresholds' words (so it stays the same while the failure lasts):
    "restarted 3 times within 10m", "running but unready for over 5m"."""
    kubelet_message: str = field(compare=False)
    """The kubelet's last message about this probe, as its Event said it."""
    policy: str | None
    """The policy whose default this probe is (None: no matching policy has that default now)."""
    pods: int = field(default=1, compare=False)
    """How many pods of the current template show it."""
    held: str = field(default="", compare=False)
    """Why its policy's ``onInjectedFailure: Withdraw`` did not withdraw it ("" when not asked to)."""

    @property
    def key(self) -> FailureKey:
        """Which probe of which workload: two failures with one key are the same failure, re-observed."""
        return (self.workload, self.container, self.probe)


class ProbeWatch:
    """The kept pods of every workload, the restarts seen and the kubelet's last reports.

    Plain data, no I/O: the shell feeds pods (:meth:`pod`, :meth:`pod_gone`) and kubelet Events
    (:meth:`report`) and asks :meth:`failures` of a workload at a time it gives. Reports about a
    pod or a container it does not keep are dropped, so memory follows the pods with injected
    probes, never the cluster's Events.
    """

    def __init__(self, thresholds: Thresholds | None = None) -> None:
        self.thresholds = thresholds or Thresholds()
        self._pods: dict[str, PodFacts] = {}
        self._by_workload: dict[WorkloadRef, set[str]] = {}
        self._restarts: dict[tuple[str, str], tuple[float, ...]] = {}
        """(pod uid, container) -> the times of its latest restarts (at most ``restarts`` of them)."""
        self._failed: dict[tuple[str, str, ProbeKind], KubeletReport] = {}
        """(pod uid, container, probe) -> the kubelet's last ``Unhealthy`` report."""
        self._killed: dict[tuple[str, str], KubeletReport] = {}
        """(pod uid, container) -> the kubelet's last ``Killing`` report."""

    def __len__(self) -> int:
        return len(self._pods)

    def workloads(self) -> list[WorkloadRef]:
        """The workloads with at least one kept pod."""
        return list(self._by_workload)

    def pod(self, facts: PodFacts, now: float) -> WorkloadRef:
        """Keep a pod's new facts (listed, added or changed at ``now``); returns its workload."""
        before = self._pods.get(facts.uid)
        if before is not None and before.workload != facts.workload:
            self._unindex(before)
        self._pods[facts.uid] = facts
        self._by_workload.setdefault(facts.workload, set()).add(facts.uid)
        previous = {c.name: c for c in before.containers} if before is not None else {}
        for container in facts.containers:
            key = (facts.uid, container.name)
            was = previous.get(container.name)
            if was is None:
                times = self._first_restarts(facts, container, now)
            else:
                new = max(0, container.restarts - was.restarts)
                times = self._restarts.get(key, ()) + (container.last_exit_at or now,) * new
            times = times[-self.thresholds.restarts :]
            if times:
                self._restarts[key] = times
            else:
                self._restarts.pop(key, None)
        return facts.workload

    def _first_restarts(self, facts: PodFacts, container: ContainerFacts, now: float) -> tuple[float, ...]:
        """The restarts of a container seen for the first time: only the last one's time is known,
        so the others are taken to be as old as the pod (they happened between its start and then)."""
        if container.restarts <= 0:
            return ()
        last = container.last_exit_at or now
        earlier = facts.started if facts.started is not None else last
        return (earlier,) * (container.restarts - 1) + (last,)

    def pod_gone(self, uid: str) -> WorkloadRef | None:
        """Forget a deleted pod (or one that no longer has an injected probe); returns its workload."""
        facts = self._pods.pop(uid, None)
        if facts is None:
            return None
        self._unindex(facts)
        for container in facts.containers:
            self._restarts.pop((uid, container.name), None)
            self._killed.pop((uid, container.name), None)
            for kind in container.injected:
                self._failed.pop((uid, container.name, kind), None)
        return facts.workload

    def _unindex(self, facts: PodFacts) -> None:
        uids = self._by_workload.get(facts.workload)
        if uids is not None:
            uids.discard(facts.uid)
            if not uids:
                del self._by_workload[facts.workload]

    def report(self, report: KubeletReport) -> WorkloadRef | None:
        """Keep a kubelet report about an injected probe of a kept pod; returns the pod's workload,
        or None when the report is not about one (dropped)."""
        facts = self._pods.get(report.pod_uid)
        container = next((c for c in facts.containers if c.name == report.container), None) if facts else None
        if facts is None or container is None or report.probe not in container.injected:
            return None
        if report.killed and report.probe == "readiness":
            return None  # the kubelet never kills for readiness
        # The latest wins; ties by probe and message, so the order Events arrive in never matters.
        if report.killed:
            kept = self._killed.get((report.pod_uid, report.container))
            if kept is None or _order(kept) <= _order(report):
                self._killed[(report.pod_uid, report.container)] = report
        else:
            key = (report.pod_uid, report.container, report.probe)
            kept = self._failed.get(key)
            if kept is None or _order(kept) <= _order(report):
                self._failed[key] = report
        return facts.workload

    def failures(
        self,
        ref: WorkloadRef,
        now: float,
        namespace_labels: Mapping[str, str],
        policies: Sequence[CompiledPolicy],
    ) -> tuple[Failure, ...]:
        """The injected probes failing ``ref`` at ``now``, one per container and probe kind, in
        container order; each names the policy that now gives that default (``policies``, with the
        namespace's labels, match the pod as admission would)."""
        pods = [self._pods[uid] for uid in self._by_workload.get(ref, ())]
        if not pods:
            return ()
        current = max(pods, key=lambda pod: (pod.created, pod.uid)).template
        found: dict[tuple[str, ProbeKind], Failure] = {}
        for pod in sorted(pods, key=lambda pod: pod.uid):
            if pod.template != current:
                continue
            for container in pod.containers:
                for kind, symptom in self._symptoms(pod, container, now):
                    key = (container.name, kind)
                    if key in found:
                        found[key] = _one_more_pod(found[key])
                        continue
                    found[key] = Failure(
                        ref,
                        container.name,
                        kind,
                        container.injected[kind],
                        symptom,
                        self._message(pod.uid, container.name, kind),
                        _injecting_policy(pod, kind, namespace_labels, policies),
                    )
        order = {c.name: i for pod in pods for i, c in enumerate(pod.containers)}
        return tuple(sorted(found.values(), key=lambda f: (order.get(f.container, 0), f.container, f.probe)))

    def _symptoms(
        self, pod: PodFacts, container: ContainerFacts, now: float
    ) -> Iterable[tuple[ProbeKind, str]]:
        thresholds = self.thresholds
        kill = self._killed.get((pod.uid, container.name))
        if (
            kill is not None
            and kill.probe in container.injected
            and kill.at >= now - thresholds.window_seconds
        ):
            recent = [
                t
                for t in self._restarts.get((pod.uid, container.name), ())
                if t >= now - thresholds.window_seconds
            ]
            if len(recent) >= thresholds.restarts:
                yield kill.probe, f"restarted {len(recent)} times within {span(thresholds.window_seconds)}"
        if container.running_since is None or container.ready:
            return
        if container.started is False:
            running = now - container.running_since
            if "startup" in container.injected and running >= thresholds.unready_seconds:
                yield "startup", f"not started after {span(thresholds.unready_seconds)} running"
            return  # the startup probe holds readiness back: readiness is not to blame
        since = max(container.running_since, pod.unready_since or container.running_since)
        if "readiness" in container.injected and now - since >= thresholds.unready_seconds:
            yield "readiness", f"running but unready for over {span(thresholds.unready_seconds)}"

    def _message(self, uid: str, container: str, kind: ProbeKind) -> str:
        failed = self._failed.get((uid, container, kind))
        if failed is not None:
            return failed.message
        killed = self._killed.get((uid, container))
        if killed is not None and killed.probe == kind:
            return killed.message
        return "no Unhealthy Event from the kubelet was seen"


def _order(report: KubeletReport) -> tuple[float, str, str]:
    return (report.at, report.probe, report.message)


def _one_more_pod(failure: Failure) -> Failure:
    return Failure(
        failure.workload,
        failure.container,
        failure.probe,
        failure.definition,
        failure.symptom,
        failure.kubelet_message,
        failure.policy,
        failure.pods + 1,
        failure.held,
    )


def _injecting_policy(
    pod: PodFacts, kind: ProbeKind, namespace_labels: Mapping[str, str], policies: Sequence[CompiledPolicy]
) -> str | None:
    matched = matching_policies(policies, pod.workload.namespace, namespace_labels, pod.labels, pod.kinds)
    default = merge_defaults(matched).probes.get(kind) if matched else None
    return default.policy if default is not None else None


def span(seconds: float) -> str:
    """A duration as people read it: "45s", "6m", "1h5m"."""
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes}m"
    return f"{minutes // 60}h{minutes % 60}m" if minutes % 60 else f"{minutes // 60}h"
