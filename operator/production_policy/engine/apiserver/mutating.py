"""The MutatingAdmissionPolicy: the engine's ``plan_mutation`` as one JSONPatch mutation on Pod CREATE.

One mutation adds the probes, the resources and the ``productionpolicy.dev/injected`` annotation,
so requests and limits land together (the API server re-runs Pod defaulting after each mutation:
a limit injected alone would be copied into the request before a later mutation could add the
default request). JSONPatch rather than ApplyConfiguration: a probe default with ``httpHeaders``
is an atomic list, which ApplyConfiguration refuses to set. Each ``add`` goes to the first member
the pod lacks (``requests`` when the container has none, else ``requests/cpu``), as
``mutation.add_operations`` does, and nothing present is replaced, so re-invocation adds nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from production_policy.api import ProbeTemplate, ProductionPolicy
from production_policy.engine.apiserver.cel import (
    RESOURCE_KEYS,
    Defaults,
    chain,
    controller_owners,
    default_variables,
    injected_limit,
    injected_request,
    lit,
    pod_kinds,
    pod_workload,
    policy_match,
    probe_port_ok,
    probe_value,
    str_list,
)
from production_policy.engine.apiserver.validating import POD_RULES
from production_policy.engine.compiled import PROBE_KINDS, ExemptionKey, ProbeKind
from production_policy.engine.mutation import escape_pointer
from production_policy.engine.names import INJECTED_ANNOTATION

FIELDS = ("containers", "initContainers")


Withdrawn = dict[tuple[int, ProbeKind], list[str]]
"""(policy index, probe kind) -> ``<namespace>/<kind>/<name>/<container>`` it is withdrawn from."""


def _withdrawn(policies: Sequence[frozenset[ExemptionKey]]) -> Withdrawn:
    """The withdrawals of each (precedence-ordered) policy, ``CompiledPolicy.withdrawn``, by policy
    index and probe kind."""
    found: Withdrawn = {}
    for index, keys in enumerate(policies):
        for namespace, kind, name, container, probe in sorted(keys):
            found.setdefault((index, probe), []).append(f"{namespace}/{kind}/{name}/{container}")
    return found


def _probe_allowed(index: int, kind: ProbeKind, withdrawn: Withdrawn, requiring: Sequence[int]) -> str:
    """CEL: the probe of policy ``index`` is not withdrawn from container ``c`` of this workload, or
    a matching policy (of ``requiring``) requires it."""
    keys = withdrawn.get((index, kind))
    if not keys:
        return "true"
    required = " || ".join(f"variables.m{j}" for j in requiring)
    exempt = f'!((variables.workload + "/" + string(c.name)) in {str_list(keys)})'
    return f"({required} || {exempt})" if required else exempt


def _injectable(
    index: int, template: ProbeTemplate, kind: ProbeKind, withdrawn: Withdrawn, requiring: Sequence[int]
) -> str:
    """CEL: policy ``index``'s default of ``kind`` goes into container ``c``: its port resolves, and
    it is not withdrawn (``defaulting._resolved_probe``, ``mutation._without_withdrawn``)."""
    port_ok = probe_port_ok(template, "c")
    allowed = _probe_allowed(index, kind, withdrawn, requiring)
    return port_ok if allowed == "true" else f"({port_ok}) && {allowed}"


def _probes_to_add(
    field: str, defaults: Defaults, withdrawn: Withdrawn, requiring: dict[ProbeKind, list[int]]
) -> str:
    """Per container of ``field``: the probe kinds to inject, in the engine's order."""
    parts = []
    takes = "true" if field == "containers" else 'c.?restartPolicy.orValue("") == "Always"'
    for kind in PROBE_KINDS:
        entries = defaults.probes.get(kind)
        if not entries:
            continue
        resolvable = chain(
            [(i, _injectable(i, t, kind, withdrawn, requiring.get(kind, []))) for i, t in entries], "false"
        )
        parts.append(f"(({takes}) && !has(c.{kind}Probe) && ({resolvable}) ? [{lit(kind)}] : [])")
    body = " + ".join(parts) if parts else "[]"
    return f"object.spec.?{field}.orValue([]).map(c, {body})"


