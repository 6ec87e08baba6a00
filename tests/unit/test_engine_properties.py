"""Properties of mutation over generated pods and policies (hypothesis, 500 examples each).

The mutation is idempotent, never changes a field the user set, its patch applies to the pod it was
computed for, and the mutated pod has no violation that one of the matching defaults could fix.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import jsonpatch
from hypothesis import given, settings
from hypothesis import strategies as st

from production_policy.api import ProductionPolicy, parse_policy
from production_policy.engine import INJECTED_ANNOTATION, evaluate_workload, matching_policies, plan_mutation
from production_policy.engine.merge import merge_defaults
from production_policy.quantity import parse_quantity

EXAMPLES = settings(max_examples=500, deadline=None)
QUANTITIES = {
    "cpu": ["50m", "100m", "250m", "1", "2"],
    "memory": ["64Mi", "128Mi", "256Mi", "1Gi"],
    "ephemeral-storage": ["1Gi", "2Gi"],
}
PORT_NAMES = ["http", "grpc", "metrics"]
KINDS = ("readiness", "liveness", "startup")
NAMESPACE, NAMESPACE_LABELS = "shop", {"kubernetes.io/metadata.name": "shop"}

# Strategies are built once, at import: building them inside a draw is what makes generation slow.

# --- policies --------------------------------------------------------------------------------------

_ports = st.sampled_from(["auto", 8080, *PORT_NAMES])
_handlers = st.one_of(
    st.builds(lambda port: {"tcpSocket": {"port": port}}, _ports),
    st.builds(lambda port: {"httpGet": {"path": "/healthz", "port": port}}, _ports),
    st.builds(lambda port: {"grpc": {"port": port}}, st.sampled_from(["auto", 9090])),
)
_templates = st.builds(
    lambda handler, timing: {**handler, **timing}, _handlers, st.sampled_from([{}, {"periodSeconds": 5}])
)
_probe_rules = st.fixed_dictionaries({"required": st.booleans()}, optional={"default": _templates})
_resource_names = st.lists(st.sampled_from(list(QUANTITIES)), unique=True)


def _ordered_defaults(values: list[str]) -> st.SearchStrategy[tuple[str | None, str | None]]:
    """(defaultRequest, default) of a resource, each possibly absent; the request never above the limit."""
    pairs = st.lists(st.integers(0, len(values) - 1), min_size=2, max_size=2).map(sorted)
    return st.builds(
        lambda pair, with_request, with_limit: (
            values[pair[0]] if with_request else None,
            values[pair[1]] if with_limit else None,
        ),
        pairs,
        st.booleans(),
        st.booleans(),
    )


def _resource_spec(
    defaults: dict[str, tuple[str | None, str | None]],
    requests: list[str],
    limits: list[str],
    qos: str | None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"require": {"requests": requests, "limits": limits}}
    for resource, (request, limit) in defaults.items():
        if request:
            spec.setdefault("defaultRequest", {})[resource] = request
        if limit:
            spec.setdefault("default", {})[resource] = limit
    if qos:
        spec["minQoSClass"] = qos
    return spec


_resource_specs = st.builds(
    _resource_spec,
    st.fixed_dictionaries({resource: _ordered_defaults(values) for resource, values in QUANTITIES.items()}),
    _resource_names,
    _resource_names,
    st.sampled_from([None, "BestEffort", "Burstable", "Guaranteed"]),
)
_policy_specs = st.fixed_dictionaries(
    {
        "enforcement": st.sampled_from(["Enforce", "Warn", "Audit"]),
        "priority": st.integers(-3, 3),
        "match": st.sampled_from([{}, {"podSelector": {"matchLabels": {"tier": "web"}}}]),
        "probes": st.fixed_dictionaries(dict.fromkeys(KINDS, _probe_rules)),
        "resources": _resource_specs,
    }
)


def _named_policies(specs: list[dict[str, Any]]) -> list[ProductionPolicy]:
    return [
        parse_policy(
            {
                "apiVersion": "productionpolicy.dev/v1alpha1",
                "kind": "ProductionPolicy",
                "metadata": {"name": f"p{index}"},
                "spec": spec,
            }
        )
        for index, spec in enumerate(specs)
    ]


_policies = st.lists(_policy_specs, min_size=1, max_size=3).map(_named_policies)

# --- pods ------------------------------------------------------------------------------------------

_quantity_maps = st.dictionaries(
    st.sampled_from(list(QUANTITIES)),
    st.sampled_from([*(q for values in QUANTITIES.values() for q in values), "lots"]),
    max_size=3,
)
_resources = st.one_of(
    st.none(),
    st.just({}),
    st.fixed_dictionaries(
        {},
        optional={
            "requests": st.one_of(st.none(), _quantity_maps),
            "limits": st.one_of(st.none(), _quantity_maps),
        },
    ),
)
_port = st.fixed_dictionaries(
    {"containerPort": st.integers(1, 65535)},
    optional={"protocol": st.sampled_from(["TCP", "UDP", None]), "name": st.sampled_from(PORT_NAMES)},
)
_user_probe = st.sampled_from([{"exec": {"command": ["/bin/true"]}}, {"tcpSocket": {"port": 1}}, None])
_container_fields = {
    "ports": st.lists(_port, max_size=3),
    "resources": _resources,
    **{f"{kind}Probe": _user_probe for kind in KINDS},
}
_app_containers = st.fixed_dictionaries({"image": st.just("example/app:1")}, optional=_container_fields)
_init_containers = st.fixed_dictionaries(
    {"image": st.just("example/app:1")}, optional={**_container_fields, "restartPolicy": st.just("Always")}
)
_annotations = st.sampled_from([None, {}, {"team": "x"}, {INJECTED_ANNOTATION: "c0:readiness"}])
_metadata = st.fixed_dictionaries(
    {"name": st.just("pod")},
    optional={"labels": st.sampled_from([{"tier": "web"}, {"tier": "db"}]), "annotations": _annotations},
)


def _pod(
    containers: list[dict[str, Any]], init: list[dict[str, Any]], metadata: dict[str, Any] | None
) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": f"c{i}", **c} for i, c in enumerate(containers)]}
    if init:
        spec["initContainers"] = [{"name": f"i{i}", **c} for i, c in enumerate(init)]
    pod: dict[str, Any] = {"apiVersion": "v1", "kind": "Pod", "spec": spec}
    if metadata is not None:
        pod["metadata"] = metadata
    return pod


_pods = st.builds(
    _pod,
    st.lists(_app_containers, min_size=1, max_size=3),
    st.lists(_init_containers, max_size=2),
    st.one_of(st.none(), _metadata),
)


def _leaves(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """Every set value of a JSON document with its path; nulls count as unset, as in Kubernetes."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _leaves(value, (*path, index))
    elif node is not None:
        yield path, node


