"""The compliance book: which tallies a judgement changes, and the bounded, deterministic top list."""

from __future__ import annotations

import random

from production_policy.engine.audit import ComplianceBook, Finding, Judgement, WorkloadRef

WEB = WorkloadRef("shop", "Deployment", "web")
DB = WorkloadRef("shop", "StatefulSet", "db")


def bad(count: int = 1, message: str = "no readinessProbe") -> Finding:
    return Finding(count, message)


def test_recording_reports_the_policies_whose_tally_changed() -> None:
    book = ComplianceBook()
    assert book.record(WEB, Judgement(frozenset({"a", "b"}), {"a": bad()})) == {"a", "b"}
    assert book.record(WEB, Judgement(frozenset({"a", "b"}), {"a": bad()})) == set()  # same again
    assert book.record(WEB, Judgement(frozenset({"a", "b"}), {})) == {"a"}  # fixed
    assert book.record(WEB, Judgement(frozenset({"b"}), {})) == {"a"}  # no longer matched by a
    assert book.forget(WEB) == {"b"}
    assert book.forget(WEB) == set()
    assert len(book) == 0


def test_tally_counts_matched_and_non_compliant() -> None:
    book = ComplianceBook()
    book.record(WEB, Judgement(frozenset({"a"}), {"a": bad()}))
    book.record(DB, Judgement(frozenset({"a"}), {}))
    tally = book.tally("a", 20)
    assert (tally.matched, tally.non_compliant) == (2, 1)
    assert [(listed.ref, listed.message) for listed in tally.top] == [(WEB, "no readinessProbe")]
    assert book.tally("unknown", 20).matched == 0


def test_unmatched_workloads_are_not_kept() -> None:
    book = ComplianceBook()
    assert book.record(WEB, Judgement()) == set()
    assert len(book) == 0


def test_top_violations_are_bounded_most_severe_first_and_independent_of_order() -> None:
    refs = [WorkloadRef(f"ns{i % 3}", "Deployment", f"w{i:02d}") for i in range(50)]
    judgements = {ref: Judgement(frozenset({"p"}), {"p": bad(count=1 + i % 4)}) for i, ref in enumerate(refs)}
    tops = []
    for seed in range(3):
        order = list(refs)
        random.Random(seed).shuffle(order)
        book = ComplianceBook()
        for ref in order:
            book.record(ref, judgements[ref])
        tally = book.tally("p", 20)
        assert (tally.matched, tally.non_compliant, len(tally.top)) == (50, 50, 20)
        tops.append([listed.ref for listed in tally.top])
    assert tops[0] == tops[1] == tops[2]
    counts = [judgements[ref].findings["p"].count for ref in tops[0]]
    assert counts == sorted(counts, reverse=True) and counts[0] == 4
    worst = sorted(ref for ref in refs if judgements[ref].findings["p"].count == 4)
    assert tops[0][: len(worst)] == worst[:20]
