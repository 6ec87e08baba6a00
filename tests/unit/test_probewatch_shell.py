"""The probe watch's shell with the API server faked: the Events, the status and the metric it gives."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, cast

import kopf
import pytest
from prometheus_client import REGISTRY

from production_policy import kube
from production_policy.audit import register_audit
from production_policy.audit.auditor import Auditor
from production_policy.cli import _controller_options, build_parser
from production_policy.engine.audit import WorkloadRef
from production_policy.engine.probewatch import (
    PROBE_FAILING,
    PROBE_RECOVERED,
    PROBE_RESTORED,
    PROBE_WITHDRAWN,
    Thresholds,
    kubelet_report,
    roll_patch,
)
from production_policy.probewatch import ProbeWatcher, register_probewatch
from production_policy.probewatch import watcher as watcher_module
from production_policy.probewatch.kubelet import field_selector
from production_policy.processes import runtime
from production_policy.processes.clusterview import ClusterView
from production_policy.processes.options import ControllerOptions
from tests.support.engine import TCP_AUTO
from tests.unit.test_audit_auditor import NS, FakeAPI, api, flush_all, make_auditor, policy_body, workload
from tests.unit.test_probewatch import T0, WEB, a_pod, an_event

__all__ = ["api"]  # the fixture, shared with the audit's tests

LIVENESS = {
    "match": {"namespaces": [NS]},
    "probes": {"liveness": {"default": {"httpGet": {"path": "/healthz", "port": "auto"}}}},
}


def failures_metric(probe: str) -> float:
    value = REGISTRY.get_sample_value("production_policy_injected_probe_failures", {"probe": probe})
    return value or 0.0


def setup(monkeypatch: pytest.MonkeyPatch) -> tuple[ProbeWatcher, Auditor, list[kube.EventSpec], list[float]]:
    auditor, view, _ = make_auditor()
    now = [T0]
    started: runtime.Started[Auditor] = runtime.Started("the audit")
    started.set(auditor)
    watcher = ProbeWatcher(view, ControllerOptions(instance="test"), started, clock=lambda: now[0])
    auditor.probes = watcher.tally
    posted: list[kube.EventSpec] = []

    def post(event: kube.EventSpec) -> None:
        if event.reason in (PROBE_FAILING, PROBE_RECOVERED):  # not the policy's own PolicyReady
            posted.append(event)

    monkeypatch.setattr(auditor, "post", post)
    view.policy_event("ADDED", "liveness", policy_body("liveness", LIVENESS))
    auditor.workload_event(
        None, {**workload("web"), "metadata": {"name": "web", "namespace": NS, "uid": "uid-web"}}
    )
    return watcher, auditor, posted, now


def restart(watcher: ProbeWatcher, now: list[float], count: int) -> None:
    for n in range(1, count + 1):
        now[0] = T0 + n * 60
        for reason in ("Unhealthy", "Killing"):
            report = kubelet_report(an_event(reason=reason, at=n * 60 - 1))
            assert report is not None
            watcher.kubelet_reported(report)
        body = a_pod(
            injected="app:liveness", restarts=n, ready=False, running_since=n * 60, last_exit_at=n * 60
        )
        watcher.pod_event("MODIFIED", body)


def test_a_failing_injected_liveness_probe_gives_events_a_status_entry_and_the_metric(
    api: FakeAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario() -> None:
        watcher, auditor, posted, now = setup(monkeypatch)
        before = failures_metric("liveness")
        watcher.pod_event(None, a_pod(injected="app:liveness"))
        restart(watcher, now, 2)
        assert posted == []
        restart(watcher, now, 3)
        workload_event, policy_event = posted
        assert (workload_event.reason, workload_event.warning) == (PROBE_FAILING, True)
        assert (
            workload_event.regarding["kind"] == "Deployment" and workload_event.regarding["uid"] == "uid-web"
        )
        assert policy_event.regarding == {
            "apiVersion": "productionpolicy.dev/v1alpha1",
            "kind": "ProductionPolicy",
            "name": "liveness",
            "uid": "uid-liveness",
        }
        assert "httpGet /healthz on port 8080" in policy_event.note
        assert failures_metric("liveness") == before + 1

        await flush_all(auditor)
        status = api.statuses["liveness"]
        assert status["probeFailingWorkloads"] == 1
        (entry,) = status["probeFailures"]
        assert (entry["kind"], entry["name"], entry["container"], entry["probe"]) == (
            "Deployment",
            "web",
            "app",
            "liveness",
        )
        assert "statuscode: 404" in entry["message"]

        restart(watcher, now, 3)  # observed again: nothing new to say
        assert len(posted) == 2

        watcher.pod_event("DELETED", a_pod(injected="app:liveness"))
        (recovered,) = posted[2:]
        assert recovered.reason == PROBE_RECOVERED and not recovered.warning
        assert failures_metric("liveness") == before
        await flush_all(auditor)
        assert api.statuses["liveness"]["probeFailingWorkloads"] == 0
        assert api.statuses["liveness"]["probeFailures"] == []

    asyncio.run(scenario())


def test_a_pod_without_an_injected_probe_is_not_kept(api: FakeAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    watcher, _, posted, _ = setup(monkeypatch)
    watcher.pod_event(None, a_pod(injected="app:resources.requests.cpu", restarts=9, last_exit_at=0))
    report = kubelet_report(an_event())
    assert report is not None
    watcher.kubelet_reported(report)
    assert len(watcher.watch) == 0 and posted == []


def test_the_controller_options_carry_the_thresholds_and_refuse_bad_ones(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = build_parser().parse_args(["controller", "--probe-restarts", "2", "--probe-unready-seconds", "30"])
    options = _controller_options(args)
    assert options.probe_watch and options.probe_thresholds == Thresholds(2, 600.0, 30.0)
    assert not _controller_options(build_parser().parse_args(["controller", "--no-probe-watch"])).probe_watch
    with pytest.raises(SystemExit):
        build_parser().parse_args(["controller", "--probe-window-seconds", "-1"])
    assert "--probe-window-seconds: -1 must be above 0" in capsys.readouterr().err


def test_switched_off_it_registers_nothing() -> None:
    registry = runtime.new_registry()
    options = ControllerOptions(instance="test", probe_watch=False)
    assert register_probewatch(registry, ClusterView(), options, runtime.Started("the audit")) is None


def pod_event(registry: kopf.OperatorRegistry, event_type: str | None, body: dict[str, Any]) -> None:
    """Run the one handler of pod events in ``registry`` (there must be exactly one) as kopf would."""
    (handler,) = [
        h for h in registry._watching.get_all_handlers() if h.selector and h.selector.any_name == "pods"
    ]
    fn = cast(Callable[..., Coroutine[Any, Any, None]], handler.fn)  # ours take what they use, and **_
    asyncio.run(fn(type=event_type, body=kopf.Body(cast(kopf.RawBody, body))))


def a_bare_pod(**kwargs: Any) -> dict[str, Any]:
    body = a_pod(**kwargs)
    del body["metadata"]["ownerReferences"]
    return body


def test_one_handler_of_pods_feeds_the_probe_watch_and_the_audit() -> None:
    auditor, view, _ = make_auditor()
    started: runtime.Started[Auditor] = runtime.Started("the audit")
    started.set(auditor)
    registry = runtime.new_registry()
    options = ControllerOptions(instance="test")
    watcher = register_probewatch(registry, view, options, started)
    assert watcher is not None
    register_audit(registry, view, options, started, probes=watcher.tally, pods=watcher.pod_event)
    body = a_bare_pod()
    bare = WorkloadRef("shop", "Pod", body["metadata"]["name"])

    pod_event(registry, None, body)
    assert watcher.watch.workloads() == [bare] and bare in auditor.subjects

    # Its injected annotation taken away: the probe watch forgets it (the audit still counts it).
    del body["metadata"]["annotations"]
    pod_event(registry, "MODIFIED", body)
    assert len(watcher.watch) == 0 and bare in auditor.subjects

    pod_event(registry, "DELETED", body)
    assert bare not in auditor.subjects


def test_a_failure_of_the_probe_watch_on_a_pod_does_not_keep_it_from_the_audit(
    caplog: pytest.LogCaptureFixture,
) -> None:
    auditor, view, _ = make_auditor()
    started: runtime.Started[Auditor] = runtime.Started("the audit")
    started.set(auditor)
    registry = runtime.new_registry()

    def broken(_type: str | None, _body: Mapping[str, Any]) -> None:
        raise ValueError("a bug in the probe watch")

    register_audit(registry, view, ControllerOptions(instance="test"), started, pods=broken)
    body = a_bare_pod()
    with caplog.at_level(logging.ERROR):
        pod_event(registry, None, body)
    assert WorkloadRef("shop", "Pod", body["metadata"]["name"]) in auditor.subjects
    assert "the probe watch failed on pod shop/web-abc12-p1" in caplog.text
    assert "a bug in the probe watch" in caplog.text


def test_without_the_probe_watch_the_audit_still_has_its_handler_of_pods() -> None:
    auditor, view, _ = make_auditor()
    started: runtime.Started[Auditor] = runtime.Started("the audit")
    started.set(auditor)
    registry = runtime.new_registry()
    register_audit(registry, view, ControllerOptions(instance="test"), started)
    body = a_bare_pod()
    pod_event(registry, None, body)
    assert WorkloadRef("shop", "Pod", body["metadata"]["name"]) in auditor.subjects


def test_the_kubelet_events_are_selected_by_the_api_server() -> None:
    selector = field_selector("Unhealthy", frozenset({"kube-system", "pp"}))
    assert (
        selector
        == "reason=Unhealthy,involvedObject.kind=Pod,metadata.namespace!=kube-system,metadata.namespace!=pp"
    )


def test_an_event_about_an_unknown_pod_is_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    watcher, _, posted, _ = setup(monkeypatch)
    report = kubelet_report(an_event(uid="elsewhere"))
    assert report is not None
    watcher.kubelet_reported(report)
    assert posted == [] and len(watcher.book) == 0


WITHDRAW = {
    "match": {"namespaces": [NS]},
    "probes": {
        "liveness": {
            "default": {"httpGet": {"path": "/healthz", "port": "auto"}},
            "onInjectedFailure": "Withdraw",
        }
    },
}


def test_withdraw_records_the_exemption_rolls_once_and_lifts_it_when_the_default_changes(
    api: FakeAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    rolls: list[tuple[str, str, str, dict[str, object]]] = []
    monkeypatch.setattr(
        kube, "patch_workload", lambda _api, kind, ns, name, patch: rolls.append((kind, ns, name, patch))
    )
    monkeypatch.setattr(watcher_module, "ROLL_SETTLE_SECONDS", 0.0)

    async def scenario() -> None:
        watcher, auditor, _, now = setup(monkeypatch)
        watcher.api = cast(kube.ApiClient, object())  # the call is faked
        said: list[kube.EventSpec] = []
        monkeypatch.setattr(auditor, "post", said.append)
        view = watcher.view
        view.policy_event("MODIFIED", "liveness", policy_body("liveness", WITHDRAW))
        watcher.pod_event(None, a_pod(injected="app:liveness"))
        restart(watcher, now, 3)
        reasons = [(event.reason, event.regarding["kind"]) for event in said]
        assert (PROBE_WITHDRAWN, "Deployment") in reasons and (PROBE_WITHDRAWN, "ProductionPolicy") in reasons
        await flush_all(auditor)
        (entry,) = api.statuses["liveness"]["withdrawnProbes"]
        assert entry["workload"] == {"kind": "Deployment", "namespace": NS, "name": "web"}
        assert (entry["container"], entry["probe"]) == ("app", "liveness")
        assert "statuscode: 404" in entry["lastFailure"]

        await watcher.roll_due()
        assert rolls == []  # the view does not have it yet: the webhooks may not either
        body = policy_body("liveness", WITHDRAW, **api.statuses["liveness"])
        view.policy_event("MODIFIED", "liveness", body)  # the status write, back through the watch
        await watcher.roll_due()  # seen
        await watcher.roll_due()  # and settled: rolled
        await watcher.roll_due()
        assert rolls == [("Deployment", NS, "web", roll_patch(watcher._exemptions_of(WEB)))]

        # A restart of the controller reads the withdrawal back from the status.
        again = ProbeWatcher(view, ControllerOptions(instance="test"), watcher.audit)
        assert again.tally("liveness").withdrawn == watcher.tally("liveness").withdrawn

        changed = {**WITHDRAW, "probes": {"liveness": {"default": TCP_AUTO, "onInjectedFailure": "Withdraw"}}}
        view.policy_event(
            "MODIFIED", "liveness", policy_body("liveness", changed, 2, **api.statuses["liveness"])
        )
        said.clear()
        watcher.decide(WEB)
        restored = [event for event in said if event.reason == PROBE_RESTORED]
        assert {event.regarding["kind"] for event in restored} == {"Deployment", "ProductionPolicy"}
        assert "changed its liveness default" in restored[0].note
        await flush_all(auditor)
        assert api.statuses["liveness"]["withdrawnProbes"] == []
        assert len(rolls) == 1

    asyncio.run(scenario())
