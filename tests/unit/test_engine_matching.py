"""Which policies apply: namespace names and labels, pod labels, match and exclude, precedence."""

from __future__ import annotations

from typing import Any

import pytest

from production_policy.engine import IGNORE, matching_policies
from production_policy.engine.compiled import precedence_order
from production_policy.engine.matching import depends_on_namespace_labels, selector_matches
from production_policy.engine.merge import merge_defaults
from tests.support.engine import TCP_AUTO, policy

PROD = {"kubernetes.io/metadata.name": "shop", "env": "prod"}


def _names(
    spec: dict[str, Any],
    namespace: str = "shop",
    namespace_labels: dict[str, str] = PROD,
    pod_labels: dict[str, str] | None = None,
) -> list[str]:
    policies = [policy("p", **spec)]
    return [
        p.name
        for p in matching_policies(
            policies, namespace, namespace_labels, pod_labels or {"tier": "web"}, ("Deployment",)
        )
    ]


@pytest.mark.parametrize(
    ("spec", "matched"),
    [
        ({}, True),
        ({"match": {"namespaces": ["shop", "cart"]}}, True),
        ({"match": {"namespaces": ["cart"]}}, False),
        ({"match": {"namespaceSelector": {"matchLabels": {"env": "prod"}}}}, True),
        ({"match": {"namespaceSelector": {"matchLabels": {"env": "dev"}}}}, False),
        ({"match": {"namespaceSelector": {}}}, True),
        ({"match": {"podSelector": {"matchLabels": {"tier": "web"}}}}, True),
        ({"match": {"podSelector": {"matchLabels": {"tier": "db"}}}}, False),
        # Every criterion given must hold.
        ({"match": {"namespaces": ["shop"], "podSelector": {"matchLabels": {"tier": "db"}}}}, False),
        ({"exclude": {"namespaces": ["shop"]}}, False),
        ({"exclude": {"namespaces": ["legacy"]}}, True),
        ({"exclude": {"podSelector": {"matchLabels": {"tier": "web"}}}}, False),
        # Exclusion also needs every criterion it gives: web pods, but only in legacy.
        ({"exclude": {"namespaces": ["legacy"], "podSelector": {"matchLabels": {"tier": "web"}}}}, True),
        ({"exclude": {"namespaceSelector": {"matchLabels": {"env": "prod"}}}}, False),
        ({"exclude": {}}, True),  # an empty exclude excludes nothing
    ],
)
def test_match_and_exclude(spec: dict[str, Any], matched: bool) -> None:
    assert _names(spec) == (["p"] if matched else [])


def test_an_ignored_namespace_is_never_matched() -> None:
    assert _names({}, namespace_labels={**PROD, IGNORE: "true"}) == []
    assert _names({}, namespace_labels={**PROD, IGNORE: "false"}) == ["p"]


@pytest.mark.parametrize(
    ("expression", "labels", "holds"),
    [
        ({"key": "tier", "operator": "In", "values": ["web", "api"]}, {"tier": "api"}, True),
        ({"key": "tier", "operator": "In", "values": ["web"]}, {"tier": "db"}, False),
        ({"key": "tier", "operator": "In", "values": ["web"]}, {}, False),
        ({"key": "tier", "operator": "NotIn", "values": ["db"]}, {"tier": "web"}, True),
        ({"key": "tier", "operator": "NotIn", "values": ["db"]}, {}, True),
        ({"key": "tier", "operator": "NotIn", "values": ["db"]}, {"tier": "db"}, False),
        ({"key": "tier", "operator": "Exists"}, {"tier": ""}, True),
        ({"key": "tier", "operator": "Exists"}, {}, False),
        ({"key": "tier", "operator": "DoesNotExist"}, {}, True),
        ({"key": "tier", "operator": "DoesNotExist"}, {"tier": "web"}, False),
    ],
)
def test_label_selector_expressions(expression: dict[str, Any], labels: dict[str, str], holds: bool) -> None:
    selector = policy(
        match={"podSelector": {"matchExpressions": [expression]}}
    ).policy.spec.match.pod_selector
    assert selector is not None and selector_matches(selector, labels) is holds


def test_match_labels_and_expressions_must_all_hold() -> None:
    selector = policy(
        match={
            "podSelector": {
                "matchLabels": {"app": "cart"},
                "matchExpressions": [{"key": "tier", "operator": "Exists"}],
            }
        }
    ).policy.spec.match.pod_selector
    assert selector is not None
    assert selector_matches(selector, {"app": "cart", "tier": "web"})
    assert not selector_matches(selector, {"app": "cart"})
    assert not selector_matches(selector, {"app": "shop", "tier": "web"})


def test_policies_come_highest_priority_first_then_by_name() -> None:
    policies = [
        policy("b", priority=1),
        policy("c", priority=5),
        policy("a", priority=1),
        policy("z", priority=-3),
    ]
    assert [p.name for p in matching_policies(policies, "ns", {}, {}, ("Pod",))] == ["c", "a", "b", "z"]
    assert [p.name for p in precedence_order(tuple(reversed(policies)))] == ["c", "a", "b", "z"]


def test_each_default_comes_from_the_highest_priority_policy_that_has_one() -> None:
    low = policy(
        "low",
        priority=1,
        probes={"readiness": {"default": TCP_AUTO}, "liveness": {"default": TCP_AUTO}},
        resources={"defaultRequest": {"cpu": "100m", "memory": "64Mi"}, "default": {"memory": "128Mi"}},
    )
    high = policy(
        "high",
        priority=9,
        probes={"liveness": {"default": {"httpGet": {"port": "auto"}}}},
        resources={"defaultRequest": {"cpu": "300m"}},
    )
    tie = policy("a-tie", priority=1, resources={"defaultRequest": {"memory": "32Mi"}})
    for order in ([low, high, tie], [tie, high, low]):
        merged = merge_defaults(order)
        assert merged.probes["readiness"].policy == "low"
        assert merged.probes["liveness"].policy == "high"
        assert "startup" not in merged.probes
        assert (merged.requests["cpu"].value, merged.requests["cpu"].policy) == ("300m", "high")
        assert (merged.requests["memory"].value, merged.requests["memory"].policy) == ("32Mi", "a-tie")
        assert merged.limits["memory"].policy == "low"


def test_only_a_selector_that_decides_depends_on_namespace_labels() -> None:
    selector = {"namespaceSelector": {"matchLabels": {"env": "prod"}}}
    decides = policy("p", match=selector).policy
    elsewhere = policy("p", match={**selector, "namespaces": ["other"]}).policy
    excluded = policy("p", exclude=selector).policy
    assert depends_on_namespace_labels(decides, "shop", {}, {"Pod"})
    assert not depends_on_namespace_labels(elsewhere, "shop", {}, {"Pod"})  # cannot match anyway
    assert depends_on_namespace_labels(excluded, "shop", {}, {"Pod"})
    assert not depends_on_namespace_labels(policy("p").policy, "shop", {}, {"Pod"})
