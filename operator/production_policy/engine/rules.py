"""The rules of one policy, checked against a pod spec that already has its defaults.

Probe rules apply to regular containers and native sidecars; resource rules to every container,
init containers included; the QoS rule to the pod. Resource bounds compare as a LimitRange does —
requests and limits at or above ``min``, at or below ``max``, limit/request at most
``maxLimitRequestRatio`` — but only the values that are set: what must be set is ``require``'s
to say. (A LimitRange makes ``max`` imply a limit, and then defaults that limit to ``max``; with
``require`` explicit, a CPU maximum need not force CPU limits on everyone.) A request the
container leaves out is its limit, as Kubernetes sets it at pod creation; such an implicit
request is checked through its limit only, so one fix is reported once.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple

from production_policy.api import (
    QOS_ORDER,
    RESOURCE_NAMES,
    Enforcement,
    ProductionPolicy,
    QoSClass,
    ResourcePolicy,
)
from production_policy.engine.defaulting import GapKey, ProbeGap, probe_field, quantity_or_none, resource_map
from production_policy.engine.memo import per_policy
from production_policy.engine.merge import PROBE_KINDS, ProbeKind
from production_policy.engine.pods import ContainerSlot, container_slots
from production_policy.engine.qos import (
    QOS_RESOURCES,
    containers_qos_class,
    effective_requests,
    pod_qos_class,
)
from production_policy.quantity import parse_quantity


@dataclass(frozen=True)
class Violation:
    """One broken rule: which container ("" for the pod as a whole), which field, what to do, whose rule."""

    container: str
    field: str
    message: str
    policy: str
    enforcement: Enforcement
    rule: str = ""
    """Stable name of the rule (``probes.required``, ``resources.max``...); ratcheting compares it."""

    @property
    def key(self) -> tuple[str, str, str, str]:
        """What identifies the violation across two versions of a template."""
        return self.policy, self.container, self.field, self.rule


_ZERO = Decimal(0)
_QOS_POSITIONS = tuple((name, RESOURCE_NAMES.index(name)) for name in QOS_RESOURCES)


class SpecFacts:
    """What the rules read of one (defaulted) pod spec, worked out once for all the policies.

    Each container's requests and limits are parsed once here, not once per policy; the QoS class
    is computed the first time a policy asks for it.
    """

    __slots__ = ("_qos", "containers", "pod_spec")

    def __init__(self, pod_spec: Mapping[str, Any]) -> None:
        self.pod_spec = pod_spec
        self.containers = [_container_facts(slot) for slot in container_slots(pod_spec)]
        self._qos: QoSClass | None = None

    @property
    def qos_class(self) -> QoSClass:
        """The pod's QoS class (see ``qos.pod_qos_class``)."""
        if self._qos is None:
            spec = self.pod_spec
            if resource_map(spec, "requests") or resource_map(spec, "limits"):
                self._qos = pod_qos_class(spec)
            else:  # from the containers' quantities, already parsed
                self._qos = containers_qos_class(
                    (
                        {name: c.resources[i].request_value or _ZERO for name, i in _QOS_POSITIONS},
                        {name: c.resources[i].limit_value or _ZERO for name, i in _QOS_POSITIONS},
                    )
                    for c in self.containers
                )
        return self._qos


def policy_violations(
    pod_spec: Mapping[str, Any] | SpecFacts, policy: ProductionPolicy, gaps: Mapping[GapKey, ProbeGap]
) -> list[Violation]:
    """Every rule of ``policy`` that the (defaulted) ``pod_spec`` breaks; ``gaps`` explain missing probes.

    ``pod_spec`` may be given as its :class:`SpecFacts`, to share them between several policies.
    """
    facts = pod_spec if isinstance(pod_spec, SpecFacts) else SpecFacts(pod_spec)
    rules = _policy_rules(policy)
    findings: list[tuple[str, str, str, str]] = []  # container, field, rule, message
    if rules.required_probes or rules.bounds:
        for container in facts.containers:
            slot = container.slot
            if rules.required_probes and slot.takes_probes:
                for kind, probe_name in rules.required_probes:
                    if slot.container.get(probe_name) is None:
                        gap = gaps.get((slot.field, slot.index, kind))
                        findings.append(
                            (container.name, probe_name, "probes.required", _missing_probe(kind, gap))
                        )
            # A plain container can only break the rules a policy gives for a resource.
            bounds = rules.ruled if container.plain else rules.bounds
            if bounds:
                findings += [
                    (container.name, *finding) for finding in _resource_findings(container.resources, bounds)
                ]
    if rules.min_qos_class is not None:
        qos = facts.qos_class
        if QOS_ORDER.index(qos) < QOS_ORDER.index(rules.min_qos_class):
            findings.append(("", "qosClass", "qos.min", _qos_message(qos, rules.min_qos_class)))
    return [
        Violation(c, field, message, policy.name, policy.spec.enforcement, rule)
        for c, field, rule, message in findings
    ]


