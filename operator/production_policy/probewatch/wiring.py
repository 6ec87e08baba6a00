"""The kopf wiring of the probe watch.

Pods come from the audit's handler of pods (kopf's one watch of them, and one handler on it: see
``register_audit``'s ``pods``), which hands each pod event to :meth:`ProbeWatcher.pod_event`;
those the webhook injected no probe into are dropped there. The kubelet's Events are watched by
:mod:`.kubelet`, in threads of their own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import kopf

from production_policy import kube
from production_policy.audit.auditor import Auditor
from production_policy.engine.compiled import ExemptionKey
from production_policy.probewatch.kubelet import KubeletEvents
from production_policy.probewatch.watcher import ProbeWatcher
from production_policy.processes import runtime
from production_policy.processes.clusterview import ClusterView
from production_policy.processes.options import ControllerOptions


def register_probewatch(
    registry: kopf.OperatorRegistry,
    view: ClusterView,
    options: ControllerOptions,
    audit: runtime.Started[Auditor],
    compiled: Callable[[], frozenset[ExemptionKey]] | None = None,
) -> ProbeWatcher | None:
    """Watch what the injected probes do (``audit``: the audit, once started, posts the Events and
    writes the statuses; ``compiled``: the withdrawals the compiled admission policies last applied
    hold, when they run); None (nothing registered) when ``options.probe_watch`` is off. Give the
    result's ``tally`` and ``pod_event`` to the audit (``register_audit``).
    """
    if not options.probe_watch:
        return None
    watcher = ProbeWatcher(view, options, audit, compiled=compiled)
    ignored = options.all_ignored_namespaces
    tasks: list[asyncio.Task[None]] = []
    feeds: list[KubeletEvents] = []

    @kopf.on.startup(registry=registry, id="probewatch-startup")
    async def start(**_: Any) -> None:
        watcher.api = kube.api_client(connections=1)  # the rolls, one at a time
        feed = KubeletEvents(kube.api_client(connections=2), ignored, watcher.kubelet_reported)
        feeds.append(feed)
        feed.start()
        tasks.append(asyncio.create_task(watcher.run(), name="probe watch"))

    @kopf.on.cleanup(registry=registry, id="probewatch-cleanup")
    async def stop(**_: Any) -> None:
        await runtime.cancelled(tasks)
        for feed in feeds:
            feed.stop()
            feed.close()
        if watcher.api is not None:
            watcher.api.close()

    return watcher
