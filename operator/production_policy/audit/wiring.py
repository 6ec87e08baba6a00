"""The kopf wiring of the policy status and audit.

Workloads are only *watched* (``on.event``: no finalizer, no annotation, nothing written to
them); what is kept of each is its identity and the part of its pod template the rules read.
Policy statuses are written by one task of our own, batched, through the status subresource.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

import kopf

from production_policy import kube
from production_policy.audit.auditor import Auditor
from production_policy.engine import kinds, probewatch
from production_policy.processes import runtime
from production_policy.processes.clusterview import ClusterView
from production_policy.processes.options import ControllerOptions

log = logging.getLogger(__name__)


def register_audit(
    registry: kopf.OperatorRegistry,
    view: ClusterView,
    options: ControllerOptions,
    started: runtime.Started[Auditor],
    compiled: Callable[[str], tuple[str, str, str]] | None = None,
    probes: Callable[[str], probewatch.ProbeTally] | None = None,
    pods: Callable[[str | None, Mapping[str, Any]], None] | None = None,
) -> None:
    """Register the policy status and audit into ``registry``; ``started`` holds the Auditor once made.

    ``compiled`` gives each policy's CompiledToAPIServer condition (when the API server is asked
    to enforce: see :mod:`production_policy.apiserver`); ``probes`` the failing injected probes of
    each policy's defaults, and ``pods`` the probe watch's reader of pod events, which the audit's
    pod handler calls first (when the probe watch runs: see :mod:`production_policy.probewatch`).

    ``view`` must be kept current by :func:`production_policy.processes.clusterview.register_views`,
    registered into the same registry *before* this: kopf runs a resource's handlers in
    registration order, so the view already has a policy's new version when a workload is judged.
    Policy and namespace changes come from the view itself, with the versions before and after.
    Namespaces in ``options.all_ignored_namespaces`` are not audited.
    """
    ignored = options.all_ignored_namespaces
    tasks: list[asyncio.Task[None]] = []

    @kopf.on.startup(registry=registry, id="audit-startup")
    async def start(**_: Any) -> None:
        auditor = started.set(Auditor(view, options, kube.api_client(), compiled, probes=probes))
        tasks.append(asyncio.create_task(auditor.run(), name="policy status writer"))
        tasks.append(asyncio.create_task(auditor.post_events(), name="audit event poster"))

    @kopf.on.cleanup(registry=registry, id="audit-cleanup")
    async def stop(**_: Any) -> None:
        await runtime.cancelled(tasks)
        auditor = started.take()
        if auditor is not None:
            auditor.close()

    def wanted(namespace: str | None, **_: Any) -> bool:
        return namespace not in ignored

    # Handlers are async on purpose: they then run in the event loop, one at a time, never in
    # kopf's thread pool, so the audit's maps (and the probe watch's) need no locks.
    async def workload_event(type: str | None, body: kopf.Body, **_: Any) -> None:
        started.get().workload_event(type, body)

    handlers = {kind.kind: workload_event for kind in kinds.AUDITED}
    if pods is not None:
        read_pod = pods

        # One handler for both readers of pods, not one each: kopf's work per handler per event,
        # not the readers', is most of what a second one costs.
        async def pod_event(type: str | None, body: kopf.Body, **_: Any) -> None:
            try:
                read_pod(type, body)
            except Exception:  # as kopf treats a handler of its own: logged, and the audit still runs
                log.exception("the probe watch failed on pod %s/%s", body.meta.namespace, body.meta.name)
            started.get().workload_event(type, body)

        handlers[kinds.POD.kind] = pod_event

    for kind in kinds.AUDITED:
        kopf.on.event(
            kind.group, kind.version, kind.plural, registry=registry, id=f"audit-{kind.plural}", when=wanted
        )(handlers[kind.kind])

    view.on_policy_change(lambda change: started.get().policy_changed(change))
    view.on_namespace_change(lambda change: started.get().namespace_changed(change))
