"""When dirty statuses are written: after a quiet second, at most a few seconds after the first change."""

from __future__ import annotations

from production_policy.engine.audit import DirtySet


def test_nothing_dirty_is_never_due() -> None:
    dirty = DirtySet()
    assert dirty.due_at() is None
    dirty.mark(set(), 10.0)
    assert dirty.due_at() is None


def test_a_single_change_is_written_after_the_quiet_period() -> None:
    dirty = DirtySet(quiet=1.0, max_delay=5.0)
    dirty.mark({"a"}, 10.0)
    assert dirty.due_at() == 11.0


def test_a_burst_is_written_once_it_pauses_or_after_the_maximum_delay() -> None:
    dirty = DirtySet(quiet=1.0, max_delay=5.0)
    for step in range(40):  # a change every 0.2 s for 8 s
        dirty.mark({"a"}, 10.0 + step * 0.2)
        assert dirty.due_at() == min(10.0 + step * 0.2 + 1.0, 15.0)


def test_a_burst_of_changes_costs_a_write_per_maximum_delay() -> None:
    dirty = DirtySet(quiet=1.0, max_delay=5.0)
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
    dirty = DirtySet()
    dirty.mark({"a", "b"}, 1.0)
    dirty.mark({"b", "c"}, 1.5)
    assert dirty.take() == {"a", "b", "c"}
    assert dirty.due_at() is None and dirty.take() == set()
