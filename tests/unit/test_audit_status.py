"""A policy's desired status, when it needs writing, and its Ready Events."""

from __future__ import annotations

from production_policy.api import MAX_STATUS_VIOLATIONS, ProductionPolicyStatus
from production_policy.engine.audit import (
    BECAME_INVALID,
    BECAME_READY,
    Listed,
    PolicyFacts,
    Tally,
    WorkloadRef,
    desired_status,
    ready_condition,
    ready_event,
    status_patch,
)
from production_policy.engine.audit.events import NOTE_MAX_BYTES

T0, T1 = "2025-01-01T00:00:00Z", "2025-01-01T00:05:00Z"
VALID = PolicyFacts("web", 3, "Enforce")
INVALID = PolicyFacts(
    "web", 4, None, "spec.probes.readiness.default.tcpSocket.port: 'a--b' must be auto or ..."
)
TOP = (
    Listed(WorkloadRef("shop", "Deployment", "a"), 'container "app": no readinessProbe'),
    Listed(WorkloadRef("shop", "Pod", "b"), "pod: QoS class BestEffort is below Burstable"),
)
TALLY = Tally(3, 2, TOP)


def test_a_valid_policy_reports_counts_violations_and_ready() -> None:
    status = desired_status(VALID, TALLY, None, T0)
    assert status["observedGeneration"] == 3
    assert (status["matchedWorkloads"], status["nonCompliantWorkloads"]) == (3, 2)
    assert status["violations"] == [
        {
            "namespace": "shop",
            "kind": "Deployment",
            "name": "a",
            "message": 'container "app": no readinessProbe',
        },
        {
            "namespace": "shop",
            "kind": "Pod",
            "name": "b",
            "message": "pod: QoS class BestEffort is below Burstable",
        },
    ]
    ready = ready_condition(status)
    assert ready is not None
    assert (ready["status"], ready["reason"], ready["lastTransitionTime"], ready["observedGeneration"]) == (
        "True", "Active", T0, 3)  # fmt: skip
    assert "Enforce" in ready["message"]
    ProductionPolicyStatus.model_validate(status)  # fits the CRD's schema


def test_an_unusable_policy_says_why_and_matches_nothing() -> None:
    status = desired_status(INVALID, TALLY, None, T0)
    ready = ready_condition(status)
    assert ready is not None and (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    assert "tcpSocket.port" in ready["message"]
    assert (status["matchedWorkloads"], status["nonCompliantWorkloads"], status["violations"]) == (0, 0, [])


def test_recomputing_an_unchanged_status_needs_no_write() -> None:
    first = desired_status(VALID, TALLY, None, T0)
    again = desired_status(VALID, TALLY, first, T1)
    assert again == first  # the transition time is carried over
    assert status_patch(first, again) is None


def test_a_count_change_keeps_the_transition_time() -> None:
    first = desired_status(VALID, TALLY, None, T0)
    fixed = desired_status(VALID, Tally(3, 1, TALLY.top[:1]), first, T1)
    assert status_patch(first, fixed) == {"status": fixed}
    ready = ready_condition(fixed)
    assert ready is not None and ready["lastTransitionTime"] == T0


def test_a_ready_change_moves_the_transition_time() -> None:
    first = desired_status(VALID, TALLY, None, T0)
    broken = desired_status(INVALID, TALLY, first, T1)
    ready = ready_condition(broken)
    assert ready is not None and ready["lastTransitionTime"] == T1


def test_fields_the_controller_no_longer_sets_are_removed() -> None:
    desired = desired_status(VALID, TALLY, None, T0)
    patch = status_patch({**desired, "legacy": 1}, desired)
    assert patch is not None and patch["status"]["legacy"] is None


def test_the_top_list_is_cut_to_the_schema_bound() -> None:
    top = tuple(Listed(WorkloadRef("shop", "Pod", f"p{i}"), "x") for i in range(MAX_STATUS_VIOLATIONS + 5))
    status = desired_status(VALID, Tally(30, 25, top), None, T0)
    assert len(status["violations"]) == MAX_STATUS_VIOLATIONS


def test_events_on_ready_transitions_only() -> None:
    ready = desired_status(VALID, TALLY, None, T0)
    invalid = desired_status(INVALID, TALLY, ready, T1)
    became_ready = ready_event(None, ready)
    assert became_ready is not None and (became_ready.reason, became_ready.warning) == (BECAME_READY, False)
    became_invalid = ready_event(ready, invalid)
    assert became_invalid is not None and (became_invalid.reason, became_invalid.warning) == (
        BECAME_INVALID,
        True,
    )
    assert "tcpSocket.port" in became_invalid.note
    assert ready_event(ready, desired_status(VALID, Tally(), ready, T1)) is None  # only counts changed
    assert ready_event(invalid, desired_status(VALID, TALLY, invalid, T1)) is not None  # fixed


def test_event_notes_fit_the_events_api() -> None:
    long = PolicyFacts("web", 1, None, "é" * 5000)
    event = ready_event(None, desired_status(long, Tally(), None, T0))
    assert event is not None and len(event.note.encode()) <= NOTE_MAX_BYTES
