"""The mutating webhook's patch: what is injected where, LimitRange semantics, and never overwriting."""

from __future__ import annotations

from typing import Any

import jsonpatch
import pytest

from production_policy.engine import IGNORE, INJECTED_ANNOTATION, CompiledPolicy, plan_mutation
from production_policy.engine.mutation import add_operations, escape_pointer
from tests.support.engine import TCP_AUTO, container, pod, policy, resources

PROBES = policy(
    "probes",
    probes={
        "readiness": {"default": {**TCP_AUTO, "periodSeconds": 5}},
        "liveness": {"default": {"httpGet": {"path": "/healthz", "port": "auto"}}},
        "startup": {"default": {"grpc": {"port": "auto"}, "failureThreshold": 30}},
    },
)


def _mutated(obj: dict[str, Any], *policies: CompiledPolicy) -> tuple[dict[str, Any], list[str]]:
    plan = plan_mutation(obj, "ns", {}, policies)
    mutated = jsonpatch.apply_patch(obj, plan.patch)
    assert plan_mutation(mutated, "ns", {}, policies).patch == []  # applied once, nothing is left to do
    return mutated, plan.injected


def _resources_policy(**resource_spec: Any) -> CompiledPolicy:
    return policy("res", resources=resource_spec)


def test_nothing_to_do_gives_an_empty_plan() -> None:
    assert plan_mutation(pod(), "ns", {}, []).patch == []
    assert plan_mutation(pod(), "ns", {}, [policy(match={"namespaces": ["other"]})]).patch == []
    assert plan_mutation(pod(), "ns", {IGNORE: "true"}, [PROBES]).patch == []
    assert plan_mutation({"kind": "Pod", "metadata": {}}, "ns", {}, [PROBES]).patch == []  # no spec at all


def test_probes_are_injected_on_the_first_declared_port() -> None:
    mutated, injected = _mutated(pod(container("app", port=8080)), PROBES)
    app = mutated["spec"]["containers"][0]
    assert app["readinessProbe"] == {"tcpSocket": {"port": 8080}, "periodSeconds": 5}
    assert app["livenessProbe"] == {"httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"}}
    assert app["startupProbe"] == {"grpc": {"port": 8080}, "failureThreshold": 30}
    assert injected == ["app:readiness", "app:liveness", "app:startup"]
    assert mutated["metadata"]["annotations"] == {
        INJECTED_ANNOTATION: "app:readiness,app:liveness,app:startup"
    }


def test_auto_skips_udp_ports_and_takes_the_first_tcp_one() -> None:
    ports = [
        {"containerPort": 53, "protocol": "UDP"},
        {"containerPort": 9000, "protocol": "TCP"},
        {"containerPort": 9001},
    ]
    mutated, _ = _mutated(pod(container(port=None, ports=ports)), PROBES)
    assert mutated["spec"]["containers"][0]["readinessProbe"]["tcpSocket"] == {"port": 9000}


NO_USABLE_PORTS: list[list[dict[str, Any]] | None] = [
    None,
    [],
    [{"containerPort": 53, "protocol": "UDP"}],
    [{"name": "no-number"}],
]


@pytest.mark.parametrize("ports", NO_USABLE_PORTS, ids=str)
def test_no_usable_port_means_no_auto_probe(ports: list[dict[str, Any]] | None) -> None:
    fields: dict[str, Any] = {} if ports is None else {"ports": ports}
    plan = plan_mutation(pod(container(port=None, **fields)), "ns", {}, [PROBES])
    assert plan.patch == [] and plan.injected == []


def test_named_and_numbered_ports() -> None:
    named = policy(probes={"readiness": {"default": {"httpGet": {"port": "http"}}}})
    numbered = policy(probes={"readiness": {"default": {"tcpSocket": {"port": 7000}}}})
    declared = container(port=None, ports=[{"name": "http", "containerPort": 8080}])
    mutated, _ = _mutated(pod(declared), named)
    assert mutated["spec"]["containers"][0]["readinessProbe"]["httpGet"]["port"] == "http"
    assert plan_mutation(pod(container(port=8080)), "ns", {}, [named]).patch == []  # "http" is not declared
    mutated, _ = _mutated(pod(container(port=None)), numbered)  # an explicit number needs no declared port
    assert mutated["spec"]["containers"][0]["readinessProbe"] == {"tcpSocket": {"port": 7000}}


