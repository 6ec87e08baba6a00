"""The probe watch's state and its loop: pods and kubelet reports in, Events, status marks and rolls out.

The pod handler and the kubelet reports only update the engine's :class:`ProbeWatch` and decide
the pod's workload again; a tick decides every kept workload again, since a failure also starts
(a grace period runs out) and clears (restarts age out of the window) without any event. What a
decision changed goes out as Events (through the audit's bounded queue) and as marks on the
policies whose status must be written again (by the audit's writer, which asks :meth:`tally`).

Under ``onInjectedFailure: Withdraw`` each decision also decides the workload's withdrawals
(:func:`engine.probewatch.decide`), kept here per policy and written to its status. A workload
with a new withdrawal is rolled once (the rollout's merge patch of the pod template, through the
door), on the first tick after the withdrawal is back from the API server in the view (so the
webhooks, watching the same policies, have it too) and in the compiled admission policies applied,
when those run.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from production_policy import kube, metrics
from production_policy.api import MAX_STATUS_PROBE_FAILURES
from production_policy.audit.auditor import Auditor
from production_policy.engine import CompiledPolicy, probewatch
from production_policy.engine.audit import WorkloadRef
from production_policy.engine.compiled import ExemptionKey
from production_policy.engine.rollout.writes import format_time
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
GONE_AFTER_SECONDS = 300.0
"""A workload with withdrawals that the audit has never known since the start is gone after this."""
ROLL_SETTLE_SECONDS = 5.0
"""A withdrawal seen in the view waits this long more before its roll: the webhooks' watches of
policies are about as quick as ours, not quicker."""


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
        compiled: Callable[[], frozenset[ExemptionKey]] | None = None,
    ) -> None:
        self.view = view
        self.audit = audit
        self.clock = clock
        """Wall-clock seconds: the kubelet's times are wall-clock times."""
        self.watch = probewatch.ProbeWatch(options.probe_thresholds)
        self.book = probewatch.FailureBook()
        self.compiled = compiled
        """The withdrawals the compiled admission policies last applied hold (None: they do not run)."""
        self.api: kube.ApiClient | None = None
        """For the rolls; set at startup."""
        self.withdrawn: dict[str, dict[probewatch.FailureKey, probewatch.Exemption]] = {}
        """Per policy, its withdrawals: read from its stored status once, then kept here."""
        self._known: set[WorkloadRef] = set()
        """Workloads with withdrawals that the audit has known: one it no longer knows is gone."""
        self._missing: dict[WorkloadRef, float] = {}
        """Workloads with withdrawals that the audit does not know, since when (monotonic)."""
        self._rolls: dict[WorkloadRef, float | None] = {}
        """Workloads to roll once, and since when their withdrawals are visible (None: not yet)."""
        metrics.INDEX_ENTRIES.labels("probed_pods").set(0)

    def tally(self, policy: str) -> probewatch.ProbeTally:
        """The policy's status on the probes its defaults injected: those failing, those withdrawn."""
        self._load()
        tally = self.book.tally(policy, MAX_STATUS_PROBE_FAILURES)
        return dataclasses.replace(tally, withdrawn=tuple(self.withdrawn.get(policy, {}).values()))

    def _load(self) -> None:
        """Take the withdrawals of each policy not seen yet from its stored status (a restart, a
        new leader); forget those of deleted policies."""
        for name, policy in self.view.policies.items():
            if name not in self.withdrawn:
                self.withdrawn[name] = {e.key: e for e in probewatch.recorded(policy)}
                for exemption in self.withdrawn[name].values():
                    metrics.WITHDRAWN_PROBES.labels(exemption.probe).inc()
        # A deleted policy whose withdrawals are all lifted: one of its name, if any, starts afresh.
        for name in [name for name, entries in self.withdrawn.items() if not entries]:
            if name not in self.view.policies:
                del self.withdrawn[name]

    # What the watch handler and the kubelet Events call: bookkeeping and pure deciding, never I/O.

    def pod_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """A pod was listed, added, changed or deleted: any pod; one with no injected probe (now) is
        not kept."""
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
        """Decide the workload's failures and withdrawals again and report what changed."""
        policies = self.view.sorted_policies()
        labels = self.view.labels_of(ref.namespace)
        failures = self.watch.failures(ref, self.clock(), labels, policies)
        auditor = self.audit.peek()
        decision = self._withdrawals(ref, failures, policies, labels, auditor)
        if decision.held:
            failures = tuple(dataclasses.replace(f, held=decision.held.get(f.key, "")) for f in failures)
        changes = self.book.record(ref, failures)
        if not (changes.new or changes.cleared or changes.policies):
            return
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

    def _withdrawals(
        self,
        ref: WorkloadRef,
        failures: tuple[probewatch.Failure, ...],
        policies: list[CompiledPolicy],
        labels: Mapping[str, str],
        auditor: Auditor | None,
    ) -> probewatch.Decision:
        """Decide the workload's withdrawals, keep them, and say what changed (Events, status marks)."""
        self._load()
        current = self._exemptions_of(ref)
        if not current and not any(f.policy is not None and f.probe != "readiness" for f in failures):
            return probewatch.Decision()
        subject = auditor.subjects.get(ref) if auditor is not None else None
        decision = probewatch.decide(
            ref,
            failures,
            current,
            policies,
            subject.pod if subject is not None else None,
            self._gone(ref, subject is not None, auditor is not None),
            labels,
            {name: len(entries) for name, entries in self.withdrawn.items()},
            format_time(self.clock()),
        )
        changed: set[str] = set()
        for exemption in decision.new:
            self.withdrawn.setdefault(exemption.policy, {})[exemption.key] = exemption
            changed.add(exemption.policy)
            metrics.WITHDRAWN_PROBES.labels(exemption.probe).inc()
            note = probewatch.withdrawn_note(exemption, decision.roll)
            log.warning("%s", note)
            if auditor is not None:
                self._post_both(auditor, exemption, probewatch.PROBE_WITHDRAWN, note, True)
        for lifted in decision.lifted:
            exemption = lifted.exemption
            self.withdrawn.get(exemption.policy, {}).pop(exemption.key, None)
            changed.add(exemption.policy)
            metrics.WITHDRAWN_PROBES.labels(exemption.probe).dec()
            note = probewatch.restored_note(lifted)
            log.info("%s", note)
            if auditor is not None:
                self._post_both(auditor, exemption, probewatch.PROBE_RESTORED, note, False)
        if decision.roll:
            self._rolls[ref] = None
        if not self._exemptions_of(ref):
            self._known.discard(ref)
            self._missing.pop(ref, None)
        if auditor is not None and changed:
            auditor.rewrite(changed)
        return decision

    def _gone(self, ref: WorkloadRef, known: bool, auditing: bool) -> bool:
        """Whether a workload with withdrawals is gone: the audit knew it and no longer does, or has
        not known it for :data:`GONE_AFTER_SECONDS` (far longer than its listing at a start takes)."""
        if known:
            self._known.add(ref)
            self._missing.pop(ref, None)
            return False
        if not auditing:
            return False
        since = self._missing.setdefault(ref, time.monotonic())
        return ref in self._known or time.monotonic() - since >= GONE_AFTER_SECONDS

    def _post_both(
        self, auditor: Auditor, exemption: probewatch.Exemption, reason: str, note: str, warning: bool
    ) -> None:
        """Post an Event about a withdrawal on the workload and on the policy."""
        auditor.post(self._about(auditor, exemption.workload, reason, note, warning))
        uid = auditor.policy_uid(exemption.policy)
        if uid is not None:
            event = kube.EventSpec.about_policy(exemption.policy, uid, reason, note, warning)
            auditor.post(dataclasses.replace(event, action=ACTION))

    def _exemptions_of(self, ref: WorkloadRef) -> list[probewatch.Exemption]:
        return [e for entries in self.withdrawn.values() for e in entries.values() if e.workload == ref]

    def _visible(self, exemptions: Iterable[probewatch.Exemption]) -> bool:
        """Whether the mutating side has the withdrawals: the view (so the webhooks) and the compiled
        admission policies applied (when they run)."""
        applied = self.compiled() if self.compiled is not None else None
        for e in exemptions:
            key = (e.workload.namespace, e.workload.kind, e.workload.name, e.container, e.probe)
            policy = self.view.policies.get(e.policy)
            if policy is None or key not in policy.withdrawn or (applied is not None and key not in applied):
                return False
        return True

    async def roll_due(self) -> None:
        """Roll each workload whose new withdrawals the mutating side has had for a while; once."""
        now = time.monotonic()
        for ref, since in list(self._rolls.items()):
            exemptions = self._exemptions_of(ref)
            if not exemptions:
                del self._rolls[ref]  # lifted before it was rolled
                continue
            if since is None:
                if self._visible(exemptions):
                    self._rolls[ref] = now
                continue
            if now - since < ROLL_SETTLE_SECONDS or self.api is None:
                continue
            del self._rolls[ref]
            patch = probewatch.roll_patch(exemptions)
            try:
                await asyncio.to_thread(
                    kube.patch_workload, self.api, ref.kind, ref.namespace, ref.name, patch
                )
            except kube.Conflict:
                log.info("%s: not rolled for its withdrawn probes: it is gone", ref.describe())
            except Exception as exc:  # the API server unreachable, say: the next tick tries again
                metrics.ERRORS.labels("probewatch").inc()
                log.warning(
                    "%s: roll failed (%s); again at the next tick", ref.describe(), kube.describe_error(exc)
                )
                self._rolls[ref] = since
            else:
                log.info("%s: rolled once, so that its pods run without the withdrawn probes", ref.describe())

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
        """Decide every kept workload, and every one with a withdrawal, again each :data:`TICK_SECONDS`,
        then roll those due, forever (until cancelled)."""
        while True:
            await asyncio.sleep(TICK_SECONDS)
            self._load()
            refs = dict.fromkeys(self.watch.workloads())
            refs.update(
                dict.fromkeys(e.workload for entries in self.withdrawn.values() for e in entries.values())
            )
            for count, ref in enumerate(refs, 1):
                self.decide(ref)
                if count % YIELD_EVERY == 0:
                    await asyncio.sleep(0)
            await self.roll_due()
