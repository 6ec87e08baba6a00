"""The controller's loop: look at the workloads events point to, act on the engine's decisions.

Watch handlers only record facts and mark workloads as "to look at"; one task looks at them in
turn, so decisions never race each other, and writes the engine asks for. Timers (debounce,
interval, breaker) are wake-up times of that same task, never kopf timers or daemons.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from production_policy import metrics
from production_policy.clusterview import ClusterView
from production_policy.engine import rollout as engine
from production_policy.rollout import kubeio
from production_policy.rollout.options import ControllerOptions
from production_policy.rollout.workloads import WorkloadKey, WorkloadStore

log = logging.getLogger(__name__)

RETRY_SECONDS = 10.0
"""After a failed write or an unexpected error, look at the workload again this much later."""

SOURCE_INDEX = {"ConfigMap": "rollout_configmaps", "Secret": "rollout_secrets"}
"""The kopf indexes of per-key digests, by source kind; keyed by (namespace, name)."""


class Controller:
    """State of the config-rollout controller: facts, per-workload schedules, running rollouts."""

    def __init__(self, view: ClusterView, options: ControllerOptions) -> None:
        self.view = view
        self.options = options
        self.workloads = WorkloadStore()
        self.hmac_key = b""
        self.key_id = ""
        self.indices: Mapping[str, Any] = {}
        self.api: client.ApiClient | None = None
        self._states: dict[WorkloadKey, engine.WorkloadState] = {}
        self._running: dict[WorkloadKey, engine.InFlight] = {}
        self._written: dict[WorkloadKey, str] = {}
        self._timers: dict[WorkloadKey, float] = {}
        self._dirty: set[WorkloadKey] = set()
        self._queued: set[WorkloadKey] = set()
        self._wakeup = asyncio.Event()

    # What the watch handlers call. Only bookkeeping: the loop does the rest.

    def look_at(self, keys: Iterable[WorkloadKey]) -> None:
        """Mark workloads to be looked at as soon as possible."""
        before = len(self._dirty)
        self._dirty.update(keys)
        if len(self._dirty) != before:
            self._wakeup.set()

    def workload_seen(self, facts: engine.WorkloadFacts) -> None:
        self.workloads.put(facts)
        metrics.INDEX_ENTRIES.labels("workloads").set(len(self.workloads))
        self.look_at([facts.key])

    def workload_gone(self, key: WorkloadKey) -> None:
        self.workloads.remove(key)
        metrics.INDEX_ENTRIES.labels("workloads").set(len(self.workloads))
        self.look_at([key])

    def source_changed(self, namespace: str, kind: str, name: str) -> None:
        sources = sum(len(self.indices.get(index, {})) for index in SOURCE_INDEX.values())
        metrics.INDEX_ENTRIES.labels("sources").set(sources)
        self.look_at(self.workloads.referrers((namespace, kind, name)))

    def namespace_changed(self, namespace: str) -> None:
        self.look_at(self.workloads.in_namespace(namespace))

    def policies_changed(self) -> None:
        self.look_at(self.workloads.keys())

    # The loop.

    async def run(self) -> None:
        """Look at marked and due workloads, forever (until cancelled)."""
        while True:
            await self._sleep()
            now = time.time()
            due = [key for key, at in self._timers.items() if at <= now]
            # A rollout that never reports progress must stop holding its place under the caps.
            due += [
                key
                for key, flight in self._running.items()
                if now - flight.since >= engine.ROLLOUT_TIMEOUT_SECONDS
            ]
            for key in due:
                self._timers.pop(key, None)
            batch = self._dirty | set(due)
            self._dirty = set()
            for key in sorted(batch, key=self._order):
                try:
                    await self.look(key, time.time())
                except Exception as exc:
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
        if self._dirty:
            return
        wake_times = [
            *self._timers.values(),
            *(flight.since + engine.ROLLOUT_TIMEOUT_SECONDS for flight in self._running.values()),
        ]
        timeout = max(0.0, min(wake_times) - time.time()) if wake_times else None
        self._wakeup.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), timeout)

    def _order(self, key: WorkloadKey) -> tuple[float, WorkloadKey]:
        # Under a full concurrency cap, the longest-waiting change goes first.
        state = self._states.get(key)
        return (state.pending.since if state is not None and state.pending is not None else float("inf"), key)

    async def look(self, key: WorkloadKey, now: float) -> None:
        """Look at one workload once: decide, write, report, schedule."""
        facts = self.workloads.get(key)
        self._release(key, facts, now)
        if facts is None:
            self._forget(key)
            return
        if self._written.get(key) == facts.resource_version:
            return  # our last write is not in the watch stream yet: these facts are stale
        decision = engine.decide(
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
            adopted = engine.adopt_running(facts, decision.settings.policies, now)
            if adopted is not None:
                self._running[key] = adopted
        if decision.patch is not None and not await self._write(facts, decision):
            return
        if decision.why:
            log.info("%s: %s", facts.describe(), decision.why)
        else:  # nothing new: only worth a line when debugging
            log.debug(
                "%s: %s",
                facts.describe(),
                f"not managed ({decision.unmanaged})" if decision.unmanaged else "nothing to do",
            )
        self._keep(key, decision)
        if decision.step is not None:
            for report in decision.step.reports:
                await self._report(facts, report)

    async def _write(self, facts: engine.WorkloadFacts, decision: engine.Decision) -> bool:
        assert decision.patch is not None and self.api is not None
        try:
            patched = await asyncio.to_thread(kubeio.patch_workload, self.api, facts, decision.patch)
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
        if decision.write is engine.Write.ROLLOUT:
            metrics.ROLLOUTS.labels("config-change").inc()
        if decision.write is engine.Write.ROLLOUT and decision.settings is not None:
            self._running[facts.key] = engine.InFlight(
                decision.settings.policies, time.time(), patched.generation
            )
        return True

    def _keep(self, key: WorkloadKey, decision: engine.Decision) -> None:
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
        if step.action is engine.Action.QUEUED:
            self._queued.add(key)
        else:
            self._queued.discard(key)

    def _release(self, key: WorkloadKey, facts: engine.WorkloadFacts | None, now: float) -> None:
        flight = self._running.get(key)
        if flight is not None and not engine.still_running(flight, facts, now):
            del self._running[key]
            log.info("%s %s/%s: rollout no longer running (finished, stopped or timed out)", *key)
            self.look_at(self._queued)  # room under the caps: the queued may go now

    def _forget(self, key: WorkloadKey) -> None:
        for memory in (self._states, self._timers, self._written):
            memory.pop(key, None)
        self._queued.discard(key)

    def _sources_of(self, facts: engine.WorkloadFacts) -> dict[engine.SourceId, engine.SourceData]:
        found: dict[engine.SourceId, engine.SourceData] = {}
        for ref in facts.references:
            index = self.indices.get(SOURCE_INDEX.get(ref.kind, ""))
            store = index.get((facts.namespace, ref.name)) if index is not None else None
            for data in store or ():
                found[(ref.kind, ref.name)] = data
        return found

    async def _report(self, facts: engine.WorkloadFacts, report: engine.Report) -> None:
        assert self.api is not None
        if report.reason == "ConfigRolloutBreakerOpen":
            metrics.BREAKER_TRIPS.inc()
        try:
            await asyncio.to_thread(kubeio.post_event, self.api, facts, report, self.options.instance)
        except Exception as exc:
            metrics.ERRORS.labels("rollout").inc()
            log.warning(
                "%s: could not post Event %s: %s", facts.describe(), report.reason, kubeio.describe_error(exc)
            )
