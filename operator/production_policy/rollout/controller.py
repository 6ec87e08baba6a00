"""The controller's loop: look at the workloads events point to, act on the engine's decisions.

Watch handlers only record facts and mark workloads as "to look at"; one task decides for them in
turn, so decisions never race each other (a rollout holds its place under the caps from the moment
it is decided), and starts the writes the engine asks for, WRITE_CONCURRENCY at a time, so 100
workloads cost about 100 / WRITE_CONCURRENCY round trips, not 100. A workload is never looked at
while its own write is in flight. Timers (debounce, interval, breaker) are wake-up times of that
same task, never kopf timers or daemons.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from production_policy import metrics
from production_policy.engine import rollout
from production_policy.processes.clusterview import ClusterView
from production_policy.processes.options import ControllerOptions
from production_policy.rollout import kubeio
from production_policy.rollout.sources import SourceCache
from production_policy.rollout.store import WorkloadKey, WorkloadStore

log = logging.getLogger(__name__)

Writes = Callable[[], Awaitable[None]]
"""What is left to do after a decision: its write and its Events (run later, a few at a time)."""

RETRY_SECONDS = 10.0
"""After a failed write or an unexpected error, look at the workload again this much later."""

WRITE_CONCURRENCY = 16
"""Writes (patches and their Events) in flight at once."""


class Controller:
    """State of the config-rollout controller: facts, per-workload schedules, running rollouts."""

    def __init__(self, view: ClusterView, options: ControllerOptions) -> None:
        self.view = view
        self.options = options
        self.workloads = WorkloadStore()
        self.hmac_key = b""
        self.key_id = ""
        self.sources: Mapping[str, SourceCache] = {}
        """Per-key digests of the ConfigMaps and Secrets, by kind."""
        self.api: client.ApiClient | None = None
        self._states: dict[WorkloadKey, rollout.WorkloadState] = {}
        self._running: dict[WorkloadKey, rollout.InFlight] = {}
        self._written: dict[WorkloadKey, str] = {}
        self._timers: dict[WorkloadKey, float] = {}
        self._dirty: set[WorkloadKey] = set()
        self._queued: set[WorkloadKey] = set()
        self._wakeup = asyncio.Event()
        self._calls = ThreadPoolExecutor(WRITE_CONCURRENCY, thread_name_prefix="rollout-write")
        self._slots = asyncio.Semaphore(WRITE_CONCURRENCY)
        self._writing: set[WorkloadKey] = set()
        self._writes: set[asyncio.Task[None]] = set()

    # What the watch handlers call. Only bookkeeping: the loop does the rest.

    def look_at(self, keys: Iterable[WorkloadKey]) -> None:
        """Mark workloads to be looked at as soon as possible."""
        before = len(self._dirty)
        self._dirty.update(keys)
        if len(self._dirty) != before:
            self._wakeup.set()

    def workload_seen(self, facts: rollout.WorkloadFacts) -> None:
        self.workloads.put(facts)
        metrics.INDEX_ENTRIES.labels("workloads").set(len(self.workloads))
        self.look_at([facts.key])

    def workload_gone(self, key: WorkloadKey) -> None:
        self.workloads.remove(key)
        metrics.INDEX_ENTRIES.labels("workloads").set(len(self.workloads))
        self.look_at([key])

    def source_changed(self, namespace: str, kind: str, name: str) -> None:
        self._count_sources()
        self.look_at(self.workloads.referrers((namespace, kind, name)))

    def namespace_changed(self, namespace: str) -> None:
        self.look_at(self.workloads.in_namespace(namespace))

    def policies_changed(self) -> None:
        self.look_at(self.workloads.keys())

    # The loop.

    async def run(self) -> None:
        """Look at marked and due workloads, forever (until cancelled)."""
        # No decision before every ConfigMap and Secret is listed: a source not seen yet would
        # look deleted, and a workload judged against it rolled for nothing.
        for cache in self.sources.values():
            await cache.synced.wait()
        self._count_sources()
        log.info("config rollouts: %d ConfigMaps and Secrets listed", sum(map(len, self.sources.values())))
        try:
            while True:
                await self._sleep()
                await self._look_at_marked_and_due()
        finally:
            for task in self._writes:
                task.cancel()

    async def _look_at_marked_and_due(self) -> None:
        now = time.time()
        due = [key for key, at in self._timers.items() if at <= now]
        # A rollout that never reports progress must stop holding its place under the caps.
        due += [
            key
            for key, flight in self._running.items()
            if now - flight.since >= rollout.ROLLOUT_TIMEOUT_SECONDS
        ]
        for key in due:
            self._timers.pop(key, None)
        marked = self._dirty | set(due)
        # A workload whose own write is in flight is looked at again once that write is done.
        self._dirty = marked & self._writing
        for key in sorted(marked - self._writing, key=self._order):
            try:
                writes = self.look(key, time.time())
            except Exception as exc:
                self._failed(key, exc)
                continue
            if writes is not None:
                await self._slots.acquire()
                self._start_writing(key, writes)

    def _start_writing(self, key: WorkloadKey, writes: Writes) -> None:
        async def write() -> None:
            try:
                await writes()
            except Exception as exc:
                self._failed(key, exc)
            finally:
                self._slots.release()
                self._writing.discard(key)
                if key in self._dirty:
                    self._wakeup.set()

        self._writing.add(key)
        task = asyncio.create_task(write(), name=f"config rollout write {key}")
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    def _failed(self, key: WorkloadKey, exc: Exception) -> None:
        # A bug, or an API error outside the write path: log it (never a response body).
        log.error(
            "config rollout of %s %s/%s failed (%s); looking again in %.0fs",
            *key,
            kubeio.describe_error(exc),
            RETRY_SECONDS,
            exc_info=not isinstance(exc, ApiException),
        )
        self._timers[key] = time.time() + RETRY_SECONDS

    async def _sleep(self) -> None:
        if self._dirty - self._writing:
            return
        wake_times = [
            *self._timers.values(),
            *(flight.since + rollout.ROLLOUT_TIMEOUT_SECONDS for flight in self._running.values()),
        ]
        timeout = max(0.0, min(wake_times) - time.time()) if wake_times else None
        self._wakeup.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), timeout)

    def _order(self, key: WorkloadKey) -> tuple[float, WorkloadKey]:
        # Under a full concurrency cap, the longest-waiting change goes first.
        state = self._states.get(key)
        return (state.pending.since if state is not None and state.pending is not None else float("inf"), key)

    def look(self, key: WorkloadKey, now: float) -> Writes | None:
        """Look at one workload once and decide; returns the writes still to make, if any."""
        facts = self.workloads.get(key)
        self._release(key, facts, now)
        if facts is None:
            self._forget(key)
            return None
        if self._written.get(key) == facts.resource_version:
            return None  # our last write is not in the watch stream yet: these facts are stale
        decision = rollout.decide(
            now,
            facts,
            policies=self.view.sorted_policies(),
            namespace_labels=self.view.labels_of(facts.namespace),
            ignored_namespaces=self.options.all_ignored_namespaces,
            sources=self._sources_of(facts),
            state=self._states.get(key),
            running=[flight for other, flight in self._running.items() if other != key],
            key_id=self.key_id,
        )
        if decision.settings is not None and key not in self._running:
            # After a restart: a rollout of ours still running counts against the caps too.
            adopted = rollout.adopt_running(facts, decision.settings.policies, now)
            if adopted is not None:
                self._running[key] = adopted
        if decision.patch is not None:
            before = self._running.get(key)
            if decision.write is rollout.Write.ROLLOUT and decision.settings is not None:
                # It holds its place under the caps from now on, so the next decision counts it;
                # the generation it must reach is known once its write returns.
                self._running[key] = rollout.InFlight(decision.settings.policies, now, facts.generation + 1)
            return functools.partial(self._write_then_settle, facts, decision, before)
        self._settle(facts, decision)
        reports = decision.step.reports if decision.step is not None else ()
        return functools.partial(self._report_all, facts, reports) if reports else None

    async def _write_then_settle(
        self, facts: rollout.WorkloadFacts, decision: rollout.Decision, before: rollout.InFlight | None
    ) -> None:
        if not await self._write(facts, decision):
            # Not written: give back the place it held under the caps.
            if before is None:
                self._running.pop(facts.key, None)
            else:
                self._running[facts.key] = before
            return
        self._settle(facts, decision)
        if decision.step is not None:
            await self._report_all(facts, decision.step.reports)

    def _settle(self, facts: rollout.WorkloadFacts, decision: rollout.Decision) -> None:
        if decision.why:
            log.info("%s: %s", facts.describe(), decision.why)
        else:  # nothing new: only worth a line when debugging
            log.debug(
                "%s: %s",
                facts.describe(),
                f"not managed ({decision.unmanaged})" if decision.unmanaged else "nothing to do",
            )
        self._keep(facts.key, decision)

    async def _write(self, facts: rollout.WorkloadFacts, decision: rollout.Decision) -> bool:
        assert decision.patch is not None and self.api is not None
        try:
            patched = await self._call(kubeio.patch_workload, self.api, facts, decision.patch)
        except kubeio.Conflict:
            # The workload changed since these facts: its newer version is on its way to us.
            log.debug(
                "%s: changed meanwhile, not written; looking again at its next version", facts.describe()
            )
            return False
        except Exception as exc:
            log.warning(
                "%s: %s write failed (%s); looking again in %.0fs",
                facts.describe(),
                decision.write.value,
                kubeio.describe_error(exc),
                RETRY_SECONDS,
            )
            metrics.ERRORS.labels("rollout").inc()
            self._timers[facts.key] = time.time() + RETRY_SECONDS
            return False
        if patched.resource_version != facts.resource_version:
            self._written[facts.key] = facts.resource_version
        if decision.write is rollout.Write.ROLLOUT:
            metrics.ROLLOUTS.labels("config-change").inc()
        if decision.write is rollout.Write.ROLLOUT and decision.settings is not None:
            self._running[facts.key] = rollout.InFlight(
                decision.settings.policies, time.time(), patched.generation
            )
        return True

    async def _call(self, call: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._calls, call, *args)

    def close(self) -> None:
        """Let go of the API client and the threads that call it."""
        for cache in self.sources.values():
            cache.stop()
        self._calls.shutdown(wait=False, cancel_futures=True)
        if self.api is not None:
            self.api.close()

    def _keep(self, key: WorkloadKey, decision: rollout.Decision) -> None:
        step = decision.step
        if step is None:
            if decision.settings is None:
                self._forget(key)  # unmanaged
            return
        self._states[key] = step.state
        if step.wake_at is not None:
            self._timers[key] = step.wake_at
        else:
            self._timers.pop(key, None)
        if step.action is rollout.Action.QUEUED:
            self._queued.add(key)
        else:
            self._queued.discard(key)

    def _release(self, key: WorkloadKey, facts: rollout.WorkloadFacts | None, now: float) -> None:
        flight = self._running.get(key)
        if flight is not None and not rollout.still_running(flight, facts, now):
            del self._running[key]
            log.info("%s %s/%s: rollout no longer running (finished, stopped or timed out)", *key)
            self.look_at(self._queued)  # room under the caps: the queued may go now

    def _forget(self, key: WorkloadKey) -> None:
        for memory in (self._states, self._timers, self._written):
            memory.pop(key, None)
        self._queued.discard(key)

    def _sources_of(self, facts: rollout.WorkloadFacts) -> dict[rollout.SourceId, rollout.SourceData]:
        found: dict[rollout.SourceId, rollout.SourceData] = {}
        for ref in facts.references:
            cache = self.sources.get(ref.kind)
            data = cache.get(facts.namespace, ref.name) if cache is not None else None
            if data is not None:
                found[(ref.kind, ref.name)] = data
        return found

    def _count_sources(self) -> None:
        metrics.INDEX_ENTRIES.labels("sources").set(sum(map(len, self.sources.values())))

    async def _report_all(self, facts: rollout.WorkloadFacts, reports: Iterable[rollout.Report]) -> None:
        for report in reports:
            await self._report(facts, report)

    async def _report(self, facts: rollout.WorkloadFacts, report: rollout.Report) -> None:
        assert self.api is not None
        if report.reason == "ConfigRolloutBreakerOpen":
            metrics.BREAKER_TRIPS.inc()
        try:
            await self._call(kubeio.post_event, self.api, facts, report, self.options.instance)
        except Exception as exc:
            metrics.ERRORS.labels("rollout").inc()
            log.warning(
                "%s: could not post Event %s: %s", facts.describe(), report.reason, kubeio.describe_error(exc)
            )
