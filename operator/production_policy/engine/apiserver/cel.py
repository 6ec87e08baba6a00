"""CEL building blocks shared by the compiled mutating and validating policies.

Everything here returns CEL source text. Policies are compiled to literals (no ``paramKind``): the
priority merge becomes, per field, a chain of conditions over per-policy match variables
(``variables.m0 ? "256Mi" : variables.m2 ? "1Gi" : ""``), so the result never depends on the
order in which the API server runs bindings. Map and list literals must be homogeneous in the API
server's CEL environment, hence the ``string(...)`` around values read from the object.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from production_policy.api import AUTO_PORT, RESOURCE_NAMES, ProbeTemplate, ProductionPolicy, WorkloadSelector
from production_policy.api.base import LabelSelector
from production_policy.api.probes import GRPCProbe, HTTPGetProbe, TCPSocketProbe
from production_policy.engine import kinds
from production_policy.engine.compiled import PROBE_KINDS, ProbeKind

RESOURCE_KEYS: tuple[str, ...] = tuple(
    f"{kind}.{resource}" for resource in RESOURCE_NAMES for kind in ("requests", "limits")
)
"""``requests.cpu``, ``limits.cpu``, ...: the order in which the engine injects (and records) resources."""

TCP_PORT = 'p.?protocol.orValue("TCP") == "TCP"'


def lit(text: str) -> str:
    """A CEL string literal for ``text`` (JSON's escapes are CEL's)."""
    return json.dumps(text, ensure_ascii=False)


def str_list(values: Sequence[str]) -> str:
    """A CEL list literal of strings."""
    return "[" + ", ".join(lit(value) for value in values) + "]"


def var_name(stem: str, resource: str) -> str:
    """A CEL identifier for a per-resource variable: ``dreq_ephemeralStorage``."""
    head, _, tail = resource.partition("-")
    return f"{stem}_{head}{tail.capitalize()}"


def selector(sel: LabelSelector, labels: str) -> str:
    """A label selector over the CEL map ``labels``, with Kubernetes semantics ({} matches all)."""
    terms = [f"{labels}[?{lit(key)}] == optional.of({lit(value)})" for key, value in sel.match_labels.items()]
    for requirement in sel.match_expressions:
        key = lit(requirement.key)
        present_in = f"({key} in {labels} && {labels}[{key}] in {str_list(requirement.values)})"
        terms.append(
            {
                "In": present_in,
                "NotIn": f"!{present_in}",
                "Exists": f"{key} in {labels}",
                "DoesNotExist": f"!({key} in {labels})",
            }[requirement.operator]
        )
    return conjunction(terms)


def conjunction(terms: Sequence[str]) -> str:
    """``a && b && ...``; ``true`` for no term."""
    return " && ".join(f"({term})" for term in terms) if terms else "true"


def controller_owners() -> str:
    """The admitted pod's controller owner references to a workload kind (``kinds.POD_CONTROLLERS``),
    a CEL list: empty, or the one controller."""
    owners = " || ".join(
        f"(r.kind in {str_list([k.kind for k in group])} && r.apiVersion.matches({lit(f'^{api}/[^/]*$')}))"
        for api, group in _by_group(kinds.POD_CONTROLLERS)
    )
    return (
        f"object.metadata.?ownerReferences.orValue([]).filter(r, r.?controller.orValue(false) && ({owners}))"
    )


def pod_workload(pod_labels: str, owners: str) -> str:
    """``<kind>/<name>`` of the admitted pod's workload (``kinds.pod_workload``), a CEL string, with
    the pod's labels under the CEL name ``pod_labels`` and its :func:`controller_owners` under ``owners``."""
    name = f"string({owners}[0].name)"
    pod_hash = f'{pod_labels}["pod-template-hash"]'
    return (
        f'size({owners}) == 0 || {name} == "" ? "Pod/" + object.metadata.?name.orValue("") : '
        f'{owners}[0].kind == "ReplicaSet" && "pod-template-hash" in {pod_labels}'
        f' && {name}.endsWith("-" + {pod_hash})'
        f' ? "Deployment/" + {name}.substring(0, size({name}) - size({pod_hash}) - 1) : '
        f'string({owners}[0].kind) + "/" + {name}'
    )


def pod_kinds(owner: str, pod_labels: str) -> str:
    """The kinds ``match.kinds`` sees the admitted pod ``object`` as (``kinds.counted_as``), a CEL
    list of strings, with its ``controller_owners()`` under the CEL name ``owner`` and its labels
    under ``pod_labels``."""
    return (
        f"size({owner}) == 0 ? [{lit(kinds.POD.kind)}] : "
        f'{owner}[0].kind == "ReplicaSet" && "pod-template-hash" in {pod_labels} ? ["Deployment"] : '
        f"{pods_of(f'string({owner}[0].kind)')}"
    )


