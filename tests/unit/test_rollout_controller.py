"""The controller's loop with the API server faked: what it writes, when, and what it posts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import replace
from types import SimpleNamespace
from typing import Any, cast

import pytest

from production_policy import kube
from production_policy.engine import SourceRef
from production_policy.engine.names import BASELINE_ANNOTATION as BASELINE
from production_policy.engine.rollout import WorkloadFacts, decode
from production_policy.processes.clusterview import ClusterView
from production_policy.processes.options import ControllerOptions
from production_policy.rollout.controller import RETRY_SECONDS, Controller
from production_policy.rollout.sources import source_data
from tests.support.engine import policy_dict
from tests.support.rollout import applied, facts

NO_API = cast(kube.ApiClient, SimpleNamespace(close=lambda: None))
"""Where the API client goes; these tests replace every call that would use it."""

KEY = b"k" * 32
ROLLOUTS = {"enabled": True, "debounceSeconds": 0, "minIntervalSeconds": 0, "maxConcurrent": 1}


class FakeAPI:
    """Workload patches and Events, recorded; a patch fails while ``failing`` is set."""

    def __init__(self) -> None:
        self.patches: list[tuple[str, dict[str, Any]]] = []
        self.events: list[tuple[str, str]] = []
        self.failing: Exception | None = None
        self.attempts = 0
        self.generations: dict[str, int] = {}

    def patch_workload(
        self, _api: object, _kind: str, _namespace: str, name: str, patch: dict[str, Any]
    ) -> kube.Patched:
        self.attempts += 1
        if self.failing is not None:
            raise self.failing
        self.patches.append((name, patch))
        # A patch carries the resourceVersion it was decided on; a template change is a new generation.
        generation = self.generations.get(name, facts().generation) + ("spec" in patch)
        self.generations[name] = generation
        return kube.Patched(str(int(patch["metadata"]["resourceVersion"]) + 1), generation)

    def post_event(self, _api: object, event: kube.EventSpec, _instance: str) -> None:
        self.events.append((event.regarding["name"], event.reason))


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> FakeAPI:
    fake = FakeAPI()
    monkeypatch.setattr(kube, "patch_workload", fake.patch_workload)
    monkeypatch.setattr(kube, "post_event", fake.post_event)
    return fake


async def until(condition: Callable[[], object], timeout: float = 5.0) -> None:
    """Real time for the writes made in worker threads, bounded."""
    for _ in range(int(timeout / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


def workload(name: str) -> WorkloadFacts:
    return facts(name=name, uid=name, references=(SourceRef("ConfigMap", "app", None, False),))


def make_controller() -> Controller:
    view = ClusterView()
    view.put_policy(policy_dict("rollouts", match={"namespaces": ["shop"]}, configRollout=ROLLOUTS))
    controller = Controller(view, ControllerOptions(operator_namespace="pp"), NO_API, KEY)
    controller.sources["ConfigMap"]._replace(
        {"shop": {"app": source_data(KEY, {"data": {"level": "info"}})}}, "5"
    )
    controller.sources["Secret"]._replace({}, "5")
    return controller


def change_the_configmap(controller: Controller) -> None:
    controller.sources["ConfigMap"]._put(("shop", "app"), source_data(KEY, {"data": {"level": "debug"}}), "6")


async def baselined(controller: Controller, api: FakeAPI, *names: str) -> None:
    """First sight: each gets its baseline written, no rollout; the watch brings the new versions."""
    for name in names:
        controller.workload_seen(workload(name))
    await until(lambda: len(api.patches) == len(names))
    assert all("spec" not in patch for _, patch in api.patches)
    for name, patch in api.patches:
        controller.workload_seen(applied(workload(name), patch, "8"))
    api.patches.clear()


def test_a_change_rolls_one_workload_at_a_time_under_a_cap_of_one(api: FakeAPI) -> None:
    async def scenario() -> None:
        controller = make_controller()
        loop = asyncio.create_task(controller.run())
        try:
            await baselined(controller, api, "a", "b")
            change_the_configmap(controller)
            await until(lambda: api.events)
            assert [(name, "spec" in patch) for name, patch in api.patches] == [("a", True)]
            assert api.events == [("a", "ConfigRollout")]
            assert list(controller.fleet.in_flight) == [("Deployment", "shop", "a")]
            before = controller.workloads.get(("Deployment", "shop", "a"))
            assert before is not None
            rolling = applied(before, api.patches[0][1], "9")
            controller.workload_seen(rolling)  # still rolling: b stays queued
            await asyncio.sleep(0.05)
            assert len(api.patches) == 1
            # a's rollout is done: its place is free, and b goes.
            controller.workload_seen(
                replace(rolling, settled=True, observed_generation=rolling.generation, resource_version="10")
            )
            await until(lambda: len(api.events) == 2)
            assert [name for name, _ in api.patches] == ["a", "b"]
            assert api.events[1] == ("b", "ConfigRollout")
            assert list(controller.fleet.in_flight) == [("Deployment", "shop", "b")]
        finally:
            loop.cancel()
            controller.close()

    asyncio.run(scenario())


@pytest.mark.parametrize("failure", [kube.Conflict("changed"), RuntimeError("connection reset")])
def test_a_write_that_fails_gives_its_place_back(api: FakeAPI, failure: Exception) -> None:
    async def scenario() -> None:
        controller = make_controller()
        loop = asyncio.create_task(controller.run())
        try:
            await baselined(controller, api, "a")
            api.failing = failure
            started = time.time()
            change_the_configmap(controller)
            await until(lambda: api.attempts == 2 and not controller._writes)
            assert controller.fleet.in_flight == {}  # the place reserved at decision time is given back
            assert api.patches == [] and api.events == []
            wake_at = controller.fleet.wake_at()
            if isinstance(failure, kube.Conflict):
                assert wake_at is None  # looked at again when its next version arrives
            else:
                assert wake_at is not None and wake_at >= started + RETRY_SECONDS
        finally:
            loop.cancel()
            controller.close()

    asyncio.run(scenario())


@pytest.mark.parametrize("created", [True, False])
def test_a_workload_created_just_after_a_change_is_baselined_on_the_new_data(
    api: FakeAPI, monkeypatch: pytest.MonkeyPatch, created: bool
) -> None:
    """Its ADDED event overtakes the change on the ConfigMaps' watch: its sources are read afresh
    (a found-by-listing workload's are not), so the change, delivered next, rolls only the workload
    that existed before it, once."""
    reads: list[str] = []

    def read_source(_api: object, kind: str, namespace: str, name: str) -> dict[str, Any]:
        reads.append(f"{kind} {namespace}/{name}")
        return {"metadata": {"resourceVersion": "6"}, "data": {"level": "debug"}}

    monkeypatch.setattr(kube, "read_source", read_source)

    async def scenario() -> None:
        controller = make_controller()
        loop = asyncio.create_task(controller.run())
        try:
            await baselined(controller, api, "old")
            await controller.workload_arrived(workload("new"), created=created)
            await until(lambda: len(api.patches) == 2 if created else api.patches)
            written = dict(api.patches)
            assert reads == (["ConfigMap shop/app"] if created else [])
            if not created:
                # Only the cache, which has not seen the change: the old data.
                assert list(written) == ["new"] and "spec" not in written["new"]
                return
            assert "spec" in written["old"] and "spec" not in written["new"]
            tracked = decode(written["new"]["metadata"]["annotations"][BASELINE])
            assert tracked is not None
            debug = source_data(KEY, {"data": {"level": "debug"}}).digests
            assert tracked.sources[("ConfigMap", "app")].digests == dict(debug)
            for name, patch in api.patches:
                controller.workload_seen(applied(workload(name), patch, "9"))
            api.patches.clear()
            change_the_configmap(controller)  # the watch delivers the change read already: nothing
            await asyncio.sleep(0.1)
            assert api.patches == [] and api.events == [("old", "ConfigRollout")]
        finally:
            loop.cancel()
            controller.close()

    asyncio.run(scenario())
