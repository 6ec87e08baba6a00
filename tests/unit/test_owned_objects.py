"""Objects owned by a workload controller are judged through their owner, not again."""

from __future__ import annotations

from typing import Any

import pytest

from production_policy.api import parse_policy
from production_policy.engine import compile_policy, evaluate_workload
from production_policy.engine.pods import controlled_by_workload

STRICT = compile_policy(
    parse_policy(
        {
            "apiVersion": "productionpolicy.dev/v1alpha1",
            "kind": "ProductionPolicy",
            "metadata": {"name": "strict"},
            "spec": {"probes": {"readiness": {"required": True}}},
        }
    )
)


def _pod(owners: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "ownerReferences": owners},
        "spec": {"containers": [{"name": "app", "image": "nginx"}]},
    }


def _owner(kind: str, api_version: str, controller: Any = True) -> dict[str, Any]:
    return {"kind": kind, "apiVersion": api_version, "name": "o", "uid": "u", "controller": controller}


@pytest.mark.parametrize(
    ("owners", "owned"),
    [
        ([_owner("ReplicaSet", "apps/v1")], True),
        ([_owner("Job", "batch/v1")], True),
        ([_owner("StatefulSet", "apps/v1")], True),
        ([_owner("ReplicaSet", "apps/v1", controller=False)], False),
        ([_owner("ReplicaSet", "example.com/v1")], False),  # someone else's "ReplicaSet"
        ([_owner("Rollout", "argoproj.io/v1alpha1")], False),  # a controller we never judged
        ([_owner("Pod", "v1")], False),
        (None, False),
        ("garbage", False),
        (["garbage"], False),
    ],
)
def test_controlled_by_workload(owners: Any, owned: bool) -> None:
    assert controlled_by_workload(_pod(owners)) is owned


def test_an_owned_pod_is_not_judged_again_but_a_bare_one_is() -> None:
    assert evaluate_workload(_pod([_owner("ReplicaSet", "apps/v1")]), "ns", {}, [STRICT]).violations == []
    assert evaluate_workload(_pod(None), "ns", {}, [STRICT]).denied