def pods_of(kind: str) -> str:
    """The kinds the pods of a workload of (CEL) ``kind`` count as (``kinds.pods_counted_as``)."""
    job_pods = str_list(sorted(kinds.pods_counted_as("Job")))
    return f"({kind} in {job_pods} ? {job_pods} : [{kind}])"


def _by_group(workload_kinds: Sequence[kinds.WorkloadKind]) -> list[tuple[str, list[kinds.WorkloadKind]]]:
    groups: dict[str, list[kinds.WorkloadKind]] = {}
    for kind in workload_kinds:
        groups.setdefault(kind.group, []).append(kind)
    return list(groups.items())


def _meets_all(
    selector_: WorkloadSelector, namespace: str, namespace_labels: str, pod_labels: str, kinds_: str
) -> str:
    terms = []
    if selector_.kinds:
        terms.append(f"{kinds_}.exists(k, k in {str_list(selector_.kinds)})")
    if selector_.namespaces:
        terms.append(f"{namespace} in {str_list(selector_.namespaces)}")
    if selector_.namespace_selector is not None:
        terms.append(selector(selector_.namespace_selector, namespace_labels))
    if selector_.pod_selector is not None:
        terms.append(selector(selector_.pod_selector, pod_labels))
    return conjunction(terms)


def policy_match(
    policy: ProductionPolicy, namespace: str, namespace_labels: str, pod_labels: str, kinds_: str
) -> str:
    """Whether ``policy`` applies (as ``matching.policy_matches``), over CEL names of the namespace's
    name and labels, of the pod's labels and of the kinds it counts as. The ``ignore`` label is
    left to the bindings' selector."""
    match = _meets_all(policy.spec.match, namespace, namespace_labels, pod_labels, kinds_)
    if policy.spec.exclude.is_empty():
        return match
    excluded = _meets_all(policy.spec.exclude, namespace, namespace_labels, pod_labels, kinds_)
    return f"({match}) && !({excluded})"


def chain(alternatives: Sequence[tuple[int, str]], otherwise: str) -> str:
    """``variables.m<i> ? value : ... : otherwise``: the first matching policy's value wins."""
    text = otherwise
    for index, value in reversed(alternatives):
        text = f"variables.m{index} ? {value} : {text}"
    return text


@dataclass(frozen=True)
class Defaults:
    """Which of the (precedence-ordered) policies give each default, for the per-field chains."""

    probes: Mapping[ProbeKind, tuple[tuple[int, ProbeTemplate], ...]]
    requests: Mapping[str, tuple[tuple[int, str], ...]]
    limits: Mapping[str, tuple[tuple[int, str], ...]]

    @property
    def resources(self) -> tuple[str, ...]:
        """The resources some policy gives a default request or limit for, in RESOURCE_NAMES order."""
        return tuple(r for r in RESOURCE_NAMES if r in self.requests or r in self.limits)

    def is_empty(self) -> bool:
        """Whether no policy gives any default."""
        return not self.probes and not self.resources


def collect_defaults(policies: Sequence[ProductionPolicy]) -> Defaults:
    """Who gives which default among ``policies`` (in precedence order; indexes are theirs)."""
    probes: dict[ProbeKind, list[tuple[int, ProbeTemplate]]] = {}
    requests: dict[str, list[tuple[int, str]]] = {}
    limits: dict[str, list[tuple[int, str]]] = {}
    for index, policy in enumerate(policies):
        for kind in PROBE_KINDS:
            template = getattr(policy.spec.probes, kind).default_probe
            if template is not None:
                probes.setdefault(kind, []).append((index, template))
        resources = policy.spec.resources
        for target, quantities in ((requests, resources.default_request), (limits, resources.default_limits)):
            for resource in RESOURCE_NAMES:
                value = quantities.get(resource) if quantities else None
                if value is not None:
                    target.setdefault(resource, []).append((index, value))
    return Defaults(
        {kind: tuple(entries) for kind, entries in probes.items()},
        {resource: tuple(entries) for resource, entries in requests.items()},
        {resource: tuple(entries) for resource, entries in limits.items()},
    )


def default_variables(defaults: Defaults) -> list[dict[str, str]]:
    """The merged defaults as variables: ``dprobe_<kind>`` (index of the winning policy, -1: none),
    ``dreq_<resource>`` and ``dlim_<resource>`` (the quantity, "" for none)."""
    variables = [
        {"name": f"dprobe_{kind}", "expression": chain([(i, str(i)) for i, _ in entries], "-1")}
        for kind, entries in defaults.probes.items()
    ]
    for resource in defaults.resources:
        for stem, source in (("dreq", defaults.requests), ("dlim", defaults.limits)):
            if resource in source:
                variables.append(
                    {
                        "name": var_name(stem, resource),
                        "expression": chain([(i, lit(v)) for i, v in source[resource]], '""'),
                    }
                )
    return variables


def _default_of(stem: str, resource: str, source: Mapping[str, object]) -> str:
    return f"variables.{var_name(stem, resource)}" if resource in source else '""'


