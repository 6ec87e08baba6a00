"""Leader election's rules, with the Lease kept in memory and time faked: who may take it, and when."""

from __future__ import annotations

import asyncio
import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from production_policy import metrics
from production_policy.processes import leadership
from production_policy.processes.leadership import LeaderElector, LeadershipLost, held_spec, may_take


class MemoryLeases:
    """One Lease with resourceVersions and conflicts, as the API server keeps it."""

    def __init__(self) -> None:
        self.body: dict[str, Any] | None = None
        self.version = 0
        self.down = False

    def read(self) -> dict[str, Any] | None:
        if self.down:
            raise ConnectionError("API server unreachable")
        return copy.deepcopy(self.body)

    def create(self, body: dict[str, Any]) -> bool:
        if self.down:
            raise ConnectionError("API server unreachable")
        if self.body is not None:
            return False
        self._store(body)
        return True

    def replace(self, body: dict[str, Any]) -> bool:
        if self.down:
            raise ConnectionError("API server unreachable")
        assert self.body is not None
        if body["metadata"]["resourceVersion"] != self.body["metadata"]["resourceVersion"]:
            return False
        self._store(body)
        return True

    def _store(self, body: dict[str, Any]) -> None:
        self.version += 1
        self.body = copy.deepcopy(body)
        self.body["metadata"]["resourceVersion"] = str(self.version)

    @property
    def holder(self) -> str:
        assert self.body is not None
        return str(self.body["spec"]["holderIdentity"])


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


def elector(store: MemoryLeases, clock: Clock, identity: str) -> LeaderElector:
    return LeaderElector(store, "ops", "lock", identity, clock=clock, sleep=clock.sleep)


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def test_nobody_holds_it_so_the_first_replica_takes_it_at_once() -> None:
    store, clock = MemoryLeases(), Clock()
    a = elector(store, clock, "a")
    run(a.acquire())
    assert a.leading and store.holder == "a"
    assert metrics.LEADER._value.get() == 1
    assert store.body is not None and store.body["spec"]["leaseDurationSeconds"] == leadership.LEASE_SECONDS


def test_the_standby_waits_the_whole_lease_after_the_holder_stops_renewing() -> None:
    store, clock = MemoryLeases(), Clock()
    run(elector(store, clock, "a").acquire())  # then a dies: it never renews
    b = elector(store, clock, "b")
    started = clock.now
    run(b.acquire())
    waited = clock.now - started
    assert store.holder == "b"
    assert leadership.LEASE_SECONDS <= waited <= leadership.LEASE_SECONDS + leadership.RETRY_SECONDS
    assert store.body is not None and store.body["spec"]["leaseTransitions"] == 1


def test_a_renewed_lease_is_never_taken() -> None:
    store, clock = MemoryLeases(), Clock()
    a, b = elector(store, clock, "a"), elector(store, clock, "b")
    run(a.acquire())

    async def both() -> None:
        keeping = asyncio.create_task(a.keep())
        taking = asyncio.create_task(b.acquire())
        for _ in range(200):  # 400 fake seconds
            await asyncio.sleep(0)
        assert not taking.done()
        keeping.cancel()
        taking.cancel()

    run(both())
    assert store.holder == "a" and not b.leading


def test_a_leader_that_cannot_renew_gives_up_before_the_lease_runs_out() -> None:
    store, clock = MemoryLeases(), Clock()
    a = elector(store, clock, "a")
    run(a.acquire())
    renewed = clock.now
    store.down = True
    with pytest.raises(LeadershipLost):
        run(a.keep())
    assert not a.leading
    assert clock.now - renewed < leadership.LEASE_SECONDS  # before anyone else may take it
    assert metrics.LEADER._value.get() == 0


def test_a_clean_stop_releases_the_lease_and_the_standby_takes_it_at_its_next_try() -> None:
    store, clock = MemoryLeases(), Clock()
    a, b = elector(store, clock, "a"), elector(store, clock, "b")
    run(a.acquire())
    run(a.release())
    assert store.holder == ""
    started = clock.now
    run(b.acquire())
    assert store.holder == "b" and clock.now - started <= leadership.RETRY_SECONDS


def test_a_release_after_losing_the_lease_leaves_the_new_holder_alone() -> None:
    store, clock = MemoryLeases(), Clock()
    a, b = elector(store, clock, "a"), elector(store, clock, "b")
    run(a.acquire())
    run(b.acquire())  # a stopped renewing; b waited the lease out
    run(a.release())
    assert store.holder == "b"


def test_may_take() -> None:
    held = {"holderIdentity": "a", "leaseDurationSeconds": 15}
    assert may_take(held, "a", 0)
    assert may_take({"holderIdentity": ""}, "b", 0)
    assert may_take({}, "b", 0)
    assert not may_take(held, "b", 14.9)
    assert may_take(held, "b", 15)


def test_held_spec_keeps_the_acquire_time_and_counts_transitions() -> None:
    now = datetime(2026, 12, 1, 21, 0, 0, 123456, tzinfo=UTC)
    first = held_spec({}, "a", now)
    assert first["acquireTime"] == first["renewTime"] == "2026-12-01T21:00:00.123456Z"
    assert first["leaseTransitions"] == 0
    later = held_spec(first, "a", datetime(2026, 12, 1, 21, 0, 2, tzinfo=UTC))
    assert later["acquireTime"] == first["acquireTime"] and later["renewTime"] != first["renewTime"]
    taken = held_spec(later, "b", datetime(2026, 12, 1, 21, 0, 30, tzinfo=UTC))
    assert taken["leaseTransitions"] == 1 and taken["acquireTime"] == taken["renewTime"]
