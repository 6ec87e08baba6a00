"""The rollout state machine: debounce, minimum interval, breaker, blocked, cap."""

from __future__ import annotations

from dataclasses import replace

from production_policy.engine.rollout import schedule as s
from production_policy.engine.rollout.baseline import Missing, SourceChange
from production_policy.engine.rollout.settings import RolloutSettings
from tests.support.rollout import facts

SETTINGS = RolloutSettings(
    debounce_seconds=2,
    min_interval_seconds=30,
    max_rollouts_per_window=3,
    window_seconds=600,
    max_concurrent={"p": 5},
)
CHANGE = (SourceChange("ConfigMap", "app", ("LOG_LEVEL",)),)


def look(
    now: float,
    state: s.WorkloadState,
    data: str = "v1",
    *,
    changes: tuple[SourceChange, ...] = CHANGE,
    rolled_at: float | None = None,
    settings: RolloutSettings = SETTINGS,
    blocked: s.Blocker | None = None,
    capacity: bool = True,
) -> s.Step:
    return s.step(
        now,
        state,
        data=data,
        changes=changes,
        rolled_at=rolled_at,
        settings=settings,
        blocked=blocked,
        capacity=capacity,
    )


def test_no_change_is_idle_and_forgets_a_pending_change() -> None:
    pending = look(0, s.WorkloadState())
    assert pending.action is s.Action.WAIT
    reverted = look(1, pending.state, "v0", changes=())
    assert reverted.action is s.Action.IDLE and reverted.state.pending is None and reverted.wake_at is None


def test_a_change_waits_for_the_debounce_then_rolls_and_names_the_keys() -> None:
    first = look(100, s.WorkloadState())
    assert first.action is s.Action.WAIT and first.wake_at == 102 and "LOG_LEVEL" in first.why
    assert look(101.9, first.state).action is s.Action.WAIT
    rolled = look(102, first.state)
    assert rolled.action is s.Action.ROLL and rolled.state.pending is None and rolled.state.rollouts == (102,)
    assert rolled.reports == (
        s.Report("ConfigRollout", "rolling restart: ConfigMap app key LOG_LEVEL changed"),
    )


def test_a_burst_of_edits_inside_the_debounce_gives_one_rollout_with_the_latest_data() -> None:
    state = s.WorkloadState()
    for i in range(10):
        result = look(100 + i * 0.5, state, f"v{i}")
        assert result.action is s.Action.WAIT
        state = result.state
    assert result.wake_at == 104.5 + 2
    assert look(106.5, state, "v9").action is s.Action.ROLL


def test_a_never_settling_source_still_rolls_after_the_maximum_debounce() -> None:
    state = s.WorkloadState()
    now = 100.0
    while True:
        result = look(now, state, f"v{now}")
        if result.action is s.Action.ROLL:
            break
        state, now = result.state, now + 1
    assert now == 100 + s.DEBOUNCE_MAX_FACTOR * SETTINGS.debounce_seconds


def test_the_minimum_interval_counts_from_the_stored_rollout_time() -> None:
    result = look(100, s.WorkloadState(), rolled_at=90)
    assert result.action is s.Action.WAIT and result.wake_at == 120
    assert look(120, result.state, rolled_at=90).action is s.Action.ROLL


def test_the_minimum_interval_counts_from_our_own_rollouts() -> None:
    rolled = look(102, look(100, s.WorkloadState()).state)
    again = look(110, rolled.state, "v2")
    assert again.action is s.Action.WAIT and again.wake_at == 132


def test_the_breaker_opens_reports_once_and_closes_after_a_still_window() -> None:
    fast = replace(SETTINGS, min_interval_seconds=0, debounce_seconds=0)
    state = s.WorkloadState()
    for i in range(3):
        result = look(100 + i * 10, state, f"v{i}", settings=fast)
        assert result.action is s.Action.ROLL
        state = result.state
    opened = look(130, state, "v3", settings=fast)
    assert opened.action is s.Action.BREAKER and opened.state.breaker_open
    assert [r.reason for r in opened.reports] == ["ConfigRolloutBreakerOpen"] and opened.reports[0].warning
    assert "3 times within 600s" in opened.reports[0].note and "LOG_LEVEL" in opened.reports[0].note
    assert opened.wake_at == 730
    # Still flapping: stays open, no new report, and the wait restarts from the latest change.
    flapping = look(200, opened.state, "v4", settings=fast)
    assert flapping.action is s.Action.BREAKER and flapping.reports == () and flapping.wake_at == 800
    closed = look(800, flapping.state, "v4", settings=fast)
    assert closed.action is s.Action.ROLL and not closed.state.breaker_open
    assert [r.reason for r in closed.reports] == ["ConfigRolloutBreakerClosed", "ConfigRollout"]
    assert closed.state.rollouts == (800,)