def own(container: str, kind: str, resource: str) -> str:
    """The container's own request or limit of ``resource`` as a string, "" when it has none."""
    return f"string({container}.?resources.?{kind}[?{lit(resource)}].orValue(''))"


def injected_limit(container: str, resource: str, defaults: Defaults) -> str:
    """The limit the engine injects (``defaulting._default_limit``), "" for none."""
    if resource not in defaults.limits:
        return '""'
    limit = _default_of("dlim", resource, defaults.limits)
    request = own(container, "requests", resource)
    return (
        f'({own(container, "limits", resource)} == "" && {limit} != "" && ({request} == ""'
        f' || quantity({request}).compareTo(quantity({limit})) <= 0)) ? {limit} : ""'
    )


def injected_request(container: str, resource: str, defaults: Defaults) -> str:
    """The request the engine injects (``defaulting._default_request``), "" for none: only into a
    container with neither request nor limit; the default request, capped at the injected limit."""
    if resource not in defaults.requests and resource not in defaults.limits:
        return '""'
    request = _default_of("dreq", resource, defaults.requests)
    limit = _default_of("dlim", resource, defaults.limits)
    if resource not in defaults.requests:
        value = limit
    elif resource not in defaults.limits:
        value = request
    else:
        value = (
            f'({request} == "" ? {limit} : ({limit} != "" && '
            f"quantity({request}).isGreaterThan(quantity({limit})) ? {limit} : {request}))"
        )
    bare = f'{own(container, "requests", resource)} == "" && {own(container, "limits", resource)} == ""'
    return f'({bare}) ? {value} : ""'


def probe_port_ok(template: ProbeTemplate, container: str) -> str:
    """Whether the template's port resolves for the container (``defaulting._resolved_probe``)."""
    port = _handler(template)[1].port
    if port == AUTO_PORT:
        return f"{container}.?ports.orValue([]).exists(p, {TCP_PORT})"
    if isinstance(port, str):
        return f'{container}.?ports.orValue([]).exists(p, p.?name.orValue("") == {lit(port)})'
    return "true"


def probe_gap_message(kind: ProbeKind, template: ProbeTemplate | None, container: str) -> str:
    """The engine's message for a missing required probe (``rules._missing_probe``), as CEL."""
    name = f"{kind}Probe"
    if template is None:
        return lit(f"no {name} — add a {name}")
    port = _handler(template)[1].port
    if port == AUTO_PORT:
        tcp = f'no {name} and port "auto" has no declared TCP port — add a {name} or a containerPort'
        none = f'no {name} and port "auto" has no declared port — add a {name} or a containerPort'
        return f"size({container}.?ports.orValue([])) > 0 ? {lit(tcp)} : {lit(none)}"
    remedy = f'or a containerPort named "{port}"'
    return lit(f'no {name} and port "{port}" is not a declared port name — add a {name} {remedy}')


def _handler(template: ProbeTemplate) -> tuple[str, HTTPGetProbe | TCPSocketProbe | GRPCProbe]:
    handlers = (("httpGet", template.http_get), ("tcpSocket", template.tcp_socket), ("grpc", template.grpc))
    for name, handler in handlers:
        if handler is not None:
            return name, handler
    raise AssertionError("a probe template has exactly one handler")  # the model enforces it


def probe_value(template: ProbeTemplate, type_prefix: str, container: str) -> str:
    """The injected probe as a CEL object of the MAP's type ``type_prefix`` (``Object.spec.containers.
    readinessProbe``), with its port resolved for ``container`` as ``defaulting._resolved_probe``."""
    probe = template.model_dump(by_alias=True, exclude_none=True)
    name, _ = _handler(template)
    handler = probe[name]
    if handler.get("httpHeaders") == []:
        del handler["httpHeaders"]
    fields = []
    for key, value in probe.items():
        if key == name:
            fields.append(f"{key}: {_handler_value(handler, f'{type_prefix}.{key}', container)}")
        else:
            fields.append(f"{key}: {int(value)}")
    return f"{type_prefix}{{{', '.join(fields)}}}"


def _handler_value(handler: Mapping[str, object], type_name: str, container: str) -> str:
    fields = []
    for key, value in handler.items():
        if key == "port":
            if value == AUTO_PORT:
                text = f"{container}.ports.filter(p, {TCP_PORT})[0].containerPort"
            else:
                text = lit(value) if isinstance(value, str) else str(value)
        elif key == "httpHeaders":
            assert isinstance(value, list)
            text = (
                "["
                + ", ".join(
                    f"{type_name}.httpHeaders{{name: {lit(h['name'])}, value: {lit(h['value'])}}}"
                    for h in value
                )
                + "]"
            )
        else:
            assert isinstance(value, str)
            text = lit(value)
        fields.append(f"{key}: {text}")
    return f"{type_name}{{{', '.join(fields)}}}"
