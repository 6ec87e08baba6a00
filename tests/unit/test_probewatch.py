"""The probe watch's decision: which injected probes fail a workload, and what is reported."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from production_policy.engine.audit import WorkloadRef
from production_policy.engine.audit.events import NOTE_MAX_BYTES
from production_policy.engine.names import INJECTED_ANNOTATION
from production_policy.engine.probewatch import (
    PROBE_FAILING,
    Failure,
    FailureBook,
    KubeletReport,
    ProbeWatch,
    Thresholds,
    failing_note,
    injected_probes,
    kubelet_report,
    pod_facts,
    recovered_note,
    remedy,
    status_message,
    workload_of,
)
from tests.support.engine import TCP_AUTO, policy

T0 = 1_800_000_000.0
WEB = WorkloadRef("shop", "Deployment", "web")
HEALTHZ = {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 10}
TCP = {"tcpSocket": {"port": 8080}}
POLICIES = [
    policy(
        "baseline",
        match={"namespaces": ["shop"]},
        probes={
            "liveness": {"default": {"httpGet": {"path": "/healthz", "port": "auto"}}},
            "readiness": {"default": TCP_AUTO},
        },
    )
]


def when(seconds: float) -> str:
    return datetime.fromtimestamp(T0 + seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def a_pod(
    uid: str = "p1",
    *,
    injected: str = "app:liveness,app:readiness",
    probes: dict[str, Any] | None = None,
    restarts: int = 0,
    ready: bool = True,
    started: bool | None = True,
    running_since: float | None = 0.0,
    last_exit_at: float | None = None,
    created: float = 0.0,
    template: str = "abc12",
    unready_since: float | None = None,
    owner: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A Deployment's pod (ReplicaSet web-<template>) whose container "app" has these probes and status."""
    container: dict[str, Any] = {"name": "app", "image": "busybox", "ports": [{"containerPort": 8080}]}
    container.update(probes if probes is not None else {"livenessProbe": HEALTHZ, "readinessProbe": TCP})
    status: dict[str, Any] = {"name": "app", "restartCount": restarts, "ready": ready, "state": {}}
    if started is not None:
        status["started"] = started
    if running_since is not None:
        status["state"] = {"running": {"startedAt": when(running_since)}}
    if last_exit_at is not None:
        status["lastState"] = {
            "terminated": {"reason": "Error", "exitCode": 137, "finishedAt": when(last_exit_at)}
        }
    conditions = []
    if unready_since is not None:
        conditions.append(
            {"type": "ContainersReady", "status": "False", "lastTransitionTime": when(unready_since)}
        )
    owners = (
        [owner]
        if owner is not None
        else [
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": f"web-{template}",
                "controller": True,
                "uid": "rs",
            }
        ]
    )
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"web-{template}-{uid}",
            "namespace": "shop",
            "uid": uid,
            "creationTimestamp": when(created),
            "labels": {"app": "web", "pod-template-hash": template},
            "annotations": {INJECTED_ANNOTATION: injected},
            "ownerReferences": owners,
        },
        "spec": {"containers": [container]},
        "status": {"startTime": when(created), "containerStatuses": [status], "conditions": conditions},
    }


def an_event(
    uid: str = "p1",
    reason: str = "Killing",
    message: str | None = None,
    at: float = 0.0,
    container: str = "app",
) -> dict[str, Any]:
    if message is None:
        message = (
            f"Container {container} failed liveness probe, will be restarted"
            if reason == "Killing"
            else "Liveness probe failed: HTTP probe failed with statuscode: 404"
        )
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "reason": reason,
        "message": message,
        "involvedObject": {"kind": "Pod", "uid": uid, "fieldPath": f"spec.containers{{{container}}}"},
        "lastTimestamp": when(at),
    }


def watch_of(*bodies: dict[str, Any], now: float = 0.0, thresholds: Thresholds | None = None) -> ProbeWatch:
    watch = ProbeWatch(thresholds)
    for body in bodies:
        feed(watch, body, now)
    return watch


