"""What every kopf process of ours shares, and the promise that makes its shortcuts safe."""

from __future__ import annotations

import asyncio

import kopf
import pytest

from production_policy.audit import register_audit
from production_policy.processes import runtime
from production_policy.processes.clusterview import ClusterView, register_views
from production_policy.processes.options import ControllerOptions
from production_policy.rollout import register_controller


def test_no_change_detecting_handlers_so_no_diff_base_is_needed() -> None:
    # NoDiffBase is only right while nothing of ours needs kopf's diff base: every handler is on.event.
    registry = runtime.new_registry()
    view = ClusterView()
    options = ControllerOptions(operator_namespace="ops")
    register_views(registry, view)
    register_controller(registry, view, options)
    register_audit(registry, view, options, runtime.Started("the audit"))
    assert registry._watching.get_all_handlers(), "the registry under test has handlers"
    assert registry._changing.get_all_handlers() == []
    assert registry._spawning.get_all_handlers() == []
    assert registry._indexing.get_all_handlers() == []  # kopf's index gate is quadratic: see rollout.sources


def test_the_shared_settings() -> None:
    settings = kopf.OperatorSettings()
    runtime.configure(settings)
    assert isinstance(settings.persistence.diffbase_storage, runtime.NoDiffBase)
    assert settings.persistence.diffbase_storage.build(body=kopf.Body({"spec": {"a": 1}})) == {}
    assert settings.persistence.diffbase_storage.fetch(body=kopf.Body({})) is None
    assert settings.watching.chunk_size == runtime.LIST_CHUNK
    assert settings.queueing.idle_timeout == runtime.WORKER_IDLE_SECONDS
    assert settings.posting.enabled is False


def test_kopf_keeps_no_memory_of_the_objects_it_has_seen() -> None:
    memories = runtime.Unremembered()
    body: kopf.RawBody = {"metadata": {"uid": "u-1", "name": "web", "namespace": "apps"}}
    first = asyncio.run(memories.recall(body, noticed_by_listing=True))
    assert first.noticed_by_listing
    assert asyncio.run(memories.recall(body)) is not first, "a fresh memory for each event"
    assert list(memories.iter_all_memories()) == []


def test_what_startup_makes_is_there_for_the_handlers_after_it_and_only_then() -> None:
    started: runtime.Started[str] = runtime.Started("the thing")
    with pytest.raises(RuntimeError, match="the thing is used before"):
        started.get()
    assert started.take() is None and started.peek() is None  # startup failed: nothing to clean up
    assert started.set("made") == "made" and started.get() == "made" == started.peek()
    assert started.take() == "made"
    with pytest.raises(RuntimeError):
        started.get()


def test_cleanup_cancels_the_started_tasks_and_waits_for_each_to_end() -> None:
    ended: list[str] = []

    async def forever(name: str) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            ended.append(name)

    async def scenario() -> list[asyncio.Task[None]]:
        tasks = [asyncio.create_task(forever(name)) for name in ("a", "b")]
        done = asyncio.create_task(asyncio.sleep(0))  # one that already ended: awaited, no error
        await asyncio.sleep(0)
        await runtime.cancelled([*tasks, done])
        assert ended == ["a", "b"]  # both ran their cleanup before cancelled() returned
        return tasks

    assert all(task.cancelled() for task in asyncio.run(scenario()))
