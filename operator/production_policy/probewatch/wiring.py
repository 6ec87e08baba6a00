"""The kopf wiring of the probe watch.

Pods are only *watched* (``on.event``), and only those the webhook injected something into (the
``injected`` annotation present): kopf runs one watch per resource for all of a process's
handlers, so this shares the audit's watch of pods and adds no stream of its own. The kubelet's
Events are watched by :mod:`.kubelet`, in threads of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import kopf

from production_policy import kube
from production_policy.audit.auditor import Auditor
from production_policy.engine import kinds
from production_policy.engine.compiled import ExemptionKey
from production_policy.engine.names import INJECTED_ANNOTATION
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
    result's ``tally`` to the audit.
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
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for feed in feeds:
            feed.stop()
            feed.close()
        if watcher.api is not None:
            watcher.api.close()

    def wanted(namespace: str | None, **_: Any) -> bool:
        return namespace not in ignored

    pod = kinds.POD

    # Async on purpose, as the audit's: it runs in the event loop, one at a time, so no locks.
    @kopf.on.event(
        pod.group,
        pod.version,
        pod.plural,
        registry=registry,
        id="probewatch-pods",
        annotations={INJECTED_ANNOTATION: kopf.PRESENT},
        when=wanted,
    )
    async def pod_event(type: str | None, body: kopf.Body, **_: Any) -> None:
        watcher.pod_event(type, body)

    return watcher
