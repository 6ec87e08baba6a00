"""The pod a Pod or a workload makes, its shape checked once: what admission, the audit and check judge."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from production_policy.engine import (
    INJECTED_ANNOTATION,
    evaluate_workload,
    needed_defaults,
    plan_mutation,
    pod_from_template,
)
from tests.support.engine import TCP_AUTO, container, deployment, pod, policy, resources

STRICT = policy(
    "strict",
    probes={"readiness": {"required": True, "default": TCP_AUTO}},
    resources={"require": {"requests": ["cpu"]}, "default": {"memory": "1Gi"}, "minQoSClass": "Burstable"},
)


def _pod(spec: Any, metadata: Any = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata if metadata is not None else {},
        "spec": spec,
    }


def test_a_well_formed_pod_is_read_without_copying_what_the_rules_read() -> None:
    app = container(resources=resources({"cpu": "1"}), env=[{"name": "A", "value": "b"}])
    obj = pod(app, labels={"app": "web"}, annotations={INJECTED_ANNOTATION: "app:readiness,,x:y"})
    view = pod_from_template(obj)
    assert view is not None
    assert view.labels is obj["metadata"]["labels"]
    assert view.injected == ("app:readiness", "x:y")
    (checked,) = view.spec["containers"]
    assert checked == {
        "name": "app",
        "ports": [{"containerPort": 8080}],
        "resources": {"requests": {"cpu": "1"}},
    }
    assert checked["resources"] is app["resources"] and checked["ports"] is app["ports"]


def test_every_workload_kind_makes_the_pod_of_its_template() -> None:
    workload = deployment(container(), labels={"app": "web"})
    template = workload["spec"]["template"]
    made, bare = pod_from_template(workload), pod_from_template(_pod(template["spec"], template["metadata"]))
    assert made is not None and bare is not None
    assert (made.labels, made.spec) == (bare.labels, bare.spec)
    assert (made.kinds, bare.kinds) == (frozenset({"Deployment"}), frozenset({"Pod"}))  # for match.kinds
    assert pod_from_template({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}) is None
    assert pod_from_template({**workload, "apiVersion": "example.com/v1"}) is None


def test_members_of_the_wrong_type_read_as_absent() -> None:
    spec = {
        "resources": ["not", "an", "object"],
        "containers": [
            "oops",
            {"name": 7, "ports": "http", "resources": "lots", "readinessProbe": None},
            {
                "name": "b",
                "ports": [1, {"containerPort": 80}],
                "resources": {"requests": None, "limits": {"cpu": 1}},
            },
        ],
        "initContainers": {"name": "not a list"},
    }
    metadata = {"labels": {"app": "web", "replicas": 3}, "annotations": {INJECTED_ANNOTATION: ["app"]}}
    view = pod_from_template(_pod(spec, metadata))
    assert view is not None
    assert view.labels == {"app": "web"} and view.injected == ()
    assert view.spec == {
        "containers": [
            None,  # kept in place: the next entries keep their index, which patches point at
            {"readinessProbe": None},
            {"name": "b", "ports": [{"containerPort": 80}], "resources": {"limits": {"cpu": 1}}},
        ]
    }
    for odd in ({"labels": "app=web", "annotations": 3}, "metadata"):
        view = pod_from_template(_pod(spec, odd))
        assert view is not None and view.labels == {} and view.injected == ()
    assert pod_from_template({"apiVersion": "v1", "kind": "Pod", "spec": "x"}) == pod_from_template(_pod({}))


def test_a_malformed_entry_keeps_the_index_of_the_others_in_the_patch() -> None:
    odd = _pod(
        {"containers": ["oops", container("app")], "initContainers": [None, container("init", port=None)]}
    )
    plan = plan_mutation(odd, "ns", {}, [STRICT])
    assert [op["path"] for op in plan.patch] == [
        "/spec/containers/1/readinessProbe",
        "/spec/containers/1/resources",
        "/spec/initContainers/1/resources",
        "/metadata/annotations",
    ]


_KEYS = [
    "name",
    "ports",
    "containerPort",
    "protocol",
    "resources",
    "requests",
    "limits",
    "cpu",
    "memory",
    "readinessProbe",
    "restartPolicy",
    "containers",
    "initContainers",
    "labels",
    "annotations",
]

_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.sampled_from(["", "1", "100m", "Always", "TCP", "app"]),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.sampled_from(_KEYS), children, max_size=4)
    ),
    max_leaves=12,
)


@given(st.dictionaries(st.sampled_from(["containers", "initContainers", "resources"]), _json), _json)
def test_whatever_the_shape_the_engine_answers(spec: dict[str, Any], metadata: Any) -> None:
    obj = _pod(spec, metadata)
    view = pod_from_template(obj)
    assert view is not None
    assert all(isinstance(key, str) and isinstance(value, str) for key, value in view.labels.items())
    for field in ("containers", "initContainers"):
        for entry in view.spec.get(field, []):
            assert entry is None or (
                isinstance(entry.get("name", ""), str)
                and all(isinstance(port, dict) for port in entry.get("ports", []))
                and all(
                    isinstance(entry.get("resources", {}).get(kind, {}), dict)
                    for kind in ("requests", "limits")
                )
            )
    plan_mutation(obj, "ns", {}, [STRICT])
    evaluate_workload(obj, "ns", {}, [STRICT], old_obj=obj)
    needed_defaults(view, "ns", {}, [STRICT])
