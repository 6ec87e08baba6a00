"""One look at a workload, end to end through the pure engine: managed?, baseline, rollout, patches."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from production_policy.api import ProductionPolicy
from production_policy.engine import SourceRef, compile_policy, key_digests
from production_policy.engine.names import (
    BASELINE_ANNOTATION,
    ROLLED_AT_ANNOTATION,
    TEMPLATE_DIGEST_ANNOTATION,
)
from production_policy.engine.rollout import (
    Action,
    InFlight,
    SourceData,
    WorkloadFacts,
    WorkloadState,
    Write,
    compact,
    decide,
    key_id,
)
from production_policy.engine.rollout.writes import format_time
from tests.support.rollout import facts, policy

KEY = b"secret hmac key of this install!"
KID = key_id(KEY)
REFS = (
    SourceRef("ConfigMap", "app", frozenset({"LOG_LEVEL"}), False),
    SourceRef("Secret", "db", None, False),
)
POLICY = policy("rollouts", namespaces=["shop"], debounceSeconds=2, minIntervalSeconds=0)


def sources(level: str = "info", password: str = "hunter2") -> dict[tuple[str, str], SourceData]:
    return {
        ("ConfigMap", "app"): SourceData(compact(key_digests(KEY, {"LOG_LEVEL": level, "other": "x"}))),
        ("Secret", "db"): SourceData(compact(key_digests(KEY, {"password": password}))),
    }


def look(
    now: float,
    workload: WorkloadFacts,
    data: dict[tuple[str, str], SourceData],
    *,
    policies: list[ProductionPolicy] | None = None,
    state: WorkloadState | None = None,
    labels: dict[str, str] | None = None,
    running: list[InFlight] | None = None,
    own: InFlight | None = None,
) -> Any:
    return decide(
        now,
        workload,
        policies=[compile_policy(p) for p in ([POLICY] if policies is None else policies)],
        namespace_labels=labels or {},
        ignored_namespaces={"kube-system"},
        sources=data,
        state=state,
        running=running or [],
        key_id=KID,
        own=own,
    )


def baselined(data: dict[tuple[str, str], SourceData]) -> WorkloadFacts:
    first = look(0, facts(references=REFS), data)
    assert first.write is Write.BASELINE
    return facts(references=REFS, baseline=first.patch["metadata"]["annotations"][BASELINE_ANNOTATION])


def test_unmanaged_workloads_are_left_alone() -> None:
    cases: list[tuple[WorkloadFacts, dict[str, Any]]] = [
        (facts(references=REFS), {"policies": []}),
        (facts(references=REFS), {"policies": [policy(enabled=False, namespaces=["shop"])]}),
        (facts(references=REFS), {"policies": [policy(namespaces=["elsewhere"])]}),
        (facts(references=REFS), {"policies": [policy(pod_selector={"tier": "db"})]}),
        (facts(references=REFS), {"policies": [policy(kinds=["StatefulSet", "DaemonSet"])]}),
        (facts(references=REFS, opted_out=True), {}),
        (facts(references=REFS, namespace="kube-system"), {"policies": [policy()]}),
        (facts(references=REFS), {"labels": {"productionpolicy.dev/ignore": "true"}}),
    ]
    reasons = []
    for workload, extra in cases:
        decision = look(0, workload, sources(), **extra)
        assert decision.write is Write.NONE and decision.patch is None and decision.state is None
        assert decision.settings is None and decision.why == ""
        reasons.append(decision.unmanaged)
    assert (
        reasons
        == ["no policy enables configRollout"] * 5 + ["opted out by annotation"] + ["namespace ignored"] * 2
    )


def test_a_policy_of_its_kind_manages_it() -> None:
    decision = look(0, facts(references=REFS), sources(), policies=[policy(kinds=["Deployment"])])
    assert decision.unmanaged is None and decision.write is Write.BASELINE


def test_first_sight_writes_a_baseline_on_the_metadata_only() -> None:
    decision = look(0, facts(references=REFS), sources())
    assert decision.write is Write.BASELINE and decision.step is None
    assert decision.patch == {
        "metadata": {
            "resourceVersion": "7",
            "annotations": {
                BASELINE_ANNOTATION: decision.patch["metadata"]["annotations"][BASELINE_ANNOTATION]
            },
        }
    }
    assert decision.why == "baseline recorded, no rollout: first sight"
    stored = json.loads(decision.patch["metadata"]["annotations"][BASELINE_ANNOTATION])
    assert set(stored["src"]) == {"ConfigMap/app", "Secret/db"}
    assert stored["src"]["ConfigMap/app"]["keys"] == ["LOG_LEVEL"]


def test_an_unreadable_baseline_or_another_key_gives_a_new_baseline_not_a_rollout() -> None:
    garbled = look(0, facts(references=REFS, baseline="{not json"), sources(level="changed"))
    assert garbled.write is Write.BASELINE and "unreadable" in garbled.why
    stored = baselined(sources()).baseline
    assert stored is not None
    rekeyed = decide(
        0,
        facts(references=REFS, baseline=stored),
        policies=[compile_policy(POLICY)],
        namespace_labels={},
        ignored_namespaces=(),
        sources=sources(level="changed"),
        state=None,
        running=[],
        key_id=key_id(b"another install's key"),
    )
    assert rekeyed.write is Write.BASELINE and "another digest key" in rekeyed.why


def test_nothing_changed_nothing_written() -> None:
    decision = look(10, baselined(sources()), sources())
    assert decision.write is Write.NONE and decision.step is not None and decision.step.action is Action.IDLE
    assert decision.why == ""


def test_an_unreferenced_key_changes_nothing() -> None:
    data = sources()
    data[("ConfigMap", "app")] = SourceData(compact(key_digests(KEY, {"LOG_LEVEL": "info", "other": "y"})))
    assert look(10, baselined(sources()), data).write is Write.NONE


def test_a_change_is_debounced_then_rolled_in_one_write() -> None:
    workload = baselined(sources())
    waiting = look(10, workload, sources(level="debug"))
    assert waiting.write is Write.NONE and waiting.step.action is Action.WAIT and waiting.step.wake_at == 12
    rolled = look(12, workload, sources(level="debug"), state=waiting.state)
    assert rolled.write is Write.ROLLOUT and rolled.step.action is Action.ROLL
    annotations = rolled.patch["metadata"]["annotations"]
    assert rolled.patch["metadata"]["resourceVersion"] == "7"
    assert annotations[ROLLED_AT_ANNOTATION] == format_time(12) == "1970-01-01T00:00:12Z"
    template = rolled.patch["spec"]["template"]["metadata"]["annotations"]
    assert set(template) == {TEMPLATE_DIGEST_ANNOTATION}
    assert [r.note for r in rolled.step.reports] == ["rolling restart: ConfigMap app key LOG_LEVEL changed"]
    # The new baseline compares as current: nothing more to do.
    after = facts(references=REFS, baseline=annotations[BASELINE_ANNOTATION], rolled_at=12)
    assert look(13, after, sources(level="debug"), state=rolled.state).write is Write.NONE


def test_a_reference_change_alone_rewrites_the_baseline_without_a_rollout() -> None:
    workload = baselined(sources())
    more = (*REFS, SourceRef("ConfigMap", "extra", None, True))
    decision = look(10, facts(references=more, baseline=workload.baseline), sources())
    assert decision.write is Write.BASELINE and "spec" not in decision.patch
    assert "ConfigMap extra" in decision.why


def test_a_full_cap_holds_a_due_rollout() -> None:
    capped = policy("rollouts", namespaces=["shop"], debounceSeconds=0, maxConcurrent=1)
    workload = baselined(sources())
    busy = [InFlight(frozenset({"rollouts"}), 5, 3)]
    queued = look(10, workload, sources(level="debug"), policies=[capped], running=busy)
    assert queued.write is Write.NONE and queued.step.action is Action.QUEUED
    other = [InFlight(frozenset({"another-policy"}), 5, 3)]
    assert look(10, workload, sources(level="debug"), policies=[capped], running=other).write is Write.ROLLOUT


def test_a_paused_deployment_is_reported_not_rolled() -> None:
    workload = baselined(sources())
    paused = facts(references=REFS, baseline=workload.baseline, paused=True)
    decision = look(
        10, paused, sources(level="debug"), policies=[policy(namespaces=["shop"], debounceSeconds=0)]
    )
    assert decision.write is Write.NONE and decision.step.action is Action.BLOCKED
    assert decision.step.reports[0].reason == "ConfigRolloutBlocked"


def test_a_deleted_required_secret_is_reported_not_rolled() -> None:
    workload = baselined(sources())
    data = sources(level="debug")
    del data[("Secret", "db")]
    decision = look(10, workload, data, policies=[policy(namespaces=["shop"], debounceSeconds=0)])
    assert decision.write is Write.NONE and decision.step.action is Action.BLOCKED
    assert "Secret db missing" in decision.step.reports[0].note


@given(st.text(max_size=40), st.text(max_size=40))
def test_no_value_ever_reaches_a_patch_a_report_or_a_log_line(old: str, new: str) -> None:
    old, new = f"canary-{old}", f"canary-{new}!"  # a marker that nothing else written contains
    workload = baselined(sources(password=old))
    first = look(10, workload, sources(level=new, password=new))
    rolled = look(1000, workload, sources(level=new, password=new), state=first.state)
    written = json.dumps(
        [workload.baseline, rolled.patch, first.why, rolled.why, [r.note for r in rolled.step.reports]]
    )
    assert rolled.write is Write.ROLLOUT
    assert "canary" not in written


def test_a_rollout_of_ours_still_running_is_reported_unless_already_known() -> None:
    workload = replace(baselined(sources()), rolled_at=5, settled=False)
    found = look(10, workload, sources())
    assert found.adopted == InFlight(frozenset({"rollouts"}), 5, workload.generation)
    known = look(10, workload, sources(), own=found.adopted)
    assert known.adopted is None
    assert look(10, replace(workload, opted_out=True), sources()).adopted is None  # not ours to count
