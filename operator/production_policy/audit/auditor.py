"""The audit's state and its writer loop.

Watch handlers only judge (pure, in memory) and mark the policies whose tally changed; one task
writes the dirty statuses in batches (see ``engine.audit.batching``) and skips every write that
would change nothing. Events go through a bounded queue and a task of their own, so a burst can
neither block the handlers nor flood the API server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from production_policy import kube
from production_policy.api import MAX_STATUS_VIOLATIONS
from production_policy.engine import CompiledPolicy, audit, probewatch
from production_policy.processes.clusterview import ClusterView, NamespaceChange, PolicyChange
from production_policy.processes.options import ControllerOptions

log = logging.getLogger(__name__)

RETRY_SECONDS = 5.0
"""After a failed status write, try again this much later."""
EVENT_QUEUE_SIZE = 256
"""Events waiting to be posted beyond this are dropped (and logged): Events are best-effort."""
YIELD_EVERY = 200
"""Judging everything again (a policy changed) lets other tasks run after this many workloads."""


@dataclass
class PolicyRecord:
    """What the audit keeps of a policy object, besides what the view has parsed."""

    uid: str
    generation: int | None
    status: Mapping[str, Any] | None


class Auditor:
    """Judgements of every audited workload and the statuses of every policy.

    Built once its API client exists (at startup); the view tells it of policy and namespace
    changes, the watch handlers of workloads; ``run`` and ``post_events`` are its two tasks.
    """

    def __init__(
        self,
        view: ClusterView,
        options: ControllerOptions,
        api: kube.ApiClient,
        compiled: Callable[[str], tuple[str, str, str]] | None = None,
        clock: Callable[[], float] = time.monotonic,
        probes: Callable[[str], probewatch.ProbeTally] | None = None,
    ) -> None:
        self.view = view
        self.options = options
        self.api = api
        self.compiled = compiled
        """The CompiledToAPIServer condition of a policy, when the API server is asked to enforce."""
        self.probes = probes
        """The failing injected probes of a policy's defaults, when the probe watch runs."""
        self.clock = clock
        self.book = audit.ComplianceBook()
        self.subjects: dict[audit.WorkloadRef, audit.Subject] = {}
        self.records: dict[str, PolicyRecord] = {}
        self.pending = audit.PendingWork()
        self._reported: dict[audit.WorkloadRef, tuple[str, ...]] = {}
        self._wakeup = asyncio.Event()
        self._events: asyncio.Queue[kube.EventSpec] = asyncio.Queue(EVENT_QUEUE_SIZE)

    # What the watch handlers and the view call: bookkeeping and pure judging only, never I/O.

    def workload_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """A Deployment, StatefulSet, DaemonSet, Job, CronJob or Pod was listed, added, changed or deleted."""
        ref = audit.workload_ref(body)
        if ref is None:
            return
        subject = audit.audit_subject(body) if event_type != "DELETED" else None
        if subject is None:  # deleted, or (now) owned by a controller: counted through its owner
            self._forget(ref)
            return
        before = self.subjects.get(ref)
        if before is not None:  # one WorkloadRef per workload, however often it changes
            subject = replace(subject, ref=before.ref)
        self.subjects[subject.ref] = subject
        policies = self.view.sorted_policies()
        self._judge(subject, policies)
        injected = audit.injected_to_report(
            before,
            subject,
            listing=event_type is None,
            last_reported=self._reported.get(ref),
            namespace_labels=self.view.labels_of(ref.namespace),
            policies=policies,
        )
        if injected is not None:
            self._report_injected(subject, injected)

    def policy_changed(self, change: PolicyChange) -> None:
        """A policy was listed, added, changed (spec or status) or deleted; the view holds the new version."""
        self._rejudge(audit.affected_namespaces(change.before, change.after))
        if change.event == "DELETED":
            self.records.pop(change.name, None)
            return
        metadata = change.body.get("metadata", {})
        generation = metadata.get("generation")
        self.records[change.name] = PolicyRecord(
            str(metadata.get("uid", "")),
            generation if isinstance(generation, int) else None,
            change.body.get("status"),
        )
        # Also on status-only changes: if someone else changed the status, the writer restores it.
        self._mark({change.name})

    def namespace_changed(self, change: NamespaceChange) -> None:
        """A namespace changed: its workloads are judged again if its labels did."""
        if change.event == "DELETED":
            return  # its workloads' own DELETED events follow
        if change.before != change.after:
            self._rejudge(frozenset({change.name}))

    # Judging.

    def _judge(self, subject: audit.Subject, policies: list[CompiledPolicy]) -> None:
        ref = subject.ref
        judgement = audit.judge(subject.pod, ref.namespace, self.view.labels_of(ref.namespace), policies)
        self._mark(self.book.record(ref, judgement))

    def _forget(self, ref: audit.WorkloadRef) -> None:
        if self.subjects.pop(ref, None) is not None:
            self._mark(self.book.forget(ref))
        self._reported.pop(ref, None)

    def _rejudge(self, scope: frozenset[str] | None) -> None:
        if self.pending.rejudge(scope, self.clock()):
            self._wakeup.set()

    async def rejudge(self, scope: audit.Rejudge) -> None:
        """Judge again every workload in ``scope`` (a policy or a namespace's labels changed)."""
        refs = [ref for ref in self.subjects if scope.covers(ref.namespace)]
        policies = self.view.sorted_policies()
        for count, ref in enumerate(refs, 1):
            subject = self.subjects.get(ref)
            if subject is not None:
                self._judge(subject, policies)
            if count % YIELD_EVERY == 0:
                await asyncio.sleep(0)  # a cluster-wide policy change must not stall the watches
        if refs:
            log.debug("judged %d workloads again after a policy or namespace change", len(refs))

    def rewrite_all(self) -> None:
        """Recompute every policy's status (what the API server enforces changed)."""
        self._mark(self.records)

    def rewrite(self, names: Iterable[str]) -> None:
        """Recompute these policies' statuses (what the probe watch reports of them changed)."""
        self._mark(names)

    def workload_uid(self, ref: audit.WorkloadRef) -> str:
        """The uid of an audited workload ("" when it is not one, or not seen yet): Events regard it."""
        subject = self.subjects.get(ref)
        return subject.uid if subject is not None else ""

    def policy_uid(self, name: str) -> str | None:
        """The uid of a policy; None when it is not known (deleted)."""
        record = self.records.get(name)
        return record.uid if record is not None else None

    def _mark(self, names: Iterable[str]) -> None:
        names = set(names)
        if names:
            self.pending.mark(names, self.clock())
            self._wakeup.set()

    # Events about workloads.

    def _report_injected(self, subject: audit.Subject, injected: tuple[str, ...]) -> None:
        ref = subject.ref
        self._reported[ref] = injected
        regarding = {
            "apiVersion": audit.API_VERSIONS[ref.kind],
            "kind": ref.kind,
            "namespace": ref.namespace,
            "name": ref.name,
            "uid": subject.uid,
        }
        note = audit.injected_note(ref, injected)
        self.post(kube.EventSpec(ref.namespace, regarding, audit.DEFAULTS_INJECTED, note, action="Default"))

    def post(self, event: kube.EventSpec) -> None:
        """Queue an Event for posting (dropped, and logged, when too many wait)."""
        try:
            self._events.put_nowait(event)
        except asyncio.QueueFull:
            log.warning(
                "too many Events waiting; dropped %s about %s", event.reason, event.regarding.get("name")
            )

    async def post_events(self) -> None:
        """Post queued Events one at a time, forever (until cancelled)."""
        while True:
            event = await self._events.get()
            try:
                await asyncio.to_thread(kube.post_event, self.api, event, self.options.instance)
            except Exception as exc:
                log.warning(
                    "could not post Event %s about %s: %s",
                    event.reason,
                    event.regarding.get("name"),
                    kube.describe_error(exc),
                )

    def close(self) -> None:
        """Let go of the API client."""
        self.api.close()

    # The status writer.

    async def run(self) -> None:
        """Write dirty statuses in batches, forever (until cancelled)."""
        while True:
            await self._sleep()
            scope = self.pending.take_rejudge()
            if scope is not None:
                await self.rejudge(scope)
            for name in sorted(self.pending.take()):
                await self.flush(name)

    async def _sleep(self) -> None:
        while True:
            due = self.pending.due_at()
            if due is not None and due <= self.clock():
                return
            self._wakeup.clear()
            timeout = None if due is None else due - self.clock()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout)

    async def flush(self, name: str) -> None:
        """Write one policy's status if it differs from the stored one; post its Ready Event if it changed."""
        record = self.records.get(name)
        if record is None:
            return  # deleted
        policy = self.view.policies.get(name)
        facts = audit.PolicyFacts(
            name,
            record.generation,
            policy.policy.spec.enforcement if policy is not None else None,
            self.view.problems.get(name),
            self.compiled(name) if self.compiled is not None else None,
        )
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        desired = audit.desired_status(
            facts,
            self.book.tally(name, MAX_STATUS_VIOLATIONS),
            record.status,
            now,
            self.probes(name) if self.probes is not None else None,
        )
        patch = audit.status_patch(record.status, desired)
        if patch is None:
            return
        try:
            result = await asyncio.to_thread(kube.patch_status, self.api, name, patch)
        except kube.Gone:
            return
        except Exception as exc:
            log.warning(
                "policy %s: status write failed (%s); trying again soon", name, kube.describe_error(exc)
            )
            asyncio.get_running_loop().call_later(RETRY_SECONDS, self._mark, {name})
            return
        previous = record.status
        current = self.records.get(name)
        if current is not None:
            current.status = result.get("status")
        log.info(
            "policy %s: status written (generation %s): %d matched, %d non-compliant",
            name,
            facts.generation,
            desired.get("matchedWorkloads", 0),
            desired.get("nonCompliantWorkloads", 0),
        )
        for change in (audit.ready_event(previous, desired), audit.compiled_event(previous, desired)):
            if change is None:
                continue
            (log.warning if change.warning else log.info)(
                "policy %s: %s: %s", name, change.reason, change.note
            )
            self.post(
                kube.EventSpec.about_policy(name, record.uid, change.reason, change.note, change.warning)
            )