def _missing_probe(kind: ProbeKind, gap: ProbeGap | None) -> str:
    name = probe_field(kind)
    if gap is None:
        return f"no {name} — add a {name}"
    return f"no {name} and {gap.reason} — add a {name} {gap.remedy}"


def has_container_rules(resources: ResourcePolicy) -> bool:
    """Whether a policy sets any per-container resource rule (require, min, max, ratio)."""
    return bool(
        resources.require.requests
        or resources.require.limits
        or resources.min
        or resources.max
        or resources.max_limit_request_ratio
    )


class _Bounds(NamedTuple):
    """One policy's container rules for one resource, its quantities parsed."""

    position: int
    """Of the resource in RESOURCE_NAMES."""
    request_field: str
    limit_field: str
    require_request: bool
    require_limit: bool
    minimum: str | None
    minimum_value: Decimal | None
    maximum: str | None
    maximum_value: Decimal | None
    ratio: str | None
    ratio_value: Decimal | None


class _PolicyRules(NamedTuple):
    """What :func:`policy_violations` needs of a policy, worked out once per policy."""

    required_probes: tuple[tuple[ProbeKind, str], ...]
    """(kind, container field) of each required probe."""
    bounds: tuple[_Bounds, ...]
    """One per resource; none when the policy has no container resource rule (then no resource
    finding at all, not even an invalid quantity, is the policy's)."""
    ruled: tuple[_Bounds, ...]
    """Those of ``bounds`` for the resources the policy requires or bounds."""
    min_qos_class: QoSClass | None


@per_policy
def _policy_rules(policy: ProductionPolicy) -> _PolicyRules:
    resources = policy.spec.resources
    required = tuple(
        (kind, probe_field(kind)) for kind in PROBE_KINDS if getattr(policy.spec.probes, kind).required
    )
    bounds: list[_Bounds] = []
    if has_container_rules(resources):
        for index, resource in enumerate(RESOURCE_NAMES):
            minimum = resources.min.get(resource) if resources.min else None
            maximum = resources.max.get(resource) if resources.max else None
            ratio = (
                resources.max_limit_request_ratio.get(resource) if resources.max_limit_request_ratio else None
            )
            bounds.append(
                _Bounds(
                    index,
                    f"resources.requests.{resource}",
                    f"resources.limits.{resource}",
                    resource in resources.require.requests,
                    resource in resources.require.limits,
                    minimum,
                    None if minimum is None else parse_quantity(minimum),
                    maximum,
                    None if maximum is None else parse_quantity(maximum),
                    ratio,
                    None if ratio is None else parse_quantity(ratio),
                )
            )
    ruled = tuple(
        b for b in bounds if b.require_request or b.require_limit or b.minimum or b.maximum or b.ratio
    )
    return _PolicyRules(required, tuple(bounds), ruled, resources.min_qos_class)


class _ResourceFacts(NamedTuple):
    """A container's request and limit of one resource, as written and as numbers."""

    request: Any
    """The effective request: the container's own, else its limit (see ``qos.effective_requests``)."""
    limit: Any
    request_value: Decimal | None
    limit_value: Decimal | None
    explicit_request: bool
    """Whether the container lists the request itself (even as null)."""
    invalid: tuple[tuple[str, str, str], ...]
    """(field, rule, message) for the request and the limit that are not quantities."""