def _resources_to_add(field: str, defaults: Defaults) -> str:
    """Per container of ``field``: ``{"requests": {resource: value}, "limits": {...}}``, "" for none."""
    requests = ", ".join(f"{lit(r)}: {injected_request('c', r, defaults)}" for r in defaults.resources)
    limits = ", ".join(f"{lit(r)}: {injected_limit('c', r, defaults)}" for r in defaults.resources)
    return f'object.spec.?{field}.orValue([]).map(c, {{"requests": {{{requests}}}, "limits": {{{limits}}}}})'


def _labels(field: str, defaults: Defaults) -> str:
    """Per container of ``field``: what the annotation records (``readiness``, ``resources.requests.cpu``)."""
    resources = "".join(
        f' + (variables.{field}_res[j]["{section}"]["{resource}"] != "" ? ["resources.{key}"] : [])'
        for key in RESOURCE_KEYS
        for section, _, resource in [key.partition(".")]
        if resource in defaults.resources
    )
    return f"variables.{field}_probes.transformList(j, kinds, kinds{resources})"


def something_to_default(defaults: Defaults) -> str:
    """Whether some container lacks a probe or a request or limit that a policy gives a default for:
    the MAP's match condition. A superset of what it injects (cheap, and without the policies'
    match), so that its second run on the object it mutated, which ``IfNeeded`` makes the API server
    do, stops here when the first one left nothing to add."""
    probes = " || ".join(f"!has(c.{kind}Probe)" for kind in PROBE_KINDS if defaults.probes.get(kind))
    resources = []
    for resource in defaults.resources:
        resources.append(f"!({lit(resource)} in c.?resources.?requests.orValue({{}}))")
        if resource in defaults.limits:
            resources.append(f"!({lit(resource)} in c.?resources.?limits.orValue({{}}))")
    missing = " || ".join(resources)
    terms = []
    if probes or missing:
        terms.append(f"object.spec.containers.exists(c, {' || '.join(t for t in (probes, missing) if t)})")
    sidecar = f'(c.?restartPolicy.orValue("") == "Always" && ({probes}))' if probes else ""
    if sidecar or missing:
        init = " || ".join(t for t in (sidecar, missing) if t)
        terms.append(f"object.spec.?initContainers.orValue([]).exists(c, {init})")
    return " || ".join(terms) or "false"


def _operations(field: str, defaults: Defaults) -> str:
    """The JSON patch operations for the containers of ``field``."""
    base = f'"/spec/{field}/" + string(j)'
    parts = []
    for kind in PROBE_KINDS:
        entries = defaults.probes.get(kind)
        if not entries:
            continue
        type_prefix = f"Object.spec.{field}.{kind}Probe"
        *head, (_, last) = entries
        value = probe_value(last, type_prefix, "c")
        for index, template in reversed(head):
            value = (
                f"variables.dprobe_{kind} == {index} ? {probe_value(template, type_prefix, 'c')} : {value}"
            )
        parts.append(
            f"({lit(kind)} in variables.{field}_probes[j] ? "
            f'[JSONPatch{{op: "add", path: {base} + "/{kind}Probe", value: {value}}}] : [])'
        )
    if defaults.resources:
        for section in ("requests", "limits"):
            wanted = f'variables.{field}_res[j]["{section}"]'
            names = f'{str_list(defaults.resources)}.filter(r, {wanted}[r] != "")'
            one_each = (
                f'JSONPatch{{op: "add", path: {base} + "/resources/{section}/" + r, value: {wanted}[r]}}'
            )
            parts.append(
                f"(size({names}) == 0 ? [] : has(c.resources.{section}) ? {names}.map(r, {one_each})"
                f' : [JSONPatch{{op: "add", path: {base} + "/resources/{section}", '
                f'value: {wanted}.transformMap(r, v, v != "", v)}}])'
            )
    body = " + ".join(parts) if parts else "[]"
    return f"object.spec.?{field}.orValue([]).transformList(j, c, {body}).flatten()"


