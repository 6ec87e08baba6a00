"""What every kopf process of ours shares: login, settings, and how it runs."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Generic, TypeVar

import kopf
from kopf._core.reactor.inventory import ResourceMemories, ResourceMemory

from production_policy import kube


def new_registry() -> kopf.OperatorRegistry:
    """An empty registry that logs in as our processes do."""
    registry = kopf.OperatorRegistry()
    kopf.on.login(registry=registry)(kube.kopf_login)
    return registry


T = TypeVar("T")


class Started(Generic[T]):
    """What a startup handler builds (it needs the API), for the handlers that run after it.

    kopf starts no watch before every startup handler has succeeded, so a watch handler always
    finds it; the cleanup handler takes it back.
    """

    def __init__(self, what: str) -> None:
        self._what = what
        self._value: T | None = None

    def set(self, value: T) -> T:
        """Hold ``value`` from now on; returns it."""
        self._value = value
        return value

    def get(self) -> T:
        """The value; a RuntimeError (not a silent None) if the startup handler has not made it."""
        if self._value is None:
            raise RuntimeError(f"{self._what} is used before the operator's startup made it")
        return self._value

    def peek(self) -> T | None:
        """The value, or None before the startup handler made it."""
        return self._value

    def take(self) -> T | None:
        """The value, no longer held (None if it was never made: startup failed)."""
        value, self._value = self._value, None
        return value


async def cancelled(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Cancel the tasks and wait until each has ended (before their clients are closed)."""
    for task in tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


LIST_CHUNK = 50
"""Objects per page of kopf's initial listings. Small, so each page is handled before the next
arrives: objects that live only as long as their event, interleaved with the facts that stay,
otherwise leave the heap fragmented for good (pymalloc frees an arena only when all of it is free)."""

WORKER_IDLE_SECONDS = 0.2
"""How long kopf keeps an object's worker, and with it the object's last body, after its event.
kopf's default (5 s) keeps every body of an initial listing alive together."""


class NoDiffBase(kopf.DiffBaseStorage):
    """No diff base at all. Our processes register no change-detecting handlers (``on.create``,
    ``on.update``, ``on.field``, daemons, timers): only ``on.event``. kopf would otherwise deep-copy
    every object of every event into an "essence" that nothing reads."""

    def build(self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


class Unremembered(ResourceMemories):
    """kopf's per-object memories, never kept. kopf remembers every object it has seen (a memo, an
    error throttler, daemon and index bookkeeping, ~0.9 KB each, until the object is deleted) for
    what our processes never register: daemons, timers, indexes, change-detecting handlers and
    kopf's own patches. With ``on.event`` handlers only, a memory made afresh for each event (as
    kopf does for admission) serves the same."""

    async def recall(
        self,
        raw_body: kopf.RawBody,
        *,
        memobase: Any = None,
        noticed_by_listing: bool = False,
        ephemeral: bool = False,
    ) -> ResourceMemory:
        return await super().recall(
            raw_body, memobase=memobase, noticed_by_listing=noticed_by_listing, ephemeral=True
        )


def configure(settings: kopf.OperatorSettings) -> None:
    """Settings shared by our kopf processes: bounded timeouts, and kopf never posts events."""
    settings.posting.enabled = False
    settings.scanning.disabled = True
    settings.persistence.diffbase_storage = NoDiffBase()
    settings.watching.chunk_size = LIST_CHUNK
    settings.queueing.idle_timeout = WORKER_IDLE_SECONDS
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.request_timeout = 30
    # After SIGTERM, give the shutdown (unregistering webhooks, say) a minute, not kopf's ten.
    settings.process.ultimate_exiting_timeout = 60


async def run_operator(
    registry: kopf.OperatorRegistry, before_stopping: Callable[[], Awaitable[None]] | None = None
) -> None:
    """Run kopf standalone and cluster-wide until SIGINT/SIGTERM. With ``before_stopping``, the
    signal awaits it first, kopf still watching; kopf stops once it returns."""
    settings = kopf.OperatorSettings()
    configure(settings)
    stop = asyncio.Event()
    existing = asyncio.all_tasks()
    tasks = await kopf.spawn_tasks(
        registry=registry,
        settings=settings,
        memories=Unremembered(),
        standalone=True,
        clusterwide=True,
        stop_flag=stop if before_stopping is not None else None,
    )
    if before_stopping is not None:
        # spawn_tasks has just set kopf's own handlers (stop at once): these replace them.
        stop_on_signal(stop, before_stopping)
    await kopf.run_tasks(tasks, ignored=existing)


def stop_on_signal(stop: asyncio.Event, before_stopping: Callable[[], Awaitable[None]]) -> None:
    """On SIGINT or SIGTERM, await ``before_stopping`` and then set ``stop``; a second signal sets
    it at once."""
    loop = asyncio.get_running_loop()
    pending: list[asyncio.Task[None]] = []  # the running task, held: the loop keeps only weak references

    async def stop_after() -> None:
        try:
            await before_stopping()
        finally:
            stop.set()

    def on_signal() -> None:
        if pending:
            stop.set()
        else:
            pending.append(loop.create_task(stop_after(), name="before stopping"))

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal)
