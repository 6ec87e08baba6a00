"""What the engine derives from policies is memoised per policy object: a changed policy set is
always honoured, never answered from what was worked out for the old one."""

from __future__ import annotations

import gc
from typing import Any

import pytest

from production_policy.engine import evaluate_workload, memo, plan_mutation
from production_policy.engine.merge import merge_defaults
from production_policy.processes.clusterview import ClusterView
from tests.support.engine import container, pod, policy, policy_dict, resources

NAMESPACE, LABELS = "shop", {"kubernetes.io/metadata.name": "shop"}


def _injected(view: ClusterView, obj: dict[str, Any]) -> list[str]:
    return plan_mutation(obj, NAMESPACE, LABELS, view.sorted_policies()).injected


def _violations(view: ClusterView, obj: dict[str, Any]) -> list[tuple[str, str, str]]:
    verdict = evaluate_workload(obj, NAMESPACE, LABELS, view.sorted_policies())
    return [(v.policy, v.field, v.rule) for v in verdict.violations]


def test_an_updated_policy_is_honoured_by_the_next_request() -> None:
    view = ClusterView()
    bounded = pod(container(resources=resources({"cpu": "2"}, {"cpu": "2"})))
    view.put_policy(policy_dict("limits", resources={"max": {"cpu": "4"}, "default": {"memory": "1Gi"}}))
    assert _violations(view, bounded) == []
    assert _injected(view, bounded) == ["app:resources.requests.memory", "app:resources.limits.memory"]

    # Same name, same object count, new spec: a lower maximum and another default.
    view.put_policy(policy_dict("limits", resources={"max": {"cpu": "1"}, "default": {"memory": "2Gi"}}))
    assert _violations(view, bounded) == [
        ("limits", "resources.requests.cpu", "resources.max"),
        ("limits", "resources.limits.cpu", "resources.max"),
    ]
    plan = plan_mutation(bounded, NAMESPACE, LABELS, view.sorted_policies())
    assert [op["value"] for op in plan.patch if op["path"].endswith("/resources/limits/memory")] == ["2Gi"]

    # A policy added with a higher priority takes over the defaults; a deleted one stops applying.
    view.put_policy(policy_dict("first", priority=10, resources={"default": {"memory": "512Mi"}}))
    plan = plan_mutation(bounded, NAMESPACE, LABELS, view.sorted_policies())
    assert [op["value"] for op in plan.patch if op["path"].endswith("/resources/limits/memory")] == ["512Mi"]
    view.delete_policy("limits")
    assert _violations(view, bounded) == []
    view.delete_policy("first")
    assert _injected(view, bounded) == []


def test_equal_policies_in_another_order_or_subset_merge_as_themselves() -> None:
    low = policy("low", resources={"default": {"cpu": "1"}})
    high = policy("high", priority=5, resources={"default": {"cpu": "2"}})
    assert merge_defaults([low]).limits["cpu"].value == "1"
    assert merge_defaults([low, high]).limits["cpu"].value == "2"
    assert merge_defaults([high, low]).limits["cpu"].value == "2"
    assert merge_defaults([low]).limits["cpu"].value == "1"
    # An equal but distinct object is a policy of its own: identity, not value, is the key.
    assert merge_defaults([policy("low", resources={"default": {"cpu": "3"}})]).limits["cpu"].value == "3"


def test_a_full_table_of_policy_sets_starts_again_and_stays_right() -> None:
    cpus = [f"{i + 1}m" for i in range(memo.MAX_SETS + 8)]
    policies = [policy(f"p{i:03}", resources={"default": {"cpu": cpu}}) for i, cpu in enumerate(cpus)]
    for _ in range(2):
        assert [merge_defaults([p]).limits["cpu"].value for p in policies] == cpus


class _Named:
    def __init__(self, name: str) -> None:
        self.name = name


@pytest.mark.slow  # 50 full garbage collections: about 20 s
def test_a_collected_object_is_forgotten_before_its_id_can_be_reused() -> None:
    calls: list[str] = []

    @memo.per_policy
    def name_of(thing: _Named) -> str:
        calls.append(thing.name)
        return thing.name

    # The memo's table, read from its closure: whether CPython hands a new object the id just
    # freed depends on the heap (it did not in a full run under coverage), so the test looks at
    # the entry itself rather than waiting for a reuse to happen.
    cells = name_of.__closure__ or ()
    table = next(cell.cell_contents for cell in cells if isinstance(cell.cell_contents, dict))
    first = _Named("first")
    assert name_of(first) == name_of(first) == "first"
    assert calls == ["first"]
    for i in range(50):
        old_id = id(first)
        assert old_id in table
        del first
        gc.collect()
        assert old_id not in table  # forgotten as the object went: a new one with this id is new
        first = _Named(f"next-{i}")  # CPython often hands it the memory just freed
        assert name_of(first) == f"next-{i}"