def feed(watch: ProbeWatch, body: dict[str, Any], now: float = 0.0) -> None:
    if body["kind"] == "Pod":
        facts = pod_facts(body)
        assert facts is not None
        watch.pod(facts, T0 + now)
    else:
        report = kubelet_report(body)
        assert report is not None
        watch.report(report)


def failures(watch: ProbeWatch, now: float, ref: WorkloadRef = WEB) -> tuple[Failure, ...]:
    return watch.failures(ref, T0 + now, {}, POLICIES)


def restart_loop(watch: ProbeWatch, restarts: int, every: float = 60.0, uid: str = "p1") -> float:
    """The kubelet kills the container for failing liveness ``restarts`` times, ``every`` seconds."""
    now = 0.0
    for count in range(1, restarts + 1):
        now = count * every
        feed(watch, an_event(uid, "Unhealthy", at=now - 5), now)
        feed(watch, an_event(uid, "Killing", at=now - 1), now)
        feed(watch, a_pod(uid, restarts=count, ready=False, running_since=now, last_exit_at=now), now)
    return now


# What is kept.


def test_the_annotation_names_the_injected_probes_per_container_and_nothing_else() -> None:
    found = injected_probes("app:readiness,app:resources.requests.cpu,side:liveness,app:startup,bad")
    assert found == {"app": frozenset({"readiness", "startup"}), "side": frozenset({"liveness"})}
    assert injected_probes(None) == {} and injected_probes(7) == {}


def test_a_pod_without_an_injected_probe_is_not_kept() -> None:
    assert pod_facts(a_pod(injected="app:resources.requests.cpu")) is None
    assert pod_facts(a_pod(injected="")) is None


def test_a_probe_the_user_wrote_is_not_kept_even_beside_an_injected_one() -> None:
    facts = pod_facts(a_pod(injected="app:readiness"))  # the liveness probe is the user's
    assert facts is not None
    assert set(facts.containers[0].injected) == {"readiness"}


def test_a_pod_is_read_whatever_its_shape() -> None:
    body = a_pod()
    body["status"] = {"containerStatuses": "nonsense"}
    facts = pod_facts(body)
    assert facts is not None and facts.containers[0].restarts == 0 and not facts.containers[0].ready
    assert pod_facts({"metadata": "x"}) is None


@pytest.mark.parametrize(
    ("owner", "labels", "expected"),
    [
        (
            {"kind": "ReplicaSet", "apiVersion": "apps/v1", "name": "web-abc12"},
            {"pod-template-hash": "abc12"},
            ("Deployment", "web"),
        ),
        (
            {"kind": "ReplicaSet", "apiVersion": "apps/v1", "name": "cache"},
            {"pod-template-hash": "abc12"},
            ("ReplicaSet", "cache"),
        ),
        (
            {"kind": "ReplicaSet", "apiVersion": "apps/v1", "name": "web-abc12"},
            {},
            ("ReplicaSet", "web-abc12"),
        ),
        ({"kind": "StatefulSet", "apiVersion": "apps/v1", "name": "db"}, {}, ("StatefulSet", "db")),
        ({"kind": "Job", "apiVersion": "batch/v1", "name": "once"}, {}, ("Job", "once")),
        ({"kind": "Deployment", "apiVersion": "example.com/v1", "name": "fake"}, {}, ("Pod", "pod")),
        (None, {}, ("Pod", "pod")),
    ],
)
def test_a_pod_belongs_to_the_workload_that_controls_it(
    owner: dict[str, Any] | None, labels: dict[str, str], expected: tuple[str, str]
) -> None:
    metadata: dict[str, Any] = {"name": "pod", "labels": labels}
    if owner is not None:
        metadata["ownerReferences"] = [{**owner, "controller": True}]
    assert workload_of("shop", metadata) == WorkloadRef("shop", *expected)


