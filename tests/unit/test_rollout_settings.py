"""Which workloads are managed, and the merged settings of several policies."""

from __future__ import annotations

import itertools

from production_policy.engine.rollout.settings import (
    RolloutSettings,
    merge_settings,
    namespace_ignored,
    source_ignored,
)
from tests.support.rollout import policy


def test_no_enabled_policy_means_unmanaged() -> None:
    assert merge_settings([]) is None
    assert merge_settings([policy(enabled=False)]) is None


def test_defaults_of_one_policy() -> None:
    assert merge_settings([policy("only")]) == RolloutSettings(
        debounce_seconds=2,
        min_interval_seconds=30,
        max_rollouts_per_window=5,
        window_seconds=600,
        max_concurrent={"only": 5},
    )


def test_the_strictest_setting_of_each_wins_whatever_the_order() -> None:
    policies = [
        policy(
            "a",
            debounceSeconds=1,
            minIntervalSeconds=60,
            maxConcurrent=2,
            maxRolloutsPerWindow=9,
            windowSeconds=60,
        ),
        policy(
            "b",
            debounceSeconds=5,
            minIntervalSeconds=10,
            maxConcurrent=7,
            maxRolloutsPerWindow=3,
            windowSeconds=900,
        ),
        policy("off", enabled=False, debounceSeconds=100, maxConcurrent=1),
    ]
    expected = RolloutSettings(
        debounce_seconds=5,
        min_interval_seconds=60,
        max_rollouts_per_window=3,
        window_seconds=900,
        max_concurrent={"a": 2, "b": 7},
    )
    for order in itertools.permutations(policies):
        merged = merge_settings(order)
        assert merged == expected
        assert merged is not None and merged.policies == frozenset({"a", "b"})


def test_ignored_namespaces() -> None:
    assert namespace_ignored("kube-system", {}, {"kube-system"})
    assert namespace_ignored("shop", {"productionpolicy.dev/ignore": "true"}, ())
    assert namespace_ignored("shop", {"productionpolicy.dev/ignore": "True"}, ())
    assert not namespace_ignored("shop", {"productionpolicy.dev/ignore": "false"}, {"kube-system"})


def test_ignored_sources() -> None:
    assert source_ignored({"productionpolicy.dev/ignore": "true"})
    assert not source_ignored({"productionpolicy.dev/ignore": "no"})
    assert not source_ignored(None)