def _at(document: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        document = document[key]
    return document


def _plan(pod: dict[str, Any], policies: list[ProductionPolicy]) -> Any:
    return plan_mutation(pod, NAMESPACE, NAMESPACE_LABELS, policies)


# --- properties ------------------------------------------------------------------------------------


@EXAMPLES
@given(_pods, _policies)
def test_patch_applies_to_the_pod_it_was_computed_for(
    pod: dict[str, Any], policies: list[ProductionPolicy]
) -> None:
    original = copy.deepcopy(pod)
    plan = _plan(pod, policies)
    mutated = jsonpatch.apply_patch(pod, plan.patch)
    assert pod == original  # neither planning nor applying touched the input
    assert all(op["op"] == "add" for op in plan.patch)
    assert (plan.patch == []) == (plan.injected == []) == (mutated == pod)


@EXAMPLES
@given(_pods, _policies)
def test_mutation_is_idempotent(pod: dict[str, Any], policies: list[ProductionPolicy]) -> None:
    mutated = jsonpatch.apply_patch(pod, _plan(pod, policies).patch)
    assert _plan(mutated, policies).patch == []


@EXAMPLES
@given(_pods, _policies)
def test_mutation_never_changes_a_field_the_user_set(
    pod: dict[str, Any], policies: list[ProductionPolicy]
) -> None:
    plan = _plan(pod, policies)
    mutated = jsonpatch.apply_patch(pod, plan.patch)
    for path, value in _leaves(pod):
        if path == ("metadata", "annotations", INJECTED_ANNOTATION):
            # Our own record: kept, and extended.
            assert _at(mutated, path).split(",")[: len(value.split(","))] == value.split(",")
        else:
            assert _at(mutated, path) == value, path
    for name, container in _containers(mutated):
        assert container == next(c for n, c in _containers(pod) if n == name) | container  # only additions


def _containers(pod: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for field in ("containers", "initContainers"):
        for container in pod["spec"].get(field, []):
            yield container["name"], container


@EXAMPLES
@given(_pods, _policies)
def test_the_mutated_pod_has_no_violation_a_default_could_fix(
    pod: dict[str, Any], policies: list[ProductionPolicy]
) -> None:
    mutated = jsonpatch.apply_patch(pod, _plan(pod, policies).patch)
    labels = (mutated.get("metadata") or {}).get("labels") or {}
    defaults = merge_defaults(matching_policies(policies, NAMESPACE, NAMESPACE_LABELS, labels))
    originals = dict(_containers(pod))
    for violation in evaluate_workload(mutated, NAMESPACE, NAMESPACE_LABELS, policies).violations:
        if violation.rule == "probes.required":
            kind = violation.field.removesuffix("Probe")
            template = defaults.probes.get(kind)  # type: ignore[call-overload]
            assert template is None or not _port_resolves(template.value, originals[violation.container])
        elif violation.rule == "resources.required":
            _, kind, resource = violation.field.split(".")
            if kind == "requests":
                assert resource not in defaults.requests and resource not in defaults.limits
            else:
                limit = defaults.limits.get(resource)  # type: ignore[call-overload]
                request = ((originals[violation.container].get("resources") or {}).get("requests") or {}).get(
                    resource
                )
                assert limit is None or (request is not None and _above(request, limit.value)), violation


def _port_resolves(template: Any, container: dict[str, Any]) -> bool:
    """An independent statement of when a default probe's port can be used in a container."""
    handler = template.http_get or template.tcp_socket or template.grpc
    ports = container.get("ports") or []
    if handler.port == "auto":
        return any(p.get("protocol") in ("TCP", None) for p in ports)
    if isinstance(handler.port, str):
        return any(p.get("name") == handler.port for p in ports)
    return True


def _above(request: str, limit: str) -> bool:
    try:
        return parse_quantity(request) > parse_quantity(limit)
    except ValueError:
        return True  # an invalid request blocks the default limit too
