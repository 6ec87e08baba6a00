"""``production-policy controller``: config rollouts and the policy audit, in one process of its own."""

from __future__ import annotations

import asyncio

from production_policy.audit import register_audit
from production_policy.processes import runtime
from production_policy.processes.clusterview import ClusterView, initial_sync, register_views
from production_policy.processes.options import ControllerOptions
from production_policy.rollout import register_controller


async def run_controller(options: ControllerOptions) -> None:
    """Load the policies and namespaces, then watch and roll until SIGINT/SIGTERM."""
    view = ClusterView()
    registry = runtime.new_registry()
    register_views(registry, view)  # first: the view must be current before the controller looks
    register_controller(registry, view, options)
    register_audit(registry, view, options)
    await asyncio.to_thread(initial_sync, view)
    await runtime.run_operator(registry)
