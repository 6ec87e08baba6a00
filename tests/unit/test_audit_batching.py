"""When pending work is done: statuses after a quiet second, at most a few seconds after the first
change; judging again after a quiet second too."""

from __future__ import annotations

from production_policy.engine.audit import PendingWork, Rejudge


def test_nothing_dirty_is_never_due() -> None:
    dirty = PendingWork()
    assert dirty.due_at() is None
    dirty.mark(set(), 10.0)
    assert dirty.due_at() is None


def test_a_single_change_is_written_after_the_quiet_period() -> None:
    dirty = PendingWork(quiet=1.0, max_delay=5.0)
    dirty.mark({"a"}, 10.0)
    assert dirty.due_at() == 11.0


def test_a_burst_is_written_once_it_pauses_or_after_the_maximum_delay() -> None:
    dirty = PendingWork(quiet=1.0, max_delay=5.0)
    for step in range(40):  # a change every 0.2 s for 8 s
        dirty.mark({"a"}, 10.0 + step * 0.2)
        assert dirty.due_at() == min(10.0 + step * 0.2 + 1.0, 15.0)


def test_a_burst_of_changes_costs_a_write_per_maximum_delay() -> None:
    dirty = PendingWork(quiet=1.0, max_delay=5.0)
    writes, now = 0, 0.0
    for _ in range(200):  # 200 changes, 0.1 s apart
        due = dirty.due_at()
        if due is not None and due <= now:
            writes += len(dirty.take())
        dirty.mark({"policy"}, now)
        now += 0.1
    writes += len(dirty.take())
    assert writes <= 20 // 5 + 1


def test_take_empties_the_set() -> None:
    dirty = PendingWork()
    dirty.mark({"a", "b"}, 1.0)
    dirty.mark({"b", "c"}, 1.5)
    assert dirty.take() == {"a", "b", "c"}
    assert dirty.due_at() is None and dirty.take() == set()


def test_judging_again_is_due_a_quiet_period_after_the_first_request() -> None:
    pending = PendingWork(quiet=1.0, max_delay=5.0)
    assert not pending.rejudge(frozenset(), 10.0)  # an empty scope is no work
    assert pending.due_at() is None and pending.take_rejudge() is None
    assert pending.rejudge(frozenset({"shop"}), 10.0)
    assert pending.rejudge(frozenset({"web"}), 10.5)
    assert pending.due_at() == 11.0
    pending.mark({"a"}, 10.8)
    assert pending.due_at() == 11.0  # the earlier of the two
    assert pending.take_rejudge() == Rejudge(False, frozenset({"shop", "web"}))
    assert pending.due_at() == 11.8 and pending.take_rejudge() is None
    assert pending.take() == {"a"}


def test_judging_everything_again_covers_every_namespace() -> None:
    pending = PendingWork()
    pending.rejudge(frozenset({"shop"}), 1.0)
    pending.rejudge(None, 2.0)
    scope = pending.take_rejudge()
    assert scope is not None and scope.everything and scope.covers("anywhere")
    assert Rejudge(False, frozenset({"shop"})).covers("shop")
    assert not Rejudge(False, frozenset({"shop"})).covers("web")