def mutating_policy(
    name: str,
    policies: Sequence[ProductionPolicy],
    defaults: Defaults,
    labels: dict[str, str],
    withdrawals: Sequence[frozenset[ExemptionKey]] = (),
) -> dict[str, Any]:
    """The MutatingAdmissionPolicy for the precedence-ordered ``policies`` (see the module doc), with
    ``withdrawals`` (each policy's ``CompiledPolicy.withdrawn``, in the same order) left out."""
    key = lit(INJECTED_ANNOTATION)
    variables: list[dict[str, str]] = [
        {"name": "ns", "expression": "namespaceObject.metadata.name"},
        {"name": "nsLabels", "expression": "namespaceObject.metadata.?labels.orValue({})"},
        {"name": "podLabels", "expression": "object.metadata.?labels.orValue({})"},
        {"name": "owner", "expression": controller_owners()},
        {"name": "kinds", "expression": pod_kinds("variables.owner", "variables.podLabels")},
    ]
    withdrawn = _withdrawn(withdrawals)
    requiring: dict[ProbeKind, list[int]] = {
        kind: [j for j, policy in enumerate(policies) if getattr(policy.spec.probes, kind).required]
        for kind in {kind for _, kind in withdrawn}
    }
    if withdrawn:
        workload = pod_workload("variables.podLabels", "variables.owner")
        variables.append({"name": "workload", "expression": f'variables.ns + "/" + ({workload})'})
    givers = sorted(
        {i for entries in defaults.probes.values() for i, _ in entries}
        | {i for entries in (*defaults.requests.values(), *defaults.limits.values()) for i, _ in entries}
        | {j for indexes in requiring.values() for j in indexes}
    )
    variables += [
        {
            "name": f"m{i}",
            "expression": policy_match(
                policies[i], "variables.ns", "variables.nsLabels", "variables.podLabels", "variables.kinds"
            ),
        }
        for i in givers
    ]
    variables += default_variables(defaults)
    for field in FIELDS:
        variables.append(
            {"name": f"{field}_probes", "expression": _probes_to_add(field, defaults, withdrawn, requiring)}
        )
        if defaults.resources:
            variables.append({"name": f"{field}_res", "expression": _resources_to_add(field, defaults)})
        variables.append({"name": f"{field}_labels", "expression": _labels(field, defaults)})
    variables += [
        {
            "name": "injected",
            "expression": " + ".join(
                f"variables.{field}_labels.transformList(j, ls, "
                f'ls.map(l, string(object.spec.{field}[j].name) + ":" + l)).flatten()'
                for field in FIELDS
            ),
        },
        {
            "name": "earlier",
            "expression": f'object.metadata.?annotations[?{key}].orValue("").split(",").filter(e, e != "")',
        },
        {
            "name": "record",
            "expression": "variables.earlier + variables.injected.filter(e, !(e in variables.earlier))",
        },
    ]
    record = 'variables.record.join(",")'
    annotation = (
        "size(variables.injected) == 0 ? [] : has(object.metadata.annotations) ? "
        f'[JSONPatch{{op: "add", path: "/metadata/annotations/{escape_pointer(INJECTED_ANNOTATION)}", '
        f"value: {record}}}] : "
        f'[JSONPatch{{op: "add", path: "/metadata/annotations", value: {{{key}: {record}}}}}]'
    )
    expression = " + ".join([*(_operations(field, defaults) for field in FIELDS), f"({annotation})"])
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingAdmissionPolicy",
        "metadata": {"name": name, "labels": dict(labels)},
        "spec": {
            "failurePolicy": "Ignore",
            "reinvocationPolicy": "IfNeeded",
            "matchConstraints": {"resourceRules": [*POD_RULES]},
            "matchConditions": [
                {"name": "something-to-default", "expression": something_to_default(defaults)}
            ],
            "variables": variables,
            "mutations": [{"patchType": "JSONPatch", "jsonPatch": {"expression": expression}}],
        },
    }
