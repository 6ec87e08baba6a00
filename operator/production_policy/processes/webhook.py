"""``production-policy webhook``: a standalone kopf operator that only watches and serves admission.

kopf keeps the policy and namespace views current from watch streams (``on.event`` only: it
writes nothing to any object); the admission server answers from those views. It runs in every
webhook replica, and none is ever paused, so no replica serves from a stale view.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import kopf
from aiohttp import web

from production_policy.admission import server
from production_policy.processes import runtime
from production_policy.processes.clusterview import ClusterView, initial_sync, register_views

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WebhookOptions:
    """How the webhook process listens."""

    host: str
    port: int
    tls: server.TLSFiles | None
    cert_check_interval: float = 10.0


async def serve_admission(
    view: ClusterView, options: WebhookOptions
) -> tuple[web.AppRunner, list[asyncio.Task[None]]]:
    """Start the admission server (and its certificate reloader); returns what must be stopped."""
    tasks: list[asyncio.Task[None]] = []
    context = None
    if options.tls is not None:
        context = server.ssl_context(options.tls)
        tasks.append(
            asyncio.create_task(server.reload_when_rotated(context, options.tls, options.cert_check_interval))
        )
    runner = await server.serve(view, options.host, options.port, context)
    return runner, tasks


@dataclass(frozen=True)
class Served:
    """What ``admission_served`` serves from, and how to stop it without failing a call."""

    view: ClusterView
    runner: web.AppRunner

    async def drain(self) -> None:
        await server.drain(self.runner)


@contextlib.asynccontextmanager
async def admission_served(registry: kopf.OperatorRegistry, options: WebhookOptions) -> AsyncIterator[Served]:
    """Load the views, serve admission for the duration of the block, watch through ``registry``."""
    view = ClusterView()
    register_views(registry, view)
    await asyncio.get_running_loop().run_in_executor(None, initial_sync, view)
    runner, tasks = await serve_admission(view, options)
    try:
        yield Served(view, runner)
    finally:
        for task in tasks:
            task.cancel()
        await runner.cleanup()


async def run_webhook(options: WebhookOptions) -> None:
    """The webhook process: watch, serve; on a signal, drain the connections while still watching
    (the view stays current for the last answers), then stop."""
    registry = runtime.new_registry()
    async with admission_served(registry, options) as served:
        await runtime.run_operator(registry, before_stopping=served.drain)
