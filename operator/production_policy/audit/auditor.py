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
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kubernetes import client

from production_policy.api import MAX_STATUS_VIOLATIONS
from production_policy.audit import kubeio
from production_policy.engine import CompiledPolicy, audit
from production_policy.processes.clusterview import ClusterView
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
    """Judgements of every audited workload and the statuses of every policy."""

    def __init__(
        self, view: ClusterView, options: ControllerOptions, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.view = view
        self.options = options
        self.clock = clock
        self.api: client.ApiClient | None = None
        self.book = audit.ComplianceBook()
        self.subjects: dict[audit.WorkloadRef, audit.Subject] = {}
        self.records: dict[str, PolicyRecord] = {}
        self.dirty = audit.DirtySet()
        self._parsed: dict[str, CompiledPolicy] = {}
        self._namespace_labels: dict[str, dict[str, str]] = {}
        self._reported: dict[audit.WorkloadRef, tuple[str, ...]] = {}
        self._scope: set[str] = set()
        self._scope_all = False
        self._scope_since: float | None = None
        self._wakeup = asyncio.Event()
        self._events: asyncio.Queue[kubeio.EventSpec] = asyncio.Queue(EVENT_QUEUE_SIZE)
        self.compiled: Callable[[str], tuple[str, str, str]] | None = None
        """The CompiledToAPIServer condition of a policy, when the API server is asked to enforce."""

    # What the watch handlers call: bookkeeping and pure judging only, never I/O.

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
        self.subjects[ref] = subject
        self._judge(subject, self.view.sorted_policies())
        changed = before is None or before.uid != subject.uid or before.pod != subject.pod
        self._maybe_report_injected(subject, listing=event_type is None, template_changed=changed)

    def policy_event(self, event_type: str | None, name: str, body: Mapping[str, Any]) -> None:
        """A policy was listed, added, changed (spec or status) or deleted; the view already knows."""
        after = self.view.policies.get(name) if event_type != "DELETED" else None
        before = self._parsed.pop(name, None)
        if after is not None:
            self._parsed[name] = after
        self._widen(audit.affected_namespaces(before, after))
        if event_type == "DELETED":
            self.records.pop(name, None)
            return
        metadata = body.get("metadata", {})
        generation = metadata.get("generation")
        self.records[name] = PolicyRecord(
            str(metadata.get("uid", "")),
            generation if isinstance(generation, int) else None,
            body.get("status"),
        )
        # Also on status-only changes: if someone else changed the status, the writer restores it.
        self._mark({name})

    def namespace_event(self, event_type: str | None, name: str) -> None:
        """A namespace changed: its workloads are judged again if its labels did."""
        if event_type == "DELETED":
            self._namespace_labels.pop(name, None)
            return  # its workloads' own DELETED events follow
        labels = dict(self.view.labels_of(name))
        if self._namespace_labels.get(name) != labels:
            self._namespace_labels[name] = labels
            self._widen(frozenset({name}))

    # Judging.

    def _judge(self, subject: audit.Subject, policies: list[CompiledPolicy]) -> None:
        ref = subject.ref
        judgement = audit.judge(subject.pod, ref.namespace, self.view.labels_of(ref.namespace), policies)
        self._mark(self.book.record(ref, judgement))

    def _forget(self, ref: audit.WorkloadRef) -> None:
        if self.subjects.pop(ref, None) is not None:
            self._mark(self.book.forget(ref))
        self._reported.pop(ref, None)

    def _widen(self, scope: frozenset[str] | None) -> None:
        """Workloads in ``scope`` (None: all) must be judged again."""
        if scope is not None and not scope:
            return
        if scope is None:
            self._scope_all = True
        else:
            self._scope |= scope
        if self._scope_since is None:
            self._scope_since = self.clock()
        self._wakeup.set()

    async def rejudge(self) -> None:
        """Judge again every workload in the pending scope (a policy or a namespace's labels changed)."""
        scope, everything = self._scope, self._scope_all
        self._scope, self._scope_all, self._scope_since = set(), False, None
        refs = [ref for ref in self.subjects if everything or ref.namespace in scope]
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

    def _mark(self, names: Iterable[str]) -> None:
        names = set(names)
        if names:
            self.dirty.mark(names, self.clock())
            self._wakeup.set()

    # Events about workloads.

    def _maybe_report_injected(self, subject: audit.Subject, listing: bool, template_changed: bool) -> None:
        if listing or not template_changed:
            return  # the common case: spare the defaulting below
        ref = subject.ref
        injected = subject.injected
        if ref.kind != "Pod":
            labels = self.view.labels_of(ref.namespace)
            injected = audit.needed_defaults(subject.pod, ref.namespace, labels, self.view.sorted_policies())
        if not audit.report_injected(listing, template_changed, injected, self._reported.get(ref)):
            return
        self._reported[ref] = injected
        regarding = {
            "apiVersion": audit.API_VERSIONS[ref.kind],
            "kind": ref.kind,
            "namespace": ref.namespace,
            "name": ref.name,
            "uid": subject.uid,
        }
        note = audit.injected_note(ref, injected)
        self._post(
            kubeio.EventSpec(ref.namespace, regarding, audit.DEFAULTS_INJECTED, note, action="Default")
        )

    def _post(self, event: kubeio.EventSpec) -> None:
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
                assert self.api is not None
                await asyncio.to_thread(kubeio.post_event, self.api, event, self.options.instance)
            except Exception as exc:
                log.warning(
                    "could not post Event %s about %s: %s",
                    event.reason,
                    event.regarding.get("name"),
                    kubeio.describe_error(exc),
                )

    # The status writer.

    async def run(self) -> None:
        """Write dirty statuses in batches, forever (until cancelled)."""
        while True:
            await self._sleep()
            if self._scope_all or self._scope:
                await self.rejudge()
            for name in sorted(self.dirty.take()):
                await self.flush(name)

    def _due(self) -> float | None:
        due = self.dirty.due_at()
        if self._scope_since is not None:
            scope_due = self._scope_since + self.dirty.quiet
            due = scope_due if due is None else min(due, scope_due)
        return due

    async def _sleep(self) -> None:
        while True:
            due = self._due()
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
            facts, self.book.tally(name, MAX_STATUS_VIOLATIONS), record.status, now
        )
        patch = audit.status_patch(record.status, desired)
        if patch is None:
            return
        try:
            assert self.api is not None
            result = await asyncio.to_thread(kubeio.patch_status, self.api, name, patch)
        except kubeio.Gone:
            return
        except Exception as exc:
            log.warning(
                "policy %s: status write failed (%s); trying again soon", name, kubeio.describe_error(exc)
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
            self._post(
                kubeio.EventSpec.about_policy(name, record.uid, change.reason, change.note, change.warning)
            )
