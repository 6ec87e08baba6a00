"""The ValidatingAdmissionPolicies: the engine's ``evaluate_workload`` for Pods and workload templates.

One policy per enforcement mode, each with only its own mode's rules: the Enforce one (bound with
``[Deny]``) fails when an Enforce policy is broken, with the engine's consolidated message of the
Enforce violations; the Warn one (bound with ``[Warn]``) gives one warning per Warn violation, as
the webhook does, whether or not the request is refused (the API server evaluates every VAP and
passes the warnings on with a denial). So an edit of one policy changes the VAP of its mode only,
and the API server recompiles only that one. Each simulates the merged defaults on the pod spec
(a template gets no defaults from the MAP) and ratchets against ``oldObject`` on UPDATE. CEL has
no functions, so to write each rule once the containers of the new pod spec and of the old one
are one list (``res``), each finding saying its side; what every policy reads the same (a
container's requests after defaults, a limit below its request) is computed once, in shared
variables. The API server compiles all of it at every write of the object and again when it
loads it, so the size of this CEL is what a policy edit waits for. The VAP of a mode no policy
uses holds nothing but ``true``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from production_policy.api import RESOURCE_NAMES, ProductionPolicy, ResourceName, ResourcePolicy
from production_policy.engine import kinds
from production_policy.engine.apiserver.cel import (
    Defaults,
    default_variables,
    injected_limit,
    injected_request,
    lit,
    own,
    pods_of,
    policy_match,
    probe_gap_message,
    probe_port_ok,
    var_name,
)
from production_policy.engine.compiled import PROBE_KINDS, ProbeKind, has_container_rules
from production_policy.engine.validation import MAX_MESSAGE, MAX_WARNING_LENGTH, MAX_WARNINGS, MORE_WARNINGS

POD_RULES = [
    {**rule, "operations": ["CREATE"], "scope": "Namespaced"} for rule in kinds.rules_for([kinds.POD])
]
"""``matchConstraints.resourceRules`` of pod creates, as the pod webhooks' (both policies')."""
WORKLOAD_RULES = [
    {**rule, "operations": ["CREATE", "UPDATE"], "scope": "Namespaced"}
    for rule in kinds.rules_for(kinds.POD_CONTROLLERS)
]
# ``pods.controlled_by_workload``: such an object was judged through its owner's template.
NOT_CONTROLLED = (
    "!object.metadata.?ownerReferences.orValue([]).exists(r, r.?controller.orValue(false) && ("
    '(r.kind in ["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"]'
    ' && r.apiVersion.matches("^apps/[^/]*$"))'
    ' || (r.kind in ["Job", "CronJob"] && r.apiVersion.matches("^batch/[^/]*$"))))'
)


def _template(obj: str) -> str:
    return (
        f'variables.kind == "Pod" ? {obj} : variables.kind == "CronJob" ? '
        f"{obj}.spec.jobTemplate.spec.template : {obj}.spec.template"
    )


def _container_variables(
    defaults: Defaults, required: set[ProbeKind], container_rules: bool
) -> list[dict[str, str]]:
    """The facts the rules read of each container of the new pod spec and then of the old one (one
    list, so each rule is written once for both): ``res[j]`` has its name ``n``, its side ``s``
    (``n``ew or ``o``ld), ``r`` = ``y`` where probes are judged (a container, or a sidecar init
    container), its requests and limits after defaults, and per required probe ``ok`` or what is
    missing; ``eff[j]`` its effective requests (the limit where no request is set)."""
    old = "variables.old"
    variables = [
        {"name": "nc", "expression": "size(variables.new.containers)"},
        {"name": "nn", "expression": "variables.nc + size(variables.new.?initContainers.orValue([]))"},
        {"name": "oc", "expression": f"{old} == null ? 0 : size({old}.containers)"},
        {
            "name": "cs",
            "expression": "variables.new.containers + variables.new.?initContainers.orValue([]) + "
            f"({old} == null ? [] : {old}.containers + {old}.?initContainers.orValue([]))",
        },
    ]
    entries = [
        '"n": string(c.name)',
        '"p": "container \\"" + string(c.name) + "\\": "',
        '"s": j < variables.nn ? "n" : "o"',
    ]
    if required:
        entries.append(
            '"r": (j < variables.nc || (j >= variables.nn && j - variables.nn < variables.oc) || '
            'c.?restartPolicy.orValue("") == "Always") ? "y" : ""'
        )
    for resource in RESOURCE_NAMES:
        for kind, injected in (("requests", injected_request), ("limits", injected_limit)):
            mine = own("c", kind, resource)
            value = (
                mine
                if resource not in defaults.resources
                else f'{mine} != "" ? {mine} : {injected("c", resource, defaults)}'
            )
            entries.append(f"{lit(f'{kind}.{resource}')}: {value}")
    for kind in PROBE_KINDS:
        if kind not in required:
            continue
        templates = defaults.probes.get(kind, ())
        state = probe_gap_message(kind, None, "c")
        for index, template in reversed(templates):
            resolved = f'{probe_port_ok(template, "c")} ? "ok" : {probe_gap_message(kind, template, "c")}'
            state = f"variables.dprobe_{kind} == {index} ? ({resolved}) : {state}"
        entries.append(f'"pr.{kind}": has(c.{kind}Probe) ? "ok" : {state}')
    variables.append(
        {"name": "res", "expression": f"variables.cs.transformList(j, c, {{{', '.join(entries)}}})"}
    )
    effective = ", ".join(
        f'{lit(r)}: R["requests.{r}"] != "" ? R["requests.{r}"] : R["limits.{r}"]' for r in RESOURCE_NAMES
    )
    variables.append({"name": "eff", "expression": f"variables.res.map(R, {{{effective}}})"})
    if container_rules:
        variables.append({"name": "order", "expression": _order_findings()})
    return variables


def _order_findings() -> str:
    """Per container, by resource: its limit below its request, as a list of findings (the same for
    every policy with container rules, so computed once)."""
    entries = []
    for resource in RESOURCE_NAMES:
        request_field, limit_field = f"resources.requests.{resource}", f"resources.limits.{resource}"
        limit, request = f'R["limits.{resource}"]', f'variables.eff[j]["{resource}"]'
        message = (
            f"{lit(limit_field + ' ')} + {limit} + {lit(' is below ' + request_field + ' ')} + {request}"
            f" + {lit(' — raise the limit or lower the request')}"
        )
        entries.append(
            f'{lit(resource)}: {request} != "" && {limit} != "" && '
            f"quantity({limit}).isLessThan(quantity({request})) ? "
            f"[{_finding(limit_field, 'resources.order', message)}] : []"
        )
    return f"variables.res.transformList(j, R, {{{', '.join(entries)}}})"


def _quantity(text: str) -> str:
    return f'quantity({text} == "" ? "0" : {text})'


def _qos_variables() -> list[dict[str, str]]:
    """``qos.pod_qos_class`` in CEL, ``qos[0]`` of the new pod spec and ``qos[1]`` of the old one:
    per container from its requests and limits after defaults; with pod-level resources, the API
    server's own ``status.qosClass`` on a Pod, and on a template the pod-level values when they
    are complete ("" otherwise: that case is left to the webhook)."""

    def requirements_qos(request: Any, limit: Any) -> str:
        same = " && ".join(
            f"{_quantity(request(r))}.compareTo({_quantity(limit(r))}) == 0" for r in ("cpu", "memory")
        )
        zero = [f'{_quantity(request(r))}.compareTo(quantity("0")) == 0' for r in ("cpu", "memory")]
        return (
            f'!({same}) ? "Burstable" : ({zero[0]} && {zero[1]}) ? "BestEffort" : '
            f'(!({zero[0]}) && !({zero[1]})) ? "Guaranteed" : "Burstable"'
        )

    per_container = requirements_qos(lambda r: f'variables.eff[j]["{r}"]', lambda r: f'R["limits.{r}"]')
    pod_requests = "variables.podRes[i][0]"
    pod_limits = "variables.podRes[i][1]"
    pod_level = requirements_qos(
        lambda r: f'string({pod_requests}[?"{r}"].orValue(""))',
        lambda r: f'string({pod_limits}[?"{r}"].orValue(""))',
    )
    complete = f'size({pod_limits}) == 0 || ("cpu" in {pod_requests} && "memory" in {pod_requests})'
    classes = "variables.sideCls[i]"
    # On Pod CREATE the API server has set status.qosClass before validating admission runs.
    by_pod = (
        f'variables.kind == "Pod" ? string(object.status.?qosClass.orValue("")) : '
        f'({complete}) ? ({pod_level}) : ""'
    )
    uniform = f"{classes}.all(k, k == {classes}[0])"
    by_containers = f'size({classes}) == 0 ? "BestEffort" : {uniform} ? {classes}[0] : "Burstable"'
    return [
        {
            "name": "cls",
            "expression": f"variables.res.transformList(j, R, {per_container})",
        },
        {
            "name": "sideCls",
            "expression": "variables.old == null ? [variables.cls] : "
            "[variables.cls.slice(0, variables.nn), variables.cls.slice(variables.nn, size(variables.cls))]",
        },
        {
            "name": "podRes",
            "expression": "(variables.old == null ? [variables.new] : [variables.new, variables.old]).map(p, "
            "[p.?resources.?requests.orValue({}), p.?resources.?limits.orValue({})])",
        },
        {
            "name": "qos",
            "expression": (
                f"variables.podRes.transformList(i, p, "
                f"(size({pod_requests}) > 0 || size({pod_limits}) > 0) ? "
                f"({by_pod}) : {by_containers})"
            ),
        },
    ]


def _finding(field: str, rule: str, message: str) -> str:
    """One violation of container ``R`` as CEL: ``{"s": side, "k": container|field|rule, "m": what
    describe() says}``."""
    return f'{{"s": R["s"], "k": R["n"] + {lit(f"|{field}|{rule}")}, "m": R["p"] + {message}}}'


def _missing_limit(
    resource: ResourceName, resources: ResourcePolicy, defaults: Defaults, request: str
) -> str:
    """``rules._missing_limit`` as CEL: when a default limit was left out for being below the
    container's ``request`` (a limit still missing after the defaults means just that), why, and the
    smallest limit that passes or why none can."""
    request_field, limit_field = f"resources.requests.{resource}", f"resources.limits.{resource}"
    plain = lit(f"no {limit_field} — add {limit_field}")
    if resource not in defaults.limits:
        return plain
    default = f"variables.{var_name('dlim', resource)}"
    why = (
        f"{lit(f'no {limit_field} and the default limit ')} + {default} + "
        f"{lit(f' was not injected, as it is below {request_field} ')} + {request}"
    )
    minimum = resources.min.get(resource) if resources.min else None
    maximum = resources.max.get(resource) if resources.max else None
    smallest = request
    if minimum is not None:
        smallest = (
            f"(quantity({lit(minimum)}).isGreaterThan(quantity({request})) ? {lit(minimum)} : {request})"
        )
    upper = "" if maximum is None else f" + {lit(f' and at most {maximum}')}"
    explained = f"{why} + {lit(f' — add {limit_field} of at least ')} + {smallest}{upper}"
    if maximum is not None:
        none_passes = lit(
            f"; no limit can pass, as it must be at least the request and at most max {maximum}"
            f" — lower {request_field} to at most {maximum} and add {limit_field}"
        )
        above = f"quantity({request}).isGreaterThan(quantity({lit(maximum)}))"
        explained = f"({above} ? {why} + {none_passes} : {explained})"
    return f'({default} != "" && {request} != "" ? {explained} : {plain})'


def _container_findings(policy: ProductionPolicy, defaults: Defaults) -> list[str]:
    """``rules.policy_violations`` for container ``R = variables.res[j]``, as CEL lists of findings."""
    parts = []
    for kind in PROBE_KINDS:
        if getattr(policy.spec.probes, kind).required:
            state = f'R["pr.{kind}"]'
            finding = _finding(f"{kind}Probe", "probes.required", state)
            parts.append(f'(R["r"] == "y" && {state} != "ok" ? [{finding}] : [])')
    resources = policy.spec.resources
    if not has_container_rules(resources):
        return parts
    for resource in RESOURCE_NAMES:
        request_field, limit_field = f"resources.requests.{resource}", f"resources.limits.{resource}"
        explicit, limit = f'R["requests.{resource}"]', f'R["limits.{resource}"]'
        request = f'variables.eff[j]["{resource}"]'
        if resource in resources.require.requests:
            message = lit(f"no {request_field} — add {request_field}")
            parts.append(
                f'({request} == "" ? [{_finding(request_field, "resources.required", message)}] : [])'
            )
        if resource in resources.require.limits:
            message = _missing_limit(resource, resources, defaults, explicit)
            parts.append(f'({limit} == "" ? [{_finding(limit_field, "resources.required", message)}] : [])')
        minimum = resources.min.get(resource) if resources.min else None
        maximum = resources.max.get(resource) if resources.max else None
        for field, value in ((request_field, explicit), (limit_field, limit)):
            for bound, compare, words in (
                (minimum, "isLessThan", "is below min {0} — set at least {0}"),
                (maximum, "isGreaterThan", "exceeds max {0} — set at most {0}"),
            ):
                if bound is None:
                    continue
                rule = "resources.min" if compare == "isLessThan" else "resources.max"
                message = f"{lit(field + ' ')} + {value} + {lit(' ' + words.format(bound))}"
                parts.append(
                    f'({value} != "" && quantity({value}).{compare}(quantity({lit(bound)})) ? '
                    f"[{_finding(field, rule, message)}] : [])"
                )
        shared = f'variables.order[j]["{resource}"]'
        ratio = resources.max_limit_request_ratio.get(resource) if resources.max_limit_request_ratio else None
        if ratio is None:
            parts.append(shared)
            continue
        factor = float(ratio)
        message = (
            f"{lit(limit_field + ' ')} + {limit} + {lit(' / ' + request_field + ' ')} + {request}"
            f" + {lit(f' exceeds maxLimitRequestRatio {ratio} — lower the limit or raise the request')}"
        )
        # As LimitRanger, in floating point: the quantity library has no multiplication.
        as_float = "quantity({}).asApproximateFloat()"
        above = f"{as_float.format(limit)} > {as_float.format(request)} * {factor!r}"
        parts.append(
            f'(size({shared}) > 0 ? {shared} : {request} != "" && {limit} != "" && {above} ? '
            f"[{_finding(limit_field, 'resources.ratio', message)}] : [])"
        )
    return parts


def _policy_findings(policy: ProductionPolicy, parts: Sequence[str]) -> str:
    """The policy's findings on the new pod spec and on the old one (told apart by ``s``), from its
    ``parts`` (its :func:`_container_findings`, or references to them where shared)."""
    text = f"variables.res.transformList(j, R, {' + '.join(parts)}).flatten()" if parts else "[]"
    wanted = policy.spec.resources.min_qos_class
    if wanted is not None and wanted != "BestEffort":
        below = 'q != "Guaranteed"' if wanted == "Guaranteed" else 'q == "BestEffort"'
        remedy = (
            "set cpu and memory limits on every container, with requests equal to limits"
            if wanted == "Guaranteed"
            else "set resources.requests on the containers"
        )
        message = f'"pod: QoS class " + q + {lit(f" is below minQoSClass {wanted} — {remedy}")}'
        finding = f'{{"s": i == 0 ? "n" : "o", "k": "|qosClass|qos.min", "m": {message}}}'
        text += f' + variables.qos.transformList(i, q, q != "" && {below} ? [{finding}] : []).flatten()'
    return text


def has_rules(policy: ProductionPolicy) -> bool:
    """Whether a policy has anything admission can refuse or warn about."""
    probes = policy.spec.probes
    resources = policy.spec.resources
    return (
        any(getattr(probes, kind).required for kind in PROBE_KINDS)
        or has_container_rules(resources)
        or resources.min_qos_class not in (None, "BestEffort")
    )


def validating_variables(
    policies: Sequence[ProductionPolicy], defaults: Defaults, judged: Sequence[int]
) -> list[dict[str, str]]:
    """The variables a validating policy needs to judge ``judged`` (indexes of policies of its mode
    with rules, in precedence order): their findings ``f<i>``, and ``v<i>`` those that are new."""
    variables = [
        {"name": "kind", "expression": "request.kind.kind"},
        {"name": "ns", "expression": "namespaceObject.metadata.name"},
        {"name": "nsLabels", "expression": "namespaceObject.metadata.?labels.orValue({})"},
        {"name": "template", "expression": _template("object")},
        {"name": "new", "expression": "variables.template.spec"},
        {"name": "old", "expression": f"oldObject == null ? null : ({_template('oldObject')}).spec"},
        {"name": "podLabels", "expression": "variables.template.metadata.?labels.orValue({})"},
    ]
    givers = {i for entries in defaults.probes.values() for i, _ in entries} | {
        i for entries in (*defaults.requests.values(), *defaults.limits.values()) for i, _ in entries
    }
    variables += [
        {
            "name": f"m{i}",
            "expression": policy_match(
                # Controlled objects are not judged here (NOT_CONTROLLED): each counts as its pods do.
                policies[i],
                "variables.ns",
                "variables.nsLabels",
                "variables.podLabels",
                pods_of("variables.kind"),
            ),
        }
        for i in sorted(givers | set(judged))
    ]
    variables += default_variables(defaults)
    required = {
        kind for i in judged for kind in PROBE_KINDS if getattr(policies[i].spec.probes, kind).required
    }
    qos = any(policies[i].spec.resources.min_qos_class not in (None, "BestEffort") for i in judged)
    container_rules = any(has_container_rules(policies[i].spec.resources) for i in judged)
    variables += _container_variables(defaults, required, container_rules)
    if qos:
        variables += _qos_variables()
    # A rule several policies give (the same CEL, since findings do not name their policy) is
    # compiled once, as a variable per container: policies often share a baseline. Parts that are
    # already a reference (``variables.order[j]...``) are left as they are.
    parts = {i: _container_findings(policies[i], defaults) for i in judged}
    uses = Counter(part for i in judged for part in set(parts[i]))
    common = [
        part
        for part in dict.fromkeys(part for i in judged for part in parts[i])
        if uses[part] > 1 and not part.startswith("variables.")
    ]
    shared = {part: f"variables.c{k}[j]" for k, part in enumerate(common)}
    variables += [
        {"name": f"c{k}", "expression": f"variables.res.transformList(j, R, {part})"}
        for k, part in enumerate(common)
    ]
    for i in judged:
        findings = _policy_findings(policies[i], [shared.get(part, part) for part in parts[i]])
        # Ratcheting: a finding on the new spec counts unless the old spec had it too.
        variables += [
            {"name": f"f{i}", "expression": f"variables.m{i} ? {findings} : []"},
            {
                "name": f"v{i}",
                "expression": f'variables.f{i}.filter(v, v.s == "n" && '
                f'!variables.f{i}.exists(o, o.s == "o" && o.k == v.k))',
            },
        ]
    return variables


def _head(policy: ProductionPolicy) -> str:
    """``verdict``'s words before a policy's violations."""
    return lit(f'production policy "{policy.name}" ({policy.spec.enforcement}): ')


def _cut(text: str, limit: int) -> str:
    """``validation._cut`` in CEL, over a string expression."""
    return f'size({text}) <= {limit} ? {text} : {text}.substring(0, {limit - 1}) + "…"'


def _enforce_policy(
    name: str,
    policies: Sequence[ProductionPolicy],
    defaults: Defaults,
    judged: Sequence[int],
    failure_policy: str,
    labels: dict[str, str],
) -> dict[str, Any]:
    """Refuses when an Enforce policy is broken, with ``verdict``'s message: the Enforce violations."""
    groups = " + ".join(
        f'(size(variables.v{i}) == 0 ? [] : [{_head(policies[i])} + variables.v{i}.map(v, v.m).join("; ")])'
        for i in judged
    )
    variables = [
        *validating_variables(policies, defaults, judged),
        {"name": "enforced", "expression": " + ".join(f"size(variables.v{i})" for i in judged)},
        {"name": "message", "expression": f'({groups}).join(". ")'},
    ]
    validations = [
        {
            "expression": "variables.enforced == 0",
            "messageExpression": _cut("string(variables.message)", MAX_MESSAGE),
            "message": "refused by production policies (the message could not be built)",
            "reason": "Forbidden",
        }
    ]
    return _vap(name, variables, validations, failure_policy, labels)


