"""The fleet ledger: places under the caps, from decision to write to the rollout's end; queue order."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from production_policy.api import ProductionPolicy
from production_policy.engine import SourceRef, compile_policy, key_digests
from production_policy.engine.rollout import (
    ROLLOUT_TIMEOUT_SECONDS,
    Action,
    Decision,
    Fleet,
    InFlight,
    Look,
    SourceData,
    WorkloadFacts,
    Write,
    compact,
    key_id,
)
from tests.support.rollout import applied, facts, policy

KID = key_id(b"secret hmac key of this install!")
REFS = (SourceRef("ConfigMap", "app", None, False),)
CAPPED = policy("p", namespaces=["shop"], debounceSeconds=0, minIntervalSeconds=0, maxConcurrent=1)


def data(version: str, name: str = "app") -> dict[tuple[str, str], SourceData]:
    return {("ConfigMap", name): SourceData(compact(key_digests(b"k" * 32, {"v": version})))}


def look(
    fleet: Fleet,
    now: float,
    workload: WorkloadFacts,
    version: str = "2",
    policies: list[ProductionPolicy] | None = None,
) -> Look:
    return fleet.look(
        now,
        workload,
        policies=[compile_policy(p) for p in ([CAPPED] if policies is None else policies)],
        namespace_labels={},
        ignored_namespaces=(),
        sources=data(version),
        key_id=KID,
    )


def baselined(name: str = "web", version: str = "1", **overrides: Any) -> WorkloadFacts:
    """A workload whose stored baseline is ``data(version)``, as a first look writes it."""
    first = look(Fleet(), 0, facts(name=name, references=REFS), version)
    assert first.decision is not None and first.decision.write is Write.BASELINE
    return replace(applied(facts(name=name, references=REFS), first.decision.patch or {}, "7"), **overrides)


def rolled(look: Look) -> Decision:
    assert look.decision is not None and look.decision.write is Write.ROLLOUT, look
    return look.decision


def test_a_decided_rollout_holds_its_place_before_its_write() -> None:
    fleet = Fleet()
    a, b = baselined("a"), baselined("b")
    decision = rolled(look(fleet, 10, a))
    assert fleet.in_flight == {a.key: InFlight(frozenset({"p"}), 10, a.generation + 1)}
    queued = look(fleet, 10, b)
    assert queued.decision is not None and queued.decision.step is not None
    assert queued.decision.step.action is Action.QUEUED
    # Written: the place is confirmed with what the write returned.
    fleet.written(a, decision, 11, resource_version="8", generation=5)
    assert fleet.in_flight == {a.key: InFlight(frozenset({"p"}), 11, 5)}


def test_a_failed_write_gives_its_place_back_and_the_queued_may_go() -> None:
    fleet = Fleet()
    a, b = baselined("a"), baselined("b")
    rolled(look(fleet, 10, a))
    look(fleet, 10, b)
    fleet.not_written(a.key)
    assert fleet.in_flight == {}
    fleet.not_written(a.key)  # twice, or after a write that reserved nothing: nothing to give back
    rolled(look(fleet, 11, b))


def test_a_failed_write_restores_the_rollout_that_was_already_counted() -> None:
    fleet = Fleet()
    # Rolled by us 30 s ago and still rolling when we restarted: counted, then rolled again.
    running = baselined(rolled_at=100, settled=False)
    decision = rolled(look(fleet, 130, running))
    adopted = InFlight(frozenset({"p"}), 100, running.generation)
    assert decision.adopted == adopted
    assert fleet.in_flight == {running.key: InFlight(frozenset({"p"}), 130, running.generation + 1)}
    fleet.not_written(running.key)
    assert fleet.in_flight == {running.key: adopted}


def test_a_rollout_still_running_after_a_restart_counts_against_the_cap() -> None:
    fleet = Fleet()
    running = baselined("a", rolled_at=100, settled=False)
    first = look(fleet, 110, running, version="1")  # nothing changed: no write, but counted
    assert first.decision is not None and first.decision.write is Write.NONE
    assert first.decision.adopted == InFlight(frozenset({"p"}), 100, running.generation)
    queued = look(fleet, 110, baselined("b"))
    assert queued.decision is not None and queued.decision.step is not None
    assert queued.decision.step.action is Action.QUEUED
    again = look(fleet, 111, running, version="1")
    assert again.decision is not None and again.decision.adopted is None  # known already: not twice
    # It finishes: its place is free, and the queued workload is named to be looked at again.
    done = look(fleet, 120, replace(running, settled=True, resource_version="9"), version="1")
    assert done.released and done.look_again == {("Deployment", "shop", "b")}
    assert fleet.in_flight == {}


def test_a_rollout_ends_when_the_workload_observed_its_generation_and_settled() -> None:
    fleet = Fleet()
    a = baselined("a")
    decision = rolled(look(fleet, 10, a))
    fleet.written(a, decision, 11, resource_version="8", generation=3)
    after = applied(a, decision.patch or {}, "8")
    assert not look(fleet, 12, replace(after, observed_generation=2, settled=True)).released  # not seen yet
    assert not look(fleet, 13, replace(after, observed_generation=3, settled=False)).released  # rolling
    finished = look(fleet, 14, replace(after, observed_generation=3, settled=True))
    assert finished.released and finished.look_again == frozenset() and fleet.in_flight == {}
    assert not look(fleet, 15, replace(after, observed_generation=3, settled=True)).released  # once


def test_our_own_write_coming_back_late_is_not_decided_on_again() -> None:
    fleet = Fleet()
    a = baselined("a")
    decision = rolled(look(fleet, 10, a))
    fleet.written(a, decision, 11, resource_version="8", generation=3)
    stale = look(fleet, 12, a)  # the watch still has the version our write replaced
    assert stale == Look(None)
    assert fleet.in_flight[a.key].generation == 3
    fresh = look(fleet, 13, applied(a, decision.patch or {}, "8"))
    assert fresh.decision is not None and fresh.decision.write is Write.NONE
    # Once the watch is past our write, nothing is left to skip, and nothing is kept of it.
    assert fleet._written == {}
    assert look(fleet, 14, applied(a, decision.patch or {}, "9")).decision is not None


def test_a_write_that_changed_nothing_leaves_no_stale_mark() -> None:
    fleet = Fleet()
    first = look(fleet, 0, facts(references=REFS), "1")
    assert first.decision is not None and first.decision.write is Write.BASELINE
    fleet.written(facts(references=REFS), first.decision, 1, resource_version="7", generation=2)
    assert look(fleet, 2, facts(references=REFS), "1").decision is not None
    assert fleet.in_flight == {}  # a baseline write is no rollout


def test_a_deleted_workload_frees_its_place_and_is_forgotten() -> None:
    fleet = Fleet()
    a, b = baselined("a"), baselined("b")
    decision = rolled(look(fleet, 10, a))
    fleet.written(a, decision, 11, resource_version="8", generation=3)
    look(fleet, 12, b)
    gone = fleet.gone(a.key)
    assert gone == Look(None, released=True, look_again=frozenset({b.key}))
    assert fleet.in_flight == {} and fleet.wake_at() is None
    assert fleet.gone(a.key) == Look(None)  # gone twice: nothing more to free
    # Nothing of it is left: the same name created again is a new workload, not stale.
    assert rolled(look(fleet, 13, a)).adopted is None


def test_an_unmanaged_workload_is_forgotten_but_its_rollout_counts_until_done() -> None:
    fleet = Fleet()
    a = baselined("a")
    decision = rolled(look(fleet, 10, a))
    fleet.written(a, decision, 11, resource_version="8", generation=3)
    rolling = applied(a, decision.patch or {}, "8")
    opted_out = look(fleet, 12, replace(rolling, opted_out=True, resource_version="9"))
    assert opted_out.decision is not None and opted_out.decision.unmanaged == "opted out by annotation"
    assert a.key in fleet.in_flight  # still rolling: it still takes a place under the cap
    queued = look(fleet, 12, baselined("b"))
    assert queued.decision is not None and queued.decision.step is not None
    assert queued.decision.step.action is Action.QUEUED


def test_wake_up_times_timeouts_and_retries() -> None:
    fleet = Fleet()
    slow = policy("p", namespaces=["shop"], debounceSeconds=5, minIntervalSeconds=0, maxConcurrent=1)
    waiting = look(fleet, 10, baselined("a"), policies=[slow])
    assert waiting.decision is not None and waiting.decision.step is not None
    assert waiting.decision.step.action is Action.WAIT
    assert fleet.wake_at() == 15
    assert fleet.take_due(14) == set()
    assert fleet.take_due(15) == {("Deployment", "shop", "a")}
    assert fleet.take_due(15) == set() and fleet.wake_at() is None  # used up
    fleet.retry_at(("Deployment", "shop", "a"), 40)
    assert fleet.wake_at() == 40
    # A rollout in flight is due when it times out, so it stops holding its place.
    b = baselined("b")
    decision = rolled(look(fleet, 20, b))
    fleet.written(b, decision, 21, resource_version="8", generation=3)
    assert fleet.wake_at() == 40
    fleet.take_due(40)
    assert fleet.wake_at() == 21 + ROLLOUT_TIMEOUT_SECONDS
    assert fleet.take_due(21 + ROLLOUT_TIMEOUT_SECONDS) == {b.key}
    timed_out = look(fleet, 21 + ROLLOUT_TIMEOUT_SECONDS, applied(b, decision.patch or {}, "8"))
    assert timed_out.released and fleet.in_flight == {}


def test_a_kept_decision_without_a_wake_up_time_clears_the_old_one() -> None:
    fleet = Fleet()
    slow = policy("p", namespaces=["shop"], debounceSeconds=5, minIntervalSeconds=0, maxConcurrent=1)
    look(fleet, 10, baselined("a"), policies=[slow])
    assert fleet.wake_at() == 15
    look(fleet, 11, baselined("a"), version="1", policies=[slow])  # changed back: nothing pending
    assert fleet.wake_at() is None


def test_the_longest_waiting_change_is_looked_at_first() -> None:
    fleet = Fleet()
    slow = policy("p", namespaces=["shop"], debounceSeconds=100, minIntervalSeconds=0, maxConcurrent=1)
    look(fleet, 30, baselined("early"), policies=[slow])
    look(fleet, 20, baselined("earlier"), policies=[slow])
    look(fleet, 40, baselined("same"), version="1", policies=[slow])  # nothing pending
    keys = [("Deployment", "shop", name) for name in ("zz-unknown", "same", "early", "earlier", "aa-unknown")]
    assert [key[2] for key in fleet.order(keys)] == ["earlier", "early", "aa-unknown", "same", "zz-unknown"]


# The caps under any interleaving of looks, writes, failures, deliveries, progress and deletions.

NAMES = [f"w{i}" for i in range(5)]
"""w0..w4; the odd ones carry tier=b, so policy "b" (cap 2) matches them besides "a" (cap 1 or 2)."""


def caps_policies(cap_a: int) -> list[ProductionPolicy]:
    rollout: dict[str, Any] = {"debounceSeconds": 0, "minIntervalSeconds": 0, "maxRolloutsPerWindow": 100}
    return [
        policy("a", namespaces=["shop"], maxConcurrent=cap_a, **rollout),
        policy("b", namespaces=["shop"], pod_selector={"tier": "b"}, maxConcurrent=2, **rollout),
    ]


class FleetMachine(RuleBasedStateMachine):
    """A controller's life in a few steps; the model is what the API server and the watch hold."""

    def __init__(self) -> None:
        super().__init__()
        self.fleet = Fleet()
        self.now = 1000.0
        self.cap_a = 1
        self.versions = dict.fromkeys(NAMES, 0)
        self.server: dict[str, WorkloadFacts] = {}
        """What the API server holds."""
        self.store: dict[str, WorkloadFacts] = {}
        """What the watch has delivered (behind the server after a write, until delivered)."""
        self.stale: set[str] = set()
        """Workloads whose delivered version is the one our own write replaced."""
        self.writing: dict[str, tuple[WorkloadFacts, Decision, InFlight | None]] = {}
        self.resource_version = 100
        for name in NAMES:
            self.create(name)

    def bump(self, name: str, workload: WorkloadFacts, *, delivered: bool, **changes: Any) -> None:
        self.resource_version += 1
        self.server[name] = replace(workload, resource_version=str(self.resource_version), **changes)
        if delivered:
            self.store[name] = self.server[name]
            self.stale.discard(name)

    def create(self, name: str) -> None:
        # Created with its baseline already written by an earlier look: the next change rolls it.
        labels = {"app": name, **({"tier": "b"} if int(name[1:]) % 2 else {})}
        new = facts(
            name=name, references=(SourceRef("ConfigMap", name, None, False),), template_labels=labels
        )
        first = self.decide(Fleet(), new)
        assert first.decision is not None and first.decision.patch is not None
        self.bump(name, applied(new, first.decision.patch, ""), delivered=True)

    def decide(self, fleet: Fleet, workload: WorkloadFacts) -> Look:
        return fleet.look(
            self.now,
            workload,
            policies=[compile_policy(p) for p in caps_policies(self.cap_a)],
            namespace_labels={},
            ignored_namespaces=(),
            sources=data(str(self.versions[workload.name]), workload.name),
            key_id=KID,
        )

    @rule(cap_a=st.integers(1, 2))
    def caps(self, cap_a: int) -> None:
        # Raised, or lowered while nothing runs: lowered under running rollouts, a cap is over-full.
        if cap_a >= self.cap_a or not self.fleet.in_flight:
            self.cap_a = cap_a

    @rule(name=st.sampled_from(NAMES))
    def change(self, name: str) -> None:
        # Its ConfigMap changed; the controller looks at the workloads that reference it.
        self.versions[name] += 1
        self.look(name)

    @rule(seconds=st.sampled_from([0.5, 5, 60, ROLLOUT_TIMEOUT_SECONDS]))
    def tick(self, seconds: float) -> None:
        self.now += seconds

    @rule(name=st.sampled_from(NAMES))
    def look(self, name: str) -> None:
        if name in self.writing:
            return  # the controller never looks at a workload while its write is in flight
        key = ("Deployment", "shop", name)
        before = self.fleet.in_flight.get(key)
        workload = self.store.get(name)
        if workload is None:
            seen = self.fleet.gone(key)
            assert seen.decision is None and key not in self.fleet.in_flight
            assert seen.released == (before is not None)
            return
        seen = self.decide(self.fleet, workload)
        decision = seen.decision
        if seen.released:  # a released place is not counted, unless taken again at once
            assert key not in self.fleet.in_flight or (
                decision is not None and (decision.write is Write.ROLLOUT or decision.adopted is not None)
            )
        if name in self.stale:
            assert decision is None
        if decision is not None and decision.patch is not None:
            self.writing[name] = (workload, decision, decision.adopted or (None if seen.released else before))

    @precondition(lambda self: self.writing)
    @rule(draw=st.data(), ok=st.booleans())
    def write(self, draw: st.DataObject, ok: bool) -> None:
        name = draw.draw(st.sampled_from(sorted(self.writing)))
        workload, decision, before = self.writing.pop(name)
        if not ok or self.server[name].resource_version != workload.resource_version:
            self.fleet.not_written(workload.key)
            assert self.fleet.in_flight.get(workload.key) == before  # a given-back place is not counted
            return
        self.bump(name, applied(workload, decision.patch or {}, ""), delivered=False)
        self.stale.add(name)
        after = self.server[name]
        self.fleet.written(
            workload, decision, self.now, resource_version=after.resource_version, generation=after.generation
        )

    @rule(name=st.sampled_from(NAMES))
    def deliver(self, name: str) -> None:
        if name in self.server:
            self.store[name] = self.server[name]
            self.stale.discard(name)

    @rule(name=st.sampled_from(NAMES), delivered=st.booleans())
    def progress(self, name: str, delivered: bool) -> None:
        # The workload's controller catches up: a status-only change.
        workload = self.server.get(name)
        if workload is not None:
            self.bump(
                name, workload, delivered=delivered, settled=True, observed_generation=workload.generation
            )

    @rule(name=st.sampled_from(NAMES))
    def someone_else_edits(self, name: str) -> None:
        # A label, say: our write in flight on the older version will conflict.
        workload = self.server.get(name)
        if workload is not None:
            self.bump(name, workload, delivered=False)

    @rule(name=st.sampled_from(NAMES))
    def delete_or_create(self, name: str) -> None:
        if name in self.writing:
            return
        if name in self.server:
            del self.server[name], self.store[name]
            self.stale.discard(name)
        else:
            self.create(name)

    @invariant()
    def a_rollout_being_written_holds_its_place(self) -> None:
        for workload, decision, _ in self.writing.values():
            if decision.write is Write.ROLLOUT:
                assert workload.key in self.fleet.in_flight

    @invariant()
    def never_more_than_the_cap(self) -> None:
        counts = Counter(policy for flight in self.fleet.in_flight.values() for policy in flight.policies)
        assert counts["a"] <= self.cap_a and counts["b"] <= 2, dict(counts)


# Examples from the profile (tests/conftest.py: 50 for make unit, 500 for make test); 40 steps each.
FleetMachine.TestCase.settings = settings(stateful_step_count=40)
test_the_caps_hold_under_any_interleaving = FleetMachine.TestCase
