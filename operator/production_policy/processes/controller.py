"""``production-policy controller``: config rollouts and the policy audit, in one process of its own.

With leader election (the default), the process first waits for the Lease, serving only /metrics
(its health check) meanwhile; once it holds the Lease it starts watching and acting. A replica that
cannot renew the Lease in time exits at once: it must not write after another replica has taken over.
"""

from __future__ import annotations

import asyncio
import logging
import os

from production_policy import kube
from production_policy.apiserver import register_compiled
from production_policy.audit import Auditor, register_audit
from production_policy.engine.names import LEASE_NAME
from production_policy.probewatch import register_probewatch
from production_policy.processes import runtime
from production_policy.processes.clusterview import ClusterView, initial_sync, register_views
from production_policy.processes.leadership import LeaderElector, LeadershipLost
from production_policy.processes.options import ControllerOptions
from production_policy.rollout import register_controller

log = logging.getLogger(__name__)

LOST_EXIT_CODE = 3


async def run_controller(options: ControllerOptions) -> None:
    """Hold the Lease (unless election is off), then watch and roll until SIGINT/SIGTERM."""
    if not options.leader_election:
        await _act(options)
        return
    api = kube.api_client()
    elector = LeaderElector(
        kube.LeaseStore(api, options.operator_namespace, LEASE_NAME),
        options.operator_namespace,
        LEASE_NAME,
        options.instance,
    )
    try:
        await elector.acquire()
        acting = asyncio.create_task(_act(options), name="controller")
        keeping = asyncio.create_task(elector.keep(), name="lease renewal")
        await asyncio.wait({acting, keeping}, return_when=asyncio.FIRST_COMPLETED)
        if keeping.done():
            _exit_lost(keeping)
        await runtime.cancelled([keeping])
        acting.result()
    finally:
        await elector.release()
        api.close()


def _exit_lost(keeping: asyncio.Task[None]) -> None:
    error = keeping.exception()
    log.critical("stopping at once: %s", error if isinstance(error, LeadershipLost) else repr(error))
    logging.shutdown()
    # Not a graceful shutdown: writes in flight must not finish after another replica took over.
    os._exit(LOST_EXIT_CODE)


async def _act(options: ControllerOptions) -> None:
    view = ClusterView()
    registry = runtime.new_registry()
    register_views(registry, view)  # first: the view must be current before the controller looks
    register_controller(registry, view, options)
    audit: runtime.Started[Auditor] = runtime.Started("the audit")
    compiled = register_compiled(registry, view, options, audit)
    probes = register_probewatch(
        registry, view, options, audit, compiled.withdrawals_applied if compiled is not None else None
    )
    register_audit(
        registry,
        view,
        options,
        audit,
        compiled.condition if compiled is not None else None,
        probes.tally if probes is not None else None,
        probes.pod_event if probes is not None else None,
    )
    await asyncio.to_thread(initial_sync, view)
    await runtime.run_operator(registry)