def _warn_policy(
    name: str,
    policies: Sequence[ProductionPolicy],
    defaults: Defaults,
    judged: Sequence[int],
    failure_policy: str,
    labels: dict[str, str],
) -> dict[str, Any]:
    """One warning per Warn violation, as ``verdict``'s warnings: at most MAX_WARNINGS, the last saying
    how many more there are; whether the request is refused is the Enforce policy's business."""
    warnings = " + ".join(f"variables.v{i}.map(v, {_head(policies[i])} + v.m)" for i in judged)
    variables = [
        *validating_variables(policies, defaults, judged),
        {"name": "warned", "expression": f"({warnings}).map(w, {_cut('w', MAX_WARNING_LENGTH)})"},
    ]
    last = MAX_WARNINGS - 1
    before, after = MORE_WARNINGS.split("{}")
    more = f"{lit(before)} + string(size(variables.warned) - {last}) + {lit(after)}"
    validations = [
        {
            "expression": f"size(variables.warned) <= {j}",
            "messageExpression": f"string(variables.warned[{j}])"
            if j < last
            else f"size(variables.warned) == {MAX_WARNINGS} ? string(variables.warned[{j}]) : {more}",
            "message": "a production policy warns",
        }
        for j in range(MAX_WARNINGS)
    ]
    return _vap(name, variables, validations, failure_policy, labels)


