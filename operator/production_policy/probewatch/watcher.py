"""The probe watch's state and its loop: pods and kubelet reports in, Events and status marks out.

The pod handler and the kubelet reports only update the engine's :class:`ProbeWatch` and decide
the pod's workload again; a tick decides every kept workload again, since a failure also starts
(a grace period runs out) and clears (restarts age out of the window) without any event. What a
decision changed goes out as Events (through the audit's bounded queue) and as marks on the
policies whose status must be written again (by the audit's writer, which asks :meth:`tally`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from production_policy import kube, metrics
from production_policy.api import MAX_STATUS_PROBE_FAILURES
from production_policy.audit.auditor import Auditor
from production_policy.engine import probewatch
from production_policy.engine.audit import WorkloadRef
from production_policy.processes import runtime
from production_policy.processes.clusterview import ClusterView
from production_policy.processes.options import ControllerOptions

log = logging.getLogger(__name__)

TICK_SECONDS = 15.0
"""How often every kept workload is decided again (grace periods ending, restarts ageing out)."""
YIELD_EVERY = 200
"""A tick lets other tasks run after deciding this many workloads."""
ACTION = "WatchProbes"
"""``action`` of the probe watch's Events."""


class ProbeWatcher:
    """The injected probes of every kept pod, and the failures reported.

    Built at registration (it needs no API client: the audit posts its Events and writes the
    statuses); ``run`` is its task, the kubelet Events feed it from their threads through the loop.
    """

    def __init__(
        self,
        view: ClusterView,
        options: ControllerOptions,
        audit: runtime.Started[Auditor],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.view = view
        self.audit = audit
        self.clock = clock
        """Wall-clock seconds: the kubelet's times are wall-clock times."""
        self.watch = probewatch.ProbeWatch(options.probe_thresholds)
        self.book = probewatch.FailureBook()
        metrics.INDEX_ENTRIES.labels("probed_pods").set(0)

    def tally(self, policy: str) -> probewatch.ProbeTally:
        """What the policy's status says of the failing probes its defaults injected."""
        return self.book.tally(policy, MAX_STATUS_PROBE_FAILURES)

    # What the watch handler and the kubelet Events call: bookkeeping and pure deciding, never I/O.

    def pod_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """A pod was listed, added, changed or deleted."""
        uid = (body.get("metadata") or {}).get("uid")
        facts = probewatch.pod_facts(body) if event_type != "DELETED" else None
        if facts is not None:
            ref: WorkloadRef | None = self.watch.pod(facts, self.clock())
        else:
            ref = self.watch.pod_gone(uid) if isinstance(uid, str) else None
        metrics.INDEX_ENTRIES.labels("probed_pods").set(len(self.watch))
        if ref is not None:
            self.decide(ref)

    def kubelet_reported(self, report: probewatch.KubeletReport) -> None:
        """The kubelet reported a probe failure or a kill (dropped unless about an injected probe)."""
        ref = self.watch.report(report)
        if ref is not None:
            self.decide(ref)

    def decide(self, ref: WorkloadRef) -> None:
        """Decide the workload's failures again and report what changed."""
        failures = self.watch.failures(
            ref, self.clock(), self.view.labels_of(ref.namespace), self.view.sorted_policies()
        )
        changes = self.book.record(ref, failures)
        if not (changes.new or changes.cleared or changes.policies):
            return
        auditor = self.audit.peek()
        for failure in changes.new:
            log.warning("%s", probewatch.failing_note(failure))
            metrics.INJECTED_PROBE_FAILURES.labels(failure.probe).inc()
            if auditor is not None:
                self._post_failing(auditor, failure)
        for failure in changes.cleared:
            log.info("%s: %s", ref.describe(), probewatch.recovered_note(failure))
            metrics.INJECTED_PROBE_FAILURES.labels(failure.probe).dec()
            if auditor is not None:
                auditor.post(
                    self._about(
                        auditor, ref, probewatch.PROBE_RECOVERED, probewatch.recovered_note(failure), False
                    )
                )
        if auditor is not None and changes.policies:
            auditor.rewrite(changes.policies)

    def _post_failing(self, auditor: Auditor, failure: probewatch.Failure) -> None:
        note = probewatch.failing_note(failure)
        auditor.post(self._about(auditor, failure.workload, probewatch.PROBE_FAILING, note, True))
        uid = auditor.policy_uid(failure.policy) if failure.policy is not None else None
        if failure.policy is not None and uid is not None:
            event = kube.EventSpec.about_policy(failure.policy, uid, probewatch.PROBE_FAILING, note, True)
            auditor.post(dataclasses.replace(event, action=ACTION))

    @staticmethod
    def _about(auditor: Auditor, ref: WorkloadRef, reason: str, note: str, warning: bool) -> kube.EventSpec:
        uid = auditor.workload_uid(ref)
        return kube.EventSpec.about_workload(
            ref.kind, ref.namespace, ref.name, uid, reason, note, warning, ACTION
        )

    async def run(self) -> None:
        """Decide every kept workload again each :data:`TICK_SECONDS`, forever (until cancelled)."""
        while True:
            await asyncio.sleep(TICK_SECONDS)
            for count, ref in enumerate(self.watch.workloads(), 1):
                self.decide(ref)
                if count % YIELD_EVERY == 0:
                    await asyncio.sleep(0)
