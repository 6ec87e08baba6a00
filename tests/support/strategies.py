"""Hypothesis strategies for pods and the policies that match them, shared by the property tests."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from production_policy.api import parse_policy
from production_policy.engine import INJECTED_ANNOTATION, CompiledPolicy, compile_policy

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


def _named_policies(specs: list[dict[str, Any]]) -> list[CompiledPolicy]:
    return [
        compile_policy(
            parse_policy(
                {
                    "apiVersion": "productionpolicy.dev/v1alpha1",
                    "kind": "ProductionPolicy",
                    "metadata": {"name": f"p{index}"},
                    "spec": spec,
                }
            )
        )
        for index, spec in enumerate(specs)
    ]


policies = st.lists(_policy_specs, min_size=1, max_size=3).map(_named_policies)

# --- pods ------------------------------------------------------------------------------------------

_quantity_maps = st.dictionaries(
    st.sampled_from(list(QUANTITIES)),
    st.sampled_from([*(q for values in QUANTITIES.values() for q in values), "lots"]),
    max_size=3,
)
_resources: st.SearchStrategy[dict[str, Any] | None] = st.one_of(
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


pods = st.builds(
    _pod,
    st.lists(_app_containers, min_size=1, max_size=3),
    st.lists(_init_containers, max_size=2),
    st.one_of(st.none(), _metadata),
)