def test_http_headers_are_kept_only_when_given() -> None:
    headers = [{"name": "X-Probe", "value": "1"}]
    with_headers = policy(
        probes={"readiness": {"default": {"httpGet": {"port": "auto", "httpHeaders": headers}}}}
    )
    mutated, _ = _mutated(pod(), with_headers)
    assert mutated["spec"]["containers"][0]["readinessProbe"]["httpGet"]["httpHeaders"] == headers


def test_a_users_probe_is_never_replaced() -> None:
    mine = {"exec": {"command": ["/bin/check"]}}
    mutated, injected = _mutated(pod(container(readinessProbe=mine)), PROBES)
    assert mutated["spec"]["containers"][0]["readinessProbe"] == mine
    assert "app:readiness" not in injected


def test_init_containers_get_resources_and_sidecars_get_probes_too() -> None:
    both = policy(probes={"readiness": {"default": TCP_AUTO}}, resources={"defaultRequest": {"cpu": "100m"}})
    init = container("migrate", port=5432)
    sidecar = container("proxy", port=15000, restartPolicy="Always")
    mutated, injected = _mutated(pod(container("app"), init=(init, sidecar)), both)
    migrate, proxy = mutated["spec"]["initContainers"]
    assert "readinessProbe" not in migrate and migrate["resources"] == {"requests": {"cpu": "100m"}}
    assert proxy["readinessProbe"] == {"tcpSocket": {"port": 15000}}
    assert injected == [
        "app:readiness",
        "app:resources.requests.cpu",
        "migrate:resources.requests.cpu",
        "proxy:readiness",
        "proxy:resources.requests.cpu",
    ]


LIMIT_RANGE_CASES: list[tuple[dict[str, Any], dict[str, Any], dict[str, Any], list[str]]] = [
    # defaultRequest only: a request.
    ({}, {"defaultRequest": {"cpu": "100m"}}, {"requests": {"cpu": "100m"}}, ["requests.cpu"]),
    # default only: a limit, and the request defaults to it (as a LimitRange's defaultRequest does).
    (
        {},
        {"default": {"memory": "256Mi"}},
        {"requests": {"memory": "256Mi"}, "limits": {"memory": "256Mi"}},
        ["requests.memory", "limits.memory"],
    ),
    (
        {},
        {"defaultRequest": {"memory": "128Mi"}, "default": {"memory": "256Mi"}},
        {"requests": {"memory": "128Mi"}, "limits": {"memory": "256Mi"}},
        ["requests.memory", "limits.memory"],
    ),
    # A user's limit: Kubernetes sets the request to it when it creates the pod; nothing to inject.
    (
        resources(limits={"memory": "1Gi"}),
        {"defaultRequest": {"memory": "128Mi"}, "default": {"memory": "256Mi"}},
        {"limits": {"memory": "1Gi"}},
        [],
    ),
    # A user's request: the default limit is added when it is not below the request.
    (
        resources(requests={"memory": "200Mi"}),
        {"default": {"memory": "256Mi"}},
        {"requests": {"memory": "200Mi"}, "limits": {"memory": "256Mi"}},
        ["limits.memory"],
    ),
    (
        resources(requests={"memory": "512Mi"}),
        {"default": {"memory": "256Mi"}},
        {"requests": {"memory": "512Mi"}},
        [],
    ),
    (
        resources(requests={"memory": "lots"}),
        {"default": {"memory": "256Mi"}},
        {"requests": {"memory": "lots"}},
        [],
    ),
    # Each resource on its own.
    (
        resources(requests={"cpu": "1"}),
        {"defaultRequest": {"cpu": "100m", "memory": "64Mi"}},
        {"requests": {"cpu": "1", "memory": "64Mi"}},
        ["requests.memory"],
    ),
    (
        {},
        {"defaultRequest": {"ephemeral-storage": "1Gi"}},
        {"requests": {"ephemeral-storage": "1Gi"}},
        ["requests.ephemeral-storage"],
    ),
]
"""(container resources, policy resources, resources after mutation, injected entries)."""