def test_the_kubelet_events_read_are_probe_failures_and_probe_kills() -> None:
    unhealthy = kubelet_report(
        an_event(reason="Unhealthy", message="Readiness probe failed: dial tcp: refused")
    )
    assert unhealthy == KubeletReport(
        "p1", "app", "readiness", False, "Readiness probe failed: dial tcp: refused", T0
    )
    killed = kubelet_report(an_event(message="Container app failed startup probe, will be restarted"))
    assert killed is not None and killed.killed and killed.probe == "startup"
    assert kubelet_report(an_event(message="Stopping container app")) is None  # a deletion, not a probe
    assert kubelet_report({**an_event(), "involvedObject": {"kind": "Node", "uid": "n"}}) is None
    assert kubelet_report({**an_event(), "reason": "BackOff"}) is None
    sidecar = an_event(reason="Unhealthy")
    sidecar["involvedObject"]["fieldPath"] = "spec.initContainers{proxy}"
    assert (found := kubelet_report(sidecar)) is not None and found.container == "proxy"


def test_an_aggregated_event_counts_at_its_last_occurrence() -> None:
    event = {**an_event(at=0), "lastTimestamp": None, "series": {"lastObservedTime": when(90), "count": 4}}
    assert (found := kubelet_report(event)) is not None and found.at == T0 + 90


# Liveness and startup: restarts.


def test_an_injected_liveness_probe_restarting_the_container_is_a_failure_at_the_threshold() -> None:
    watch = watch_of(a_pod())
    restart_loop(watch, 2)
    assert failures(watch, 130) == ()
    now = restart_loop(watch, 3)
    (failure,) = failures(watch, now + 1)
    assert (failure.container, failure.probe, failure.policy) == ("app", "liveness", "baseline")
    assert failure.definition == HEALTHZ
    assert failure.kubelet_message == "Liveness probe failed: HTTP probe failed with statuscode: 404"
    assert failure.symptom == "restarted 3 times within 10m"


def test_restarts_the_kubelet_did_not_kill_for_a_probe_are_not_ours() -> None:
    watch = watch_of(a_pod())
    for count in range(1, 6):  # the application crashes by itself: no Killing Event
        feed(watch, a_pod(restarts=count, ready=False, last_exit_at=count * 30.0), count * 30.0)
    assert failures(watch, 200) == ()


def test_the_failure_clears_once_the_restarts_age_out_of_the_window() -> None:
    watch = watch_of(a_pod(), thresholds=Thresholds(window_seconds=300))
    now = restart_loop(watch, 3, every=30)
    assert failures(watch, now + 10)
    feed(watch, a_pod(restarts=3, ready=True, running_since=now), now + 20)
    assert failures(watch, now + 301) == ()


def test_a_restart_count_seen_first_on_an_old_pod_is_not_taken_as_recent() -> None:
    old = a_pod(restarts=7, ready=False, created=-7200, last_exit_at=-10)
    watch = watch_of(old)
    feed(watch, an_event(at=-11))
    assert failures(watch, 0) == ()  # only the last of the 7 restarts is known to be recent
    young = a_pod("p2", restarts=3, ready=False, created=-200, last_exit_at=-10)
    watch = watch_of(young)
    feed(watch, an_event("p2", at=-11))
    assert failures(watch, 0)


def test_a_failing_probe_the_user_wrote_is_never_reported() -> None:
    watch = watch_of(a_pod(injected="app:readiness"))
    for count in range(1, 6):
        now = count * 60.0
        report = kubelet_report(an_event(at=now))
        assert report is not None and watch.report(report) is None  # dropped: not ours
        feed(watch, a_pod(injected="app:readiness", restarts=count, ready=True, last_exit_at=now), now)
    assert failures(watch, 301) == ()


# Readiness and startup: unready.