def validating_policies(
    names: tuple[str, str],
    policies: Sequence[ProductionPolicy],
    defaults: Defaults,
    failure_policy: str,
    labels: dict[str, str],
) -> list[dict[str, Any]]:
    """The Enforce and the Warn ValidatingAdmissionPolicy (named ``names``) for ``policies``: each
    holds only its own mode's rules, so an edit of a policy rewrites (and makes the API server
    compile) the VAP of its mode only, unless it changes the defaults both simulate."""
    judged = [i for i, p in enumerate(policies) if p.spec.enforcement != "Audit" and has_rules(p)]
    vaps = []
    for name, mode, build in ((names[0], "Enforce", _enforce_policy), (names[1], "Warn", _warn_policy)):
        mine = [i for i in judged if policies[i].spec.enforcement == mode]
        vaps.append(
            build(name, policies, defaults, mine, failure_policy, labels)
            if mine
            else _admit_all(name, failure_policy, labels)
        )
    return vaps


def _admit_all(name: str, failure_policy: str, labels: dict[str, str]) -> dict[str, Any]:
    """The VAP of a mode no policy uses: it can neither refuse nor warn, so it holds no rules (the API
    server compiles every expression of a VAP at each write and again when it loads it)."""
    vap = _vap(name, [], [{"expression": "true"}], failure_policy, labels)
    del vap["spec"]["matchConditions"]
    return vap


def _vap(
    name: str,
    variables: list[dict[str, str]],
    validations: list[dict[str, str]],
    failure_policy: str,
    labels: dict[str, str],
) -> dict[str, Any]:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name, "labels": dict(labels)},
        "spec": {
            "failurePolicy": failure_policy,
            "matchConstraints": {"resourceRules": [*POD_RULES, *WORKLOAD_RULES]},
            "matchConditions": [{"name": "not-controlled-by-a-workload", "expression": NOT_CONTROLLED}],
            "variables": variables,
            "validations": validations,
        },
    }