@pytest.mark.parametrize(("user", "resource_spec", "expected", "injected"), LIMIT_RANGE_CASES)
def test_resources_follow_limit_range_semantics(
    user: dict[str, Any], resource_spec: dict[str, Any], expected: dict[str, Any], injected: list[str]
) -> None:
    fields: dict[str, Any] = {"resources": user} if user else {}
    mutated, entries = _mutated(pod(container(**fields)), _resources_policy(**resource_spec))
    assert mutated["spec"]["containers"][0].get("resources", {}) == expected
    assert entries == [f"app:resources.{entry}" for entry in injected]


def test_a_default_request_above_another_policys_default_limit_is_capped_at_the_limit() -> None:
    requests = policy("requests", priority=10, resources={"defaultRequest": {"memory": "1Gi"}})
    limits = policy("limits", priority=1, resources={"default": {"memory": "256Mi"}})
    mutated, _ = _mutated(pod(), requests, limits)
    assert mutated["spec"]["containers"][0]["resources"] == {
        "requests": {"memory": "256Mi"},
        "limits": {"memory": "256Mi"},
    }


FIRST_MISSING_MEMBER_CASES: list[tuple[dict[str, Any], list[tuple[str, str]]]] = [
    (container(), [("add", "/spec/containers/0/resources")]),
    (container(resources=None), [("add", "/spec/containers/0/resources")]),  # null counts as absent
    (container(resources={}), [("add", "/spec/containers/0/resources/requests")]),
    (container(resources={"requests": None}), [("add", "/spec/containers/0/resources/requests")]),
    (
        container(resources={"requests": {"cpu": "1"}}),
        [("add", "/spec/containers/0/resources/requests/memory")],
    ),
]


@pytest.mark.parametrize(("app", "expected_ops"), FIRST_MISSING_MEMBER_CASES)
def test_the_patch_adds_at_the_first_missing_member(
    app: dict[str, Any], expected_ops: list[tuple[str, str]]
) -> None:
    plan = plan_mutation(
        pod(app), "ns", {}, [_resources_policy(defaultRequest={"cpu": "100m", "memory": "64Mi"})]
    )
    assert [(op["op"], op["path"]) for op in plan.patch[:-1]] == expected_ops
    jsonpatch.apply_patch(pod(app), plan.patch)


def test_the_annotation_is_created_or_extended() -> None:
    requests = _resources_policy(defaultRequest={"cpu": "100m"})
    bare = {"apiVersion": "v1", "kind": "Pod", "spec": {"containers": [container()]}}
    assert plan_mutation(bare, "ns", {}, [requests]).patch[-1] == {
        "op": "add",
        "path": "/metadata",
        "value": {"annotations": {INJECTED_ANNOTATION: "app:resources.requests.cpu"}},
    }
    for existing, path in (
        (None, "/metadata/annotations"),
        ({}, "/metadata/annotations/productionpolicy.dev~1injected"),
    ):
        patch = plan_mutation(pod(annotations=existing), "ns", {}, [requests]).patch
        assert patch[-1]["path"] == path
    # Another webhook added a container after our first pass: the record grows.
    earlier = pod(
        container("app", resources=resources({"cpu": "100m"})),
        container("added"),
        annotations={"team": "x", INJECTED_ANNOTATION: "app:resources.requests.cpu"},
    )
    mutated, injected = _mutated(earlier, requests)
    assert injected == ["added:resources.requests.cpu"]
    assert mutated["metadata"]["annotations"] == {
        "team": "x",
        INJECTED_ANNOTATION: "app:resources.requests.cpu,added:resources.requests.cpu",
    }


def test_json_pointers_are_escaped() -> None:
    assert escape_pointer("productionpolicy.dev/injected") == "productionpolicy.dev~1injected"
    assert escape_pointer("a~b/c") == "a~0b~1c"
    ops = add_operations("/metadata", {"annotations": {}}, [(("annotations", "x/y~z"), "v")])
    assert ops == [{"op": "add", "path": "/metadata/annotations/x~1y~0z", "value": "v"}]
    assert jsonpatch.apply_patch({"metadata": {"annotations": {}}}, ops) == {
        "metadata": {"annotations": {"x/y~z": "v"}}
    }


def test_malformed_entries_keep_their_index() -> None:
    odd = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {},
        "spec": {"containers": ["oops", container("app")]},
    }
    plan = plan_mutation(odd, "ns", {}, [PROBES])
    assert plan.patch[0]["path"] == "/spec/containers/1/readinessProbe"