def test_an_injected_readiness_probe_keeping_the_container_unready_past_the_grace_is_a_failure() -> None:
    watch = watch_of(a_pod(ready=False, running_since=0, unready_since=0))
    feed(
        watch,
        an_event(reason="Unhealthy", message="Readiness probe failed: dial tcp: connection refused", at=50),
    )
    assert failures(watch, 299) == ()
    (failure,) = failures(watch, 300)
    assert failure.probe == "readiness" and failure.kubelet_message.startswith("Readiness probe failed")
    feed(watch, a_pod(ready=True, running_since=0), 310)
    assert failures(watch, 400) == ()


def test_unready_counts_from_the_last_transition_not_the_container_start() -> None:
    watch = watch_of(a_pod(ready=False, running_since=0, unready_since=1000))
    assert failures(watch, 1200) == ()
    assert failures(watch, 1300)


def test_a_container_held_back_by_its_startup_probe_blames_startup_not_readiness() -> None:
    probes = {"readinessProbe": TCP, "startupProbe": HEALTHZ}
    watch = watch_of(a_pod(injected="app:readiness", probes=probes, ready=False, started=False))
    assert failures(watch, 1000) == ()  # the user's startup probe holds it: nothing of ours
    watch = watch_of(a_pod(injected="app:readiness,app:startup", probes=probes, ready=False, started=False))
    assert [f.probe for f in failures(watch, 1000)] == ["startup"]


# Workloads: templates, pods, policies.


def test_pods_of_an_older_template_do_not_count() -> None:
    watch = watch_of(a_pod())
    now = restart_loop(watch, 3)
    assert failures(watch, now)
    feed(watch, a_pod("p2", template="def34", created=now), now)  # the template changed
    assert failures(watch, now + 1) == ()
    assert watch.pod_gone("p1") == WEB and watch.pod_gone("p1") is None


def test_one_failure_per_container_and_probe_counts_its_pods() -> None:
    watch = watch_of(a_pod("p1"), a_pod("p2"))
    restart_loop(watch, 3, uid="p1")
    now = restart_loop(watch, 3, uid="p2")
    (failure,) = failures(watch, now)
    assert failure.pods == 2


def test_the_policy_named_is_the_one_whose_default_it_is_now() -> None:
    watch = watch_of(a_pod(ready=False, unready_since=0))
    stronger = policy("stronger", priority=500, probes={"readiness": {"default": TCP_AUTO}})
    (failure,) = watch.failures(WEB, T0 + 600, {}, [*POLICIES, stronger])
    assert failure.policy == "stronger"
    (failure,) = watch.failures(WEB, T0 + 600, {}, [])
    assert failure.policy is None and "onInjectedFailure" not in remedy(failure)


def test_thresholds_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        Thresholds(restarts=0)


# The book and the words.


def a_failure(name: str = "web", probe: Any = "liveness", policy_name: str | None = "baseline") -> Failure:
    return Failure(
        WorkloadRef("shop", "Deployment", name),
        "app",
        probe,
        HEALTHZ,
        "restarted 3 times within 10m",
        "Liveness probe failed: HTTP probe failed with statuscode: 404",
        policy_name,
    )


def test_the_book_reports_a_failure_once_and_its_recovery_once() -> None:
    book = FailureBook()
    first = book.record(WEB, (a_failure(),))
    assert first.new == (a_failure(),) and first.policies == {"baseline"}
    again = book.record(WEB, (a_failure(),))
    assert again.new == () and again.cleared == () and again.policies == frozenset()
    cleared = book.record(WEB, ())
    assert cleared.cleared == (a_failure(),) and cleared.policies == {"baseline"}
    assert book.tally("baseline", 10).failing_workloads == 0 and len(book) == 0


