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

from production_policy import kube, metrics
from production_policy.engine import rollout
from production_policy.processes.clusterview import ClusterView
from production_policy.processes.options import ControllerOptions
from production_policy.rollout.sources import SourceCache
from production_policy.rollout.store import WorkloadKey, WorkloadStore

log = logging.getLogger(__name__)

Writes = Callable[[], Awaitable[None]]
"""What is left to do after a decision: its write and its Events (run later, a few at a time)."""

RETRY_SECONDS = 10.0
"""After a failed write or an unexpected error, look at the workload again this much later."""

WRITE_CONCURRENCY = 16
"""Writes (patches and their Events) in flight at once."""

EVENT_ACTIONS = {
    "ConfigRollout": "RollingRestart",
    "ConfigRolloutBlocked": "Hold",
    "ConfigRolloutBreakerOpen": "Hold",
    "ConfigRolloutBreakerClosed": "Resume",
}
"""The ``action`` of each Event the controller posts, by reason (any other: ``Report``)."""


class Controller:
    """The config-rollout controller: facts, the fleet ledger, and the loop that acts on it.

    Built once its API client and digest key exist (at startup); ``start`` then begins listing the
    ConfigMaps and Secrets, ``run`` is the loop and ``close`` lets go of it all.
    """

    def __init__(
        self, view: ClusterView, options: ControllerOptions, api: kube.ApiClient, hmac_key: bytes
    ) -> None:
        self.view = view
        self.options = options
        self.api = api
        self.key_id = rollout.key_id(hmac_key)
        self.workloads = WorkloadStore()
        self.fleet = rollout.Fleet()
        self.sources: Mapping[str, SourceCache] = {
            kind: SourceCache(kind, api, options.all_ignored_namespaces, hmac_key, self.source_changed)
            for kind in ("ConfigMap", "Secret")
        }
        """Per-key digests of the ConfigMaps and Secrets, by kind."""
        self._dirty: set[WorkloadKey] = set()
        self._wakeup = asyncio.Event()
        self._calls = ThreadPoolExecutor(WRITE_CONCURRENCY, thread_name_prefix="rollout-write")
        self._slots = asyncio.Semaphore(WRITE_CONCURRENCY)
        self._writing: set[WorkloadKey] = set()
        self._writes: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        """Start listing and watching the ConfigMaps and Secrets (``run`` waits for their lists)."""
        for cache in self.sources.values():
            cache.start()

    # What the watch handlers call. Only bookkeeping: the loop does the rest.

    def look_at(self, keys: Iterable[WorkloadKey]) -> None:
        """Mark workloads to be looked at as soon as possible."""
        before = len(self._dirty)
        self._dirty.update(keys)
        if len(self._dirty) != before:
            self._wakeup.set()

    async def workload_arrived(self, facts: rollout.WorkloadFacts, *, created: bool) -> None:
        """A workload's version from its watch (``created``: an ADDED event, not a listing).

        A new workload's sources are read afresh before it is recorded, if the engine says its
        first baseline needs them: the source cache's watch may not have delivered a change made
        just before the workload was created.
        """
        if rollout.needs_fresh_sources(
            facts,
            created=created,
            policies=self.view.sorted_policies(),
            namespace_labels=self.view.labels_of(facts.namespace),
            ignored_namespaces=self.options.all_ignored_namespaces,
        ):
            await asyncio.gather(
                *(
                    self._read_afresh(facts, self.sources[ref.kind], ref.name)
                    for ref in facts.references
                    if ref.kind in self.sources
                )
            )
        self.workload_seen(facts)

    async def _read_afresh(self, facts: rollout.WorkloadFacts, cache: SourceCache, name: str) -> None:
        try:
            read = await self._call(cache.read, facts.namespace, name)
        except Exception as exc:
            # The cache is then all there is: as before the read, a change still on its way rolls.
            metrics.ERRORS.labels("rollout").inc()
            log.warning(
                "%s: could not read %s %s afresh for its first baseline (%s)",
                facts.describe(),
                cache.kind,
                name,
                kube.describe_error(exc),
            )
            return
        if read is not None:
            cache.offer(facts.namespace, name, read)

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
        marked = self._dirty | self.fleet.take_due(time.time())
        # A workload whose own write is in flight is looked at again once that write is done.
        self._dirty = marked & self._writing
        for key in self.fleet.order(marked - self._writing):
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
            kube.describe_error(exc),
            RETRY_SECONDS,
            exc_info=not kube.is_api_error(exc),
        )
        self.fleet.retry_at(key, time.time() + RETRY_SECONDS)

    async def _sleep(self) -> None:
        if self._dirty - self._writing:
            return
        wake_at = self.fleet.wake_at()
        timeout = max(0.0, wake_at - time.time()) if wake_at is not None else None
        self._wakeup.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), timeout)

    def look(self, key: WorkloadKey, now: float) -> Writes | None:
        """Look at one workload once and decide; returns the writes still to make, if any."""
        facts = self.workloads.get(key)
        if facts is None:
            self._released(key, self.fleet.gone(key))
            return None
        seen = self.fleet.look(
            now,
            facts,
            policies=self.view.sorted_policies(),
            namespace_labels=self.view.labels_of(facts.namespace),
            ignored_namespaces=self.options.all_ignored_namespaces,
            sources=self._sources_of(facts),
            key_id=self.key_id,
        )
        self._released(key, seen)
        decision = seen.decision
        if decision is None:
            return None
        if decision.patch is not None:
            return functools.partial(self._write_then_report, facts, decision, decision.patch)
        self._log(facts, decision)
        reports = decision.step.reports if decision.step is not None else ()
        return functools.partial(self._report_all, facts, reports) if reports else None

    def _released(self, key: WorkloadKey, seen: rollout.Look) -> None:
        if seen.released:
            log.info("%s %s/%s: rollout no longer running (finished, stopped or timed out)", *key)
            self.look_at(seen.look_again)

    async def _write_then_report(
        self, facts: rollout.WorkloadFacts, decision: rollout.Decision, patch: dict[str, Any]
    ) -> None:
        if not await self._write(facts, decision, patch):
            self.fleet.not_written(facts.key)
            return
        self._log(facts, decision)
        if decision.step is not None:
            await self._report_all(facts, decision.step.reports)

    def _log(self, facts: rollout.WorkloadFacts, decision: rollout.Decision) -> None:
        if decision.why:
            log.info("%s: %s", facts.describe(), decision.why)
        else:  # nothing new: only worth a line when debugging
            log.debug(
                "%s: %s",
                facts.describe(),
                f"not managed ({decision.unmanaged})" if decision.unmanaged else "nothing to do",
            )

    async def _write(
        self, facts: rollout.WorkloadFacts, decision: rollout.Decision, patch: dict[str, Any]
    ) -> bool:
        try:
            patched = await self._call(
                kube.patch_workload, self.api, facts.kind, facts.namespace, facts.name, patch
            )
        except kube.Conflict:
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
                kube.describe_error(exc),
                RETRY_SECONDS,
            )
            metrics.ERRORS.labels("rollout").inc()
            self.fleet.retry_at(facts.key, time.time() + RETRY_SECONDS)
            return False
        if decision.write is rollout.Write.ROLLOUT:
            metrics.ROLLOUTS.labels("config-change").inc()
        self.fleet.written(
            facts,
            decision,
            time.time(),
            resource_version=patched.resource_version,
            generation=patched.generation,
        )
        return True

    async def _call(self, call: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._calls, call, *args)

    def close(self) -> None:
        """Let go of the API client and the threads that call it."""
        for cache in self.sources.values():
            cache.stop()
        self._calls.shutdown(wait=False, cancel_futures=True)
        self.api.close()

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
        if report.reason == "ConfigRolloutBreakerOpen":
            metrics.BREAKER_TRIPS.inc()
        event = kube.EventSpec.about_workload(
            facts.kind,
            facts.namespace,
            facts.name,
            facts.uid,
            report.reason,
            report.note,
            report.warning,
            action=EVENT_ACTIONS.get(report.reason, "Report"),
        )
        try:
            await self._call(kube.post_event, self.api, event, self.options.instance)
        except Exception as exc:
            metrics.ERRORS.labels("rollout").inc()
            log.warning(
                "%s: could not post Event %s: %s", facts.describe(), report.reason, kube.describe_error(exc)
            )
