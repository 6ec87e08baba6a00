"""The audit's shell with the API server faked: what is written, how often, and which Events go out."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable, Mapping
from typing import Any, cast

import pytest

from production_policy import kube
from production_policy.audit.auditor import Auditor
from production_policy.engine.audit import DEFAULTS_INJECTED, ready_condition
from production_policy.engine.names import INJECTED_ANNOTATION
from production_policy.processes.clusterview import ClusterView
from production_policy.processes.options import ControllerOptions
from tests.support.engine import TCP_AUTO, container, deployment, policy_dict, resources

NS = "shop"
STRICT = {
    "match": {"namespaces": [NS]},
    "enforcement": "Audit",
    "resources": {"require": {"requests": ["cpu"]}},
}


class FakeAPI:
    """Records status patches and Events; applies the patches to its copy of each policy."""

    def __init__(self) -> None:
        self.statuses: dict[str, dict[str, Any]] = {}
        self.patches: list[tuple[str, dict[str, Any]]] = []
        self.events: list[kube.EventSpec] = []

    def patch_status(self, _api: object, name: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        self.patches.append((name, copy.deepcopy(dict(patch))))
        status = {**self.statuses.get(name, {}), **patch["status"]}
        self.statuses[name] = {key: value for key, value in status.items() if value is not None}
        return {"status": copy.deepcopy(self.statuses[name])}

    def post_event(self, _api: object, event: kube.EventSpec, _instance: str) -> None:
        self.events.append(event)


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> FakeAPI:
    fake = FakeAPI()
    monkeypatch.setattr(kube, "patch_status", fake.patch_status)
    monkeypatch.setattr(kube, "post_event", fake.post_event)
    return fake


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make_auditor() -> tuple[Auditor, ClusterView, Clock]:
    view, clock = ClusterView(), Clock()
    options = ControllerOptions(operator_namespace="pp", instance="test")
    auditor = Auditor(view, options, cast(kube.ApiClient, object()), clock=clock)  # the calls are faked
    view.on_policy_change(auditor.policy_changed)
    view.on_namespace_change(auditor.namespace_changed)
    return auditor, view, clock


def policy_body(name: str, spec: dict[str, Any], generation: int = 1, **status: Any) -> dict[str, Any]:
    body = policy_dict(name, **spec)
    body["metadata"].update(uid=f"uid-{name}", generation=generation)
    if status:
        body["status"] = status
    return body


def put_policy(
    auditor: Auditor, view: ClusterView, body: dict[str, Any], event: str | None = "ADDED"
) -> None:
    view.policy_event(event, body["metadata"]["name"], body)  # the view tells the audit


def workload(name: str, cpu: str | None = None, **metadata: Any) -> dict[str, Any]:
    body = deployment(container(resources=resources({"cpu": cpu}) if cpu else None))
    body["metadata"] = {"name": name, "namespace": NS, "uid": f"uid-{name}", **metadata}
    return body


async def flush_all(auditor: Auditor) -> None:
    scope = auditor.pending.take_rejudge()
    if scope is not None:
        await auditor.rejudge(scope)
    for name in sorted(auditor.pending.take()):
        await auditor.flush(name)


def test_pre_existing_workloads_are_audited_when_the_policy_arrives(api: FakeAPI) -> None:
    async def scenario() -> None:
        auditor, view, _ = make_auditor()
        for body in (workload("good", cpu="1"), workload("bad-1"), workload("bad-2")):
            auditor.workload_event(None, body)
        put_policy(auditor, view, policy_body("strict", STRICT))
        await flush_all(auditor)
        status = api.statuses["strict"]
        assert (status["matchedWorkloads"], status["nonCompliantWorkloads"]) == (3, 2)
        assert [v["name"] for v in status["violations"]] == ["bad-1", "bad-2"]
        assert status["observedGeneration"] == 1
        await flush_all(auditor)
        assert len(api.patches) == 1  # nothing changed: nothing written

        auditor.workload_event("MODIFIED", workload("bad-1", cpu="1"))  # fixed
        auditor.workload_event("DELETED", workload("bad-2"))
        await flush_all(auditor)
        status = api.statuses["strict"]
        assert (status["matchedWorkloads"], status["nonCompliantWorkloads"], status["violations"]) == (
            2,
            0,
            [],
        )
        assert len(api.patches) == 2

    asyncio.run(scenario())


def test_our_own_status_write_coming_back_changes_nothing(api: FakeAPI) -> None:
    async def scenario() -> None:
        auditor, view, _ = make_auditor()
        auditor.workload_event(None, workload("bad"))
        put_policy(auditor, view, policy_body("strict", STRICT))
        await flush_all(auditor)
        put_policy(auditor, view, policy_body("strict", STRICT, **api.statuses["strict"]), "MODIFIED")
        assert auditor.pending.take_rejudge() is None  # same spec: no re-judging
        await flush_all(auditor)
        assert len(api.patches) == 1

    asyncio.run(scenario())


def test_a_spec_change_judges_the_workloads_again(api: FakeAPI) -> None:
    async def scenario() -> None:
        auditor, view, _ = make_auditor()
        auditor.workload_event(None, workload("w", cpu="1"))
        put_policy(auditor, view, policy_body("strict", STRICT))
        await flush_all(auditor)
        assert api.statuses["strict"]["nonCompliantWorkloads"] == 0
        stricter = {**STRICT, "resources": {"require": {"requests": ["cpu", "memory"]}}}
        put_policy(
            auditor, view, policy_body("strict", stricter, generation=2, **api.statuses["strict"]), "MODIFIED"
        )
        await flush_all(auditor)
        assert api.statuses["strict"]["nonCompliantWorkloads"] == 1
        assert api.statuses["strict"]["observedGeneration"] == 2

    asyncio.run(scenario())


def test_an_unusable_policy_is_reported_with_an_event(api: FakeAPI) -> None:
    async def scenario() -> None:
        auditor, view, _ = make_auditor()
        broken = {**STRICT, "probes": {"readiness": {"default": {"tcpSocket": {"port": "a--b"}}}}}
        put_policy(auditor, view, policy_body("broken", broken), None)
        await flush_all(auditor)
        ready = ready_condition(api.statuses["broken"])
        assert ready is not None and (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
        assert "a--b" in ready["message"]
        fixed = {**STRICT, "probes": {"readiness": {"default": TCP_AUTO}}}
        put_policy(auditor, view, policy_body("broken", fixed, 2, **api.statuses["broken"]), "MODIFIED")
        await flush_all(auditor)
        await asyncio.sleep(0)
        poster = asyncio.create_task(auditor.post_events())
        await until(lambda: len(api.events) >= 2)
        await asyncio.sleep(0.05)  # and nothing more arrives
        poster.cancel()
        assert [(e.reason, e.warning, e.regarding["kind"]) for e in api.events] == [
            ("PolicyInvalid", True, "ProductionPolicy"),
            ("PolicyReady", False, "ProductionPolicy"),
        ]
        assert api.events[0].namespace == "default"

    asyncio.run(scenario())


def test_a_burst_of_changes_is_written_a_few_times_only(api: FakeAPI) -> None:
    async def scenario() -> None:
        auditor, view, clock = make_auditor()
        put_policy(auditor, view, policy_body("strict", STRICT))
        writer = asyncio.create_task(auditor.run())
        for step in range(200):  # 200 changes, 50 ms apart on the fake clock: 10 s
            auditor.workload_event("ADDED", workload(f"w{step // 2}", cpu="1" if step % 2 else None))
            clock.now += 0.05
            await asyncio.sleep(0)
        clock.now += 2
        auditor._wakeup.set()
        # The writer talks to the API from a worker thread: give it real time, bounded.
        await until(lambda: api.statuses.get("strict", {}).get("matchedWorkloads") == 100)
        writer.cancel()
        assert api.statuses["strict"]["matchedWorkloads"] == 100
        assert api.statuses["strict"]["nonCompliantWorkloads"] == 0
        assert 1 <= len(api.patches) <= 10 // 5 + 2

    asyncio.run(scenario())


def test_defaults_injected_events_on_changes_only(api: FakeAPI) -> None:
    async def scenario() -> None:
        auditor, view, _ = make_auditor()
        spec = {"match": {"namespaces": [NS]}, "probes": {"readiness": {"default": TCP_AUTO}}}
        put_policy(auditor, view, policy_body("defaults", spec))
        auditor.workload_event(None, workload("listed"))  # initial listing: never an Event
        auditor.workload_event("ADDED", workload("new"))
        auditor.workload_event("MODIFIED", workload("new", labels={"x": "y"}))  # template unchanged
        auditor.workload_event("MODIFIED", workload("listed"))  # unchanged since listed
        pod = {"apiVersion": "v1", "kind": "Pod", "spec": {"containers": [container()]},
               "metadata": {"name": "bare", "namespace": NS, "uid": "p",
                            "annotations": {INJECTED_ANNOTATION: "app:readiness"}}}  # fmt: skip
        auditor.workload_event("ADDED", pod)
        poster = asyncio.create_task(auditor.post_events())
        await until(lambda: len(api.events) >= 2)
        await asyncio.sleep(0.05)  # and nothing more arrives
        poster.cancel()
        assert [(e.reason, e.regarding["kind"], e.regarding["name"]) for e in api.events] == [
            (DEFAULTS_INJECTED, "Deployment", "new"),
            (DEFAULTS_INJECTED, "Pod", "bare"),
        ]
        assert "app:readiness" in api.events[0].note

    asyncio.run(scenario())


def test_controlled_objects_leave_the_books(api: FakeAPI) -> None:
    auditor, view, _ = make_auditor()
    put_policy(auditor, view, policy_body("strict", STRICT))
    auditor.workload_event("ADDED", workload("adopted"))
    assert len(auditor.book) == 1
    owner = {"apiVersion": "apps/v1", "kind": "X", "name": "o", "uid": "o", "controller": True}
    auditor.workload_event("MODIFIED", workload("adopted", ownerReferences=[owner]))
    assert len(auditor.book) == 0 and auditor.subjects == {}


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Real time for work done in worker threads, bounded: a loaded machine must not fail the test."""
    for _ in range(int(timeout / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)


def test_a_namespace_is_judged_again_only_when_its_labels_change(api: FakeAPI) -> None:
    async def scenario() -> None:
        auditor, view, _ = make_auditor()
        labelled = {**STRICT, "match": {"namespaceSelector": {"matchLabels": {"tier": "prod"}}}}
        put_policy(auditor, view, policy_body("strict", labelled))
        auditor.workload_event(None, workload("bad"))
        await flush_all(auditor)
        assert api.statuses["strict"]["matchedWorkloads"] == 0
        view.namespace_event(None, NS, {"tier": "prod"})  # first sight of its labels
        await flush_all(auditor)
        assert api.statuses["strict"]["nonCompliantWorkloads"] == 1
        view.namespace_event("MODIFIED", NS, {"tier": "prod"})  # the same labels again: nothing to do
        assert auditor.pending.take_rejudge() is None
        view.namespace_event("MODIFIED", NS, {"tier": "dev"})
        await flush_all(auditor)
        assert api.statuses["strict"]["matchedWorkloads"] == 0
        view.namespace_event("DELETED", NS, None)  # its workloads' own DELETED events follow
        assert auditor.pending.take_rejudge() is None

    asyncio.run(scenario())


def test_a_deleted_policy_is_no_longer_written(api: FakeAPI) -> None:
    async def scenario() -> None:
        auditor, view, _ = make_auditor()
        put_policy(auditor, view, policy_body("strict", STRICT))
        auditor.workload_event(None, workload("bad"))
        put_policy(auditor, view, policy_body("strict", STRICT), "DELETED")
        await flush_all(auditor)
        assert api.patches == [] and auditor.records == {}

    asyncio.run(scenario())