def test_the_tally_counts_workloads_and_lists_a_bounded_stable_list() -> None:
    book = FailureBook()
    for name in ("c", "a", "b"):
        ref = WorkloadRef("shop", "Deployment", name)
        book.record(ref, (a_failure(name), a_failure(name, "readiness")))
    book.record(WorkloadRef("shop", "Deployment", "x"), (a_failure("x", policy_name=None),))
    tally = book.tally("baseline", 4)
    assert tally.failing_workloads == 3
    assert [(f.workload.name, f.probe) for f in tally.top] == [
        ("a", "liveness"),
        ("a", "readiness"),
        ("b", "liveness"),
        ("b", "readiness"),
    ]


def test_the_event_names_container_probe_definition_kubelet_message_and_the_fix() -> None:
    note = failing_note(a_failure())
    for part in (
        'container "app"',
        "liveness",
        "httpGet /healthz on port 8080",
        "statuscode: 404",
        "livenessProbe",
        "baseline",
        "onInjectedFailure: Withdraw",
    ):
        assert part in note
    assert PROBE_FAILING == "InjectedProbeFailing"
    assert "Withdraw" not in remedy(a_failure(probe="readiness"))  # readiness is never withdrawn
    held = dataclasses.replace(a_failure(), held="not withdrawn: policy strict requires liveness")
    assert "Withdraw" not in remedy(held) and "write a livenessProbe" in remedy(held)
    long = Failure(WEB, "app", "liveness", HEALTHZ, "x", "é" * 2000, "baseline")
    assert len(failing_note(long).encode()) <= NOTE_MAX_BYTES and len(status_message(long)) <= 1024
    assert "no longer fails" in recovered_note(a_failure())


# Properties.

_kinds = st.sampled_from(["liveness", "readiness", "startup"])
_reports = st.lists(st.tuples(st.booleans(), _kinds, st.floats(min_value=0, max_value=900)), max_size=12)


@given(
    injected=st.sets(st.sampled_from(["readiness", "liveness", "startup"])),
    restarts=st.integers(min_value=0, max_value=20),
    ready=st.booleans(),
    started=st.sampled_from([True, False, None]),
    reports=_reports,
)
def test_only_injected_probes_are_ever_reported(
    injected: set[str],
    restarts: int,
    ready: bool,
    started: bool | None,
    reports: list[tuple[bool, str, float]],
) -> None:
    probes = {"livenessProbe": HEALTHZ, "readinessProbe": TCP, "startupProbe": TCP}
    entries = ",".join([f"app:{kind}" for kind in sorted(injected)] + ["app:resources.requests.cpu"])
    body = a_pod(
        injected=entries, probes=probes, restarts=restarts, ready=ready, started=started, last_exit_at=800
    )
    facts = pod_facts(body)
    if not injected:
        assert facts is None
        return
    assert facts is not None
    watch = ProbeWatch()
    watch.pod(facts, T0 + 800)
    for killed, kind, at in reports:
        watch.report(KubeletReport("p1", "app", kind, killed, f"{kind} failed", T0 + at))  # type: ignore[arg-type]
    assert {f.probe for f in failures(watch, 900)} <= injected


@given(reports=_reports, seed=st.randoms(use_true_random=False))
def test_the_order_kubelet_events_arrive_in_does_not_matter(
    reports: list[tuple[bool, str, float]], seed: Any
) -> None:
    def decided(order: list[tuple[bool, str, float]]) -> tuple[Failure, ...]:
        watch = watch_of(
            a_pod(
                injected="app:liveness,app:readiness,app:startup",
                restarts=3,
                ready=False,
                probes={"livenessProbe": HEALTHZ, "readinessProbe": TCP, "startupProbe": TCP},
                created=500,
                last_exit_at=800,
            ),
            now=800,
        )
        for killed, kind, at in order:
            watch.report(KubeletReport("p1", "app", kind, killed, f"{kind} {at}", T0 + at))  # type: ignore[arg-type]
        return failures(watch, 900)

    shuffled = list(reports)
    seed.shuffle(shuffled)
    assert [(f.key, f.kubelet_message) for f in decided(reports)] == [
        (f.key, f.kubelet_message) for f in decided(shuffled)
    ]
