"""Policies are compiled once, when they arrive: a changed policy set is always honoured, and what is
derived from a set of compiled policies depends on their values, never on which objects they are."""

from __future__ import annotations

from typing import Any

from production_policy.engine import compile_policy, evaluate_workload, plan_mutation
from production_policy.engine.merge import MAX_SETS, merge_defaults
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

    # Same name, same number of policies, new spec: a lower maximum and another default.
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


def test_a_compiled_policy_is_equal_to_another_of_the_same_name_and_spec_only() -> None:
    same = [policy("low", resources={"default": {"cpu": "1"}}) for _ in range(2)]
    assert same[0] is not same[1] and same[0] == same[1] and hash(same[0]) == hash(same[1])
    assert policy("low", resources={"default": {"cpu": "2"}}) != same[0]  # another spec
    assert policy("other", resources={"default": {"cpu": "1"}}) != same[0]  # another name
    assert policy("low", priority=1, resources={"default": {"cpu": "1"}}) != same[0]
    assert same[0] != same[0].policy  # nothing but a compiled policy equals one


def test_equal_policies_in_another_order_or_subset_merge_as_themselves() -> None:
    low = policy("low", resources={"default": {"cpu": "1"}})
    high = policy("high", priority=5, resources={"default": {"cpu": "2"}})
    assert merge_defaults([low]).limits["cpu"].value == "1"
    assert merge_defaults([low, high]).limits["cpu"].value == "2"
    assert merge_defaults([high, low]).limits["cpu"].value == "2"
    assert merge_defaults([low]).limits["cpu"].value == "1"
    # Same name, another spec: another policy, whose own defaults apply.
    assert merge_defaults([policy("low", resources={"default": {"cpu": "3"}})]).limits["cpu"].value == "3"


def test_more_policy_sets_than_are_kept_stay_right() -> None:
    cpus = [f"{i + 1}m" for i in range(MAX_SETS + 8)]
    policies = [policy(f"p{i:03}", resources={"default": {"cpu": cpu}}) for i, cpu in enumerate(cpus)]
    for _ in range(2):
        assert [merge_defaults([p]).limits["cpu"].value for p in policies] == cpus


def test_compiling_reads_the_policy_once_and_keeps_what_the_rules_need() -> None:
    compiled = policy(
        "strict",
        priority=3,
        enforcement="Warn",
        probes={"readiness": {"required": True, "default": {"tcpSocket": {"port": "auto"}}}},
        resources={"max": {"cpu": "2"}, "require": {"limits": ["memory"]}, "default": {"memory": "1Gi"}},
    )
    assert compiled.name == "strict" and compiled.precedence == (-3, "strict")
    assert compiled.rules.policy == "strict" and compiled.rules.enforcement == "Warn"
    assert compiled.rules.required_probes == (("readiness", "readinessProbe"),)
    assert dict(compiled.default_probes) == {"readiness": {"tcpSocket": {"port": "auto"}}}
    assert dict(compiled.default_limits) == {"memory": "1Gi"} and dict(compiled.default_requests) == {}
    cpu = next(b for b in compiled.rules.bounds if b.request_field == "resources.requests.cpu")
    assert cpu.maximum == "2" and cpu.maximum_value == 2 and cpu.minimum_value is None
    assert [b.limit_field for b in compiled.rules.ruled] == [
        "resources.limits.cpu",
        "resources.limits.memory",
    ]
    assert compile_policy(compiled.policy) == compiled