def test_the_breaker_closes_when_idle_after_a_still_window() -> None:
    state = s.WorkloadState(data="v1", changed=100, breaker_open=True, rollouts=(90, 95, 99))
    idle = look(200, state, "v1", changes=())
    assert idle.action is s.Action.IDLE and idle.wake_at == 700 and idle.state.breaker_open
    later = look(700, idle.state, "v1", changes=())
    assert not later.state.breaker_open and [r.reason for r in later.reports] == [
        "ConfigRolloutBreakerClosed"
    ]


def test_rollouts_older_than_the_window_do_not_count() -> None:
    state = s.WorkloadState(rollouts=(0, 1, 2))
    assert look(700, state, settings=replace(SETTINGS, debounce_seconds=0)).action is s.Action.ROLL


def test_a_blocked_workload_is_reported_once_per_change() -> None:
    paused = s.Blocker("paused", "the Deployment is paused; it is rolled when resumed")
    state = look(100, s.WorkloadState()).state
    blocked = look(102, state, blocked=paused)
    assert blocked.action is s.Action.BLOCKED and blocked.wake_at is None
    assert blocked.reports[0].reason == "ConfigRolloutBlocked" and blocked.reports[0].warning
    assert "LOG_LEVEL" in blocked.reports[0].note and "paused" in blocked.reports[0].note
    again = look(103, blocked.state, blocked=paused)
    assert again.action is s.Action.BLOCKED and again.reports == () and again.why == ""
    newer = look(104, again.state, "v2", blocked=paused)  # newer data: debounced, then reported again
    assert newer.action is s.Action.WAIT and newer.wake_at == 106
    assert look(106, newer.state, "v2", blocked=paused).reports != ()
    assert look(106, newer.state, "v2").action is s.Action.ROLL  # resumed


def test_a_full_cap_queues_and_logs_once() -> None:
    state = look(100, s.WorkloadState()).state
    queued = look(102, state, capacity=False)
    assert queued.action is s.Action.QUEUED and queued.reports == () and "queued" in queued.why
    again = look(103, queued.state, capacity=False)
    assert again.action is s.Action.QUEUED and again.why == ""
    assert look(104, again.state).action is s.Action.ROLL


def test_blockers() -> None:
    assert s.blocker(facts(), ()) is None
    assert s.blocker(facts(paused=True), ()) == s.Blocker(
        "paused", "the Deployment is paused; it is rolled when resumed"
    )
    on_delete = s.blocker(facts(kind="StatefulSet", on_delete=True), ())
    assert on_delete is not None and on_delete.key == "on-delete" and "OnDelete" in on_delete.note
    missing = s.blocker(facts(), (Missing("Secret", "db"), Missing("ConfigMap", "app", ("a", "b"))))
    assert missing is not None and missing.key == "missing"
    assert "Secret db, ConfigMap app (keys a, b)" in missing.note


def test_long_notes_are_cut_to_the_event_limit() -> None:
    many = tuple(
        SourceChange("ConfigMap", f"map-{i}", tuple(f"key-{j}" for j in range(20))) for i in range(20)
    )
    result = look(102, look(100, s.WorkloadState(), changes=many).state, changes=many)
    assert len(result.reports[0].note) == s.NOTE_MAX and result.reports[0].note.endswith("...")


def test_capacity_is_per_policy() -> None:
    def flight(*policies: str) -> s.InFlight:
        return s.InFlight(frozenset(policies), 0, 1)

    assert s.has_capacity({"a": 1}, [])
    assert not s.has_capacity({"a": 1}, [flight("a")])
    assert s.has_capacity({"a": 1}, [flight("b")])
    assert not s.has_capacity({"a": 2, "b": 1}, [flight("b")])
    assert s.has_capacity({"a": 2, "b": 2}, [flight("a", "b")])
    assert not s.has_capacity({"a": 2}, [flight("a", "b"), flight("a")])


def test_a_rollout_runs_until_the_workload_settles_on_its_generation() -> None:
    flight = s.InFlight(frozenset({"p"}), since=100, generation=5)
    assert s.still_running(flight, facts(observed_generation=4, settled=True), 110)
    assert s.still_running(flight, facts(observed_generation=5, settled=False), 110)
    assert not s.still_running(flight, facts(observed_generation=5, settled=True), 110)
    assert not s.still_running(flight, None, 110)
    assert not s.still_running(
        flight, facts(observed_generation=5, settled=False), 100 + s.ROLLOUT_TIMEOUT_SECONDS
    )
    assert not s.still_running(flight, facts(paused=True), 110)


def test_a_rollout_of_ours_still_running_after_a_restart_is_adopted() -> None:
    recent = facts(rolled_at=100, settled=False, generation=4)
    assert s.adopt_running(recent, frozenset({"p"}), 110) == s.InFlight(frozenset({"p"}), 100, 4)
    assert s.adopt_running(facts(rolled_at=100, settled=True), frozenset({"p"}), 110) is None
    assert s.adopt_running(facts(rolled_at=None, settled=False), frozenset({"p"}), 110) is None
    assert s.adopt_running(recent, frozenset({"p"}), 100 + s.ROLLOUT_TIMEOUT_SECONDS) is None
