"""The engine's freshness decisions: resourceVersion order, what a read or an event replaces, and
which workloads wait for their sources read afresh."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from production_policy.engine import SourceRef
from production_policy.engine.compiled import CompiledPolicy, compile_policy
from production_policy.engine.rollout import (
    compare_versions,
    event_is_news,
    needs_fresh_sources,
    newer,
    read_is_news,
)
from tests.support.rollout import facts, policy

# apimachinery's own cases (k8s.io/apimachinery/pkg/util/resourceversion, TestCompareResourceVersion).
ORDERED = [
    ("100", "200", -1),
    ("200", "100", 1),
    ("1", "1", 0),
    ("100", "100", 0),
    ("99", "100", -1),
    ("100", "99", 1),
    ("1" * 30, "9" * 29, 1),
]
NOT_ORDERED = [("0", "1"), ("0", "0"), ("1", "0"), ("0100", "100"), ("100", "0100"), ("", "100")]
NOT_ORDERED += [("100", ""), ("100a", "100"), ("100", "100a"), ("-1", "1"), ("1²", "12"), (" 1", "1")]


@pytest.mark.parametrize(("a", "b", "order"), ORDERED)
def test_versions_order_as_kubernetes_orders_them(a: str, b: str, order: int) -> None:
    assert compare_versions(a, b) == order
    assert compare_versions(b, a) == -order
    assert newer(a, b) is (order == 1)


@pytest.mark.parametrize(("a", "b"), NOT_ORDERED)
def test_a_version_that_is_not_well_formed_orders_against_nothing(a: str, b: str) -> None:
    assert compare_versions(a, b) is None and compare_versions(b, a) is None
    assert not newer(a, b) and not newer(b, a)


@given(st.integers(1, 10**40), st.integers(1, 10**40))
def test_the_order_of_versions_is_the_order_of_the_revisions(a: int, b: int) -> None:
    assert compare_versions(str(a), str(b)) == (a > b) - (a < b)


def test_a_read_is_taken_only_when_newer_than_all_the_cache_has() -> None:
    assert read_is_news("10", watched=None, ahead=None)  # before the first listing: kept as read ahead
    assert read_is_news("10", watched="9", ahead=None)
    assert not read_is_news("9", watched="9", ahead=None)  # the watch delivered it already
    assert not read_is_news("8", watched="9", ahead=None)  # the watch delivered a newer one
    assert read_is_news("12", watched="9", ahead="11")
    assert not read_is_news("11", watched="9", ahead="11")  # read twice
    assert not read_is_news("10", watched="9", ahead="11")  # an earlier read was newer
    # A read that does not order against the cache is not taken.
    assert not read_is_news("x", watched=None, ahead=None)
    assert not read_is_news("10", watched="x", ahead=None)


def test_a_watch_event_is_dropped_only_when_a_read_put_it_or_a_newer_one_in() -> None:
    assert event_is_news("5", ahead=None)
    assert event_is_news("x", ahead=None)
    assert not event_is_news("11", ahead="11")
    assert not event_is_news("10", ahead="11")
    assert event_is_news("12", ahead="11")
    assert event_is_news("x", ahead="11")  # the watch is in order: what does not order is its news


CM = SourceRef("ConfigMap", "app", None, False)
ROLLOUTS = compile_policy(policy(namespaces=["shop"]))
NOT_OURS = compile_policy(policy(namespaces=["elsewhere"]))


def _needs(created: bool = True, policies: Sequence[CompiledPolicy] = (ROLLOUTS,), **overrides: Any) -> bool:
    return needs_fresh_sources(
        facts(**{"references": (CM,), **overrides}),
        created=created,
        policies=policies,
        namespace_labels={},
        ignored_namespaces=frozenset(),
    )


def test_only_a_new_managed_workload_without_baseline_waits_for_fresh_sources() -> None:
    assert _needs()
    assert not _needs(created=False)  # found by a listing: judged on the listed cache
    assert not _needs(baseline='{"v":1}')  # its first look is over
    assert not _needs(references=())  # nothing to read
    assert not _needs(policies=(NOT_OURS,))  # not managed: a read would buy nothing
    assert not _needs(opted_out=True)