class _ContainerFacts(NamedTuple):
    slot: ContainerSlot
    name: str
    resources: tuple[_ResourceFacts, ...]
    """One per resource, in the order of RESOURCE_NAMES."""
    plain: bool
    """No invalid quantity, no limit below its request: only rules about a resource can be broken."""


_UNSET = _ResourceFacts(None, None, None, None, False, ())
_NO_RESOURCES = (_UNSET,) * len(RESOURCE_NAMES)


def _container_facts(slot: ContainerSlot) -> _ContainerFacts:
    container = slot.container
    explicit_requests, limits = resource_map(container, "requests"), resource_map(container, "limits")
    if not explicit_requests and not limits:
        return _ContainerFacts(slot, slot.name, _NO_RESOURCES, True)
    requests = effective_requests(container)
    facts = []
    plain = True
    for resource in RESOURCE_NAMES:
        request, limit = requests.get(resource), limits.get(resource)
        request_value, limit_value = _value(request), _value(limit)
        invalid: tuple[tuple[str, str, str], ...] = ()
        if request is not None and request_value is None:
            invalid += (_invalid(f"resources.requests.{resource}", request),)
        if limit is not None and limit_value is None:
            invalid += (_invalid(f"resources.limits.{resource}", limit),)
        if invalid or (request_value is not None and limit_value is not None and limit_value < request_value):
            plain = False
        facts.append(
            _ResourceFacts(request, limit, request_value, limit_value, resource in explicit_requests, invalid)
        )
    return _ContainerFacts(slot, slot.name, tuple(facts), plain)


def _invalid(field: str, raw: Any) -> tuple[str, str, str]:
    return field, "resources.invalid", f'{field} "{raw}" is not a valid quantity — fix {field}'


def _resource_findings(
    container: Sequence[_ResourceFacts], rules: Sequence[_Bounds]
) -> Iterator[tuple[str, str, str]]:
    """(field, rule, message) for each resource rule the container breaks."""
    for bounds in rules:
        facts = container[bounds.position]
        request_field, limit_field = bounds.request_field, bounds.limit_field
        request, limit = facts.request, facts.limit
        request_value, limit_value = facts.request_value, facts.limit_value
        yield from facts.invalid
        minimum, maximum, ratio = bounds.minimum, bounds.maximum, bounds.ratio
        if request is None and bounds.require_request:
            yield request_field, "resources.required", f"no {request_field} — add {request_field}"
        if limit is None and bounds.require_limit:
            yield limit_field, "resources.required", f"no {limit_field} — add {limit_field}"
        if minimum is not None or maximum is not None:
            # An implicit request equals its limit: checking the limit covers both.
            checked = [(limit_field, limit, limit_value)]
            if facts.explicit_request:
                checked.insert(0, (request_field, request, request_value))
            for field, raw, value in checked:
                if value is None:
                    continue
                if bounds.minimum_value is not None and value < bounds.minimum_value:
                    yield (
                        field,
                        "resources.min",
                        f"{field} {raw} is below min {minimum} — set at least {minimum}",
                    )
                if bounds.maximum_value is not None and value > bounds.maximum_value:
                    yield (
                        field,
                        "resources.max",
                        f"{field} {raw} exceeds max {maximum} — set at most {maximum}",
                    )
        if request_value is None or limit_value is None:
            continue
        if limit_value < request_value:
            yield (
                limit_field,
                "resources.order",
                f"{limit_field} {limit} is below {request_field} {request}"
                " — raise the limit or lower the request",
            )
        elif bounds.ratio_value is not None and limit_value > request_value * bounds.ratio_value:
            yield (
                limit_field,
                "resources.ratio",
                f"{limit_field} {limit} / {request_field} {request} exceeds maxLimitRequestRatio {ratio}"
                " — lower the limit or raise the request",
            )


def _value(raw: Any) -> Decimal | None:
    return None if raw is None else quantity_or_none(raw)


def _qos_message(actual: str, wanted: str) -> str:
    if wanted == "Guaranteed":
        remedy = "set cpu and memory limits on every container, with requests equal to limits"
    else:
        remedy = "set resources.requests on the containers"
    return f"QoS class {actual} is below minQoSClass {wanted} — {remedy}"
