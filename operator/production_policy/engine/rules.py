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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple

from production_policy.api import QOS_ORDER, RESOURCE_NAMES, Enforcement, QoSClass
from production_policy.engine.compiled import Bounds, PolicyRules, ProbeKind, probe_field
from production_policy.engine.defaulting import (
    GapKey,
    LimitGap,
    LimitGapKey,
    ProbeGap,
    quantity_or_none,
    resource_map,
)
from production_policy.engine.pods import ContainerSlot, container_slots
from production_policy.engine.qos import QOS_RESOURCES, effective_requests, pod_qos_class


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


Finding = tuple[str, str, str]
"""(field, rule, message) of one broken resource rule of a container."""

_ZERO = Decimal(0)
_QOS_POSITIONS = tuple((name, RESOURCE_NAMES.index(name)) for name in QOS_RESOURCES)


class SpecFacts:
    """What the rules read of one (defaulted) pod spec, worked out once for all the policies.

    Each container's requests and limits are parsed once here, not once per policy; the QoS class
    is computed the first time a policy asks for it. ``limit_gaps``: the default limits left out of
    it (``defaulting.Gaps.limits``), which a missing limit's message explains.
    """

    __slots__ = ("_qos", "containers", "pod_spec")

    def __init__(
        self, pod_spec: Mapping[str, Any], limit_gaps: Mapping[LimitGapKey, LimitGap] | None = None
    ) -> None:
        self.pod_spec = pod_spec
        gaps = limit_gaps or {}
        self.containers = [_container_facts(slot, gaps) for slot in container_slots(pod_spec)]
        self._qos: QoSClass | None = None

    @property
    def qos_class(self) -> QoSClass:
        """The pod's QoS class (see ``qos.pod_qos_class``), from the quantities parsed here."""
        if self._qos is None:
            self._qos = pod_qos_class(
                self.pod_spec,
                (
                    (
                        {name: c.resources[i].request_value or _ZERO for name, i in _QOS_POSITIONS},
                        {name: c.resources[i].limit_value or _ZERO for name, i in _QOS_POSITIONS},
                    )
                    for c in self.containers
                ),
            )
        return self._qos


def policy_violations(
    facts: SpecFacts, rules: PolicyRules, gaps: Mapping[GapKey, ProbeGap]
) -> list[Violation]:
    """Every rule of one policy (its compiled ``rules``) that the (defaulted) pod spec of ``facts``
    breaks; ``gaps`` explain missing probes."""
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
            for bounds in rules.ruled if container.plain else rules.bounds:
                resource = container.resources[bounds.position]
                for check in _RESOURCE_CHECKS:
                    for field, rule, message in check(resource, bounds):
                        findings.append((container.name, field, rule, message))
    if rules.min_qos_class is not None:
        qos = facts.qos_class
        if QOS_ORDER.index(qos) < QOS_ORDER.index(rules.min_qos_class):
            findings.append(("", "qosClass", "qos.min", _qos_message(qos, rules.min_qos_class)))
    return [
        Violation(c, field, message, rules.policy, rules.enforcement, rule)
        for c, field, rule, message in findings
    ]


def _missing_probe(kind: ProbeKind, gap: ProbeGap | None) -> str:
    name = probe_field(kind)
    if gap is None:
        return f"no {name} — add a {name}"
    return f"no {name} and {gap.reason} — add a {name} {gap.remedy}"


class _ResourceFacts(NamedTuple):
    """A container's request and limit of one resource, as written and as numbers."""

    request: Any
    """The effective request: the container's own, else its limit (see ``qos.effective_requests``)."""
    limit: Any
    request_value: Decimal | None
    limit_value: Decimal | None
    explicit_request: bool
    """Whether the container lists the request itself (even as null)."""
    invalid: tuple[Finding, ...]
    """(field, rule, message) for the request and the limit that are not quantities."""
    left_out: str | None = None
    """The default limit that was not injected, being below the request."""


class _ContainerFacts(NamedTuple):
    slot: ContainerSlot
    name: str
    resources: tuple[_ResourceFacts, ...]
    """One per resource, in the order of RESOURCE_NAMES."""
    plain: bool
    """No invalid quantity, no limit below its request: only rules about a resource can be broken."""


_UNSET = _ResourceFacts(None, None, None, None, False, ())
_NO_RESOURCES = (_UNSET,) * len(RESOURCE_NAMES)


def _container_facts(slot: ContainerSlot, gaps: Mapping[LimitGapKey, LimitGap]) -> _ContainerFacts:
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
        invalid: tuple[Finding, ...] = ()
        if request is not None and request_value is None:
            invalid += (_invalid(f"resources.requests.{resource}", request),)
        if limit is not None and limit_value is None:
            invalid += (_invalid(f"resources.limits.{resource}", limit),)
        if invalid or (request_value is not None and limit_value is not None and limit_value < request_value):
            plain = False
        gap = gaps.get((slot.field, slot.index, resource))
        facts.append(
            _ResourceFacts(
                request,
                limit,
                request_value,
                limit_value,
                resource in explicit_requests,
                invalid,
                None if gap is None else gap.default,
            )
        )
    return _ContainerFacts(slot, slot.name, tuple(facts), plain)


def _invalid(field: str, raw: Any) -> Finding:
    return field, "resources.invalid", f'{field} "{raw}" is not a valid quantity — fix {field}'


def _invalid_quantities(facts: _ResourceFacts, bounds: Bounds) -> Sequence[Finding]:
    """``resources.invalid``: a request or limit that is not a quantity."""
    return facts.invalid


def _required(facts: _ResourceFacts, bounds: Bounds) -> Sequence[Finding]:
    """``resources.required``: a request or limit ``require`` asks for is missing."""
    if not bounds.require_request and not bounds.require_limit:
        return ()
    findings: list[Finding] = []
    if facts.request is None and bounds.require_request:
        field = bounds.request_field
        findings.append((field, "resources.required", f"no {field} — add {field}"))
    if facts.limit is None and bounds.require_limit:
        findings.append((bounds.limit_field, "resources.required", _missing_limit(facts, bounds)))
    return findings


def _missing_limit(facts: _ResourceFacts, bounds: Bounds) -> str:
    """What to do about a required limit that is missing; when the default was left out for being
    below the request, why, and the smallest limit that passes (or why none can)."""
    field = bounds.limit_field
    if facts.left_out is None or facts.request_value is None:
        return f"no {field} — add {field}"
    why = (
        f"no {field} and the default limit {facts.left_out} was not injected, as it is below"
        f" {bounds.request_field} {facts.request}"
    )
    maximum = bounds.maximum_value
    if maximum is not None and facts.request_value > maximum:
        return (
            f"{why}; no limit can pass, as it must be at least the request and at most max"
            f" {bounds.maximum} — lower {bounds.request_field} to at most {bounds.maximum} and add {field}"
        )
    # The default may come from another policy (merged by priority), so this policy's min can be
    # above the request; it is not above max (a policy keeps min <= max), nor is the request here.
    minimum = bounds.minimum_value
    smallest = bounds.minimum if minimum is not None and minimum > facts.request_value else facts.request
    upper = "" if maximum is None else f" and at most {bounds.maximum}"
    return f"{why} — add {field} of at least {smallest}{upper}"


def _out_of_range(facts: _ResourceFacts, bounds: Bounds) -> Sequence[Finding]:
    """``resources.min`` and ``resources.max``: a request or limit below ``min`` or above ``max``."""
    minimum, maximum = bounds.minimum_value, bounds.maximum_value
    if minimum is None and maximum is None:
        return ()
    # An implicit request equals its limit: checking the limit covers both.
    checked = [(bounds.limit_field, facts.limit, facts.limit_value)]
    if facts.explicit_request:
        checked.insert(0, (bounds.request_field, facts.request, facts.request_value))
    findings: list[Finding] = []
    for field, raw, value in checked:
        if value is None:
            continue
        if minimum is not None and value < minimum:
            findings.append(
                (
                    field,
                    "resources.min",
                    f"{field} {raw} is below min {bounds.minimum} — set at least {bounds.minimum}",
                )
            )
        if maximum is not None and value > maximum:
            findings.append(
                (
                    field,
                    "resources.max",
                    f"{field} {raw} exceeds max {bounds.maximum} — set at most {bounds.maximum}",
                )
            )
    return findings


def _limit_below_request(facts: _ResourceFacts, bounds: Bounds) -> Sequence[Finding]:
    """``resources.order``: a limit below its request (the API server would refuse the pod)."""
    if facts.request_value is None or facts.limit_value is None or facts.limit_value >= facts.request_value:
        return ()
    return (
        (
            bounds.limit_field,
            "resources.order",
            f"{bounds.limit_field} {facts.limit} is below {bounds.request_field} {facts.request}"
            " — raise the limit or lower the request",
        ),
    )


def _ratio_too_high(facts: _ResourceFacts, bounds: Bounds) -> Sequence[Finding]:
    """``resources.ratio``: limit/request above ``maxLimitRequestRatio`` (a limit not below its request)."""
    request, limit, ratio = facts.request_value, facts.limit_value, bounds.ratio_value
    if ratio is None or request is None or limit is None or limit < request or limit <= request * ratio:
        return ()
    return (
        (
            bounds.limit_field,
            "resources.ratio",
            f"{bounds.limit_field} {facts.limit} / {bounds.request_field} {facts.request} exceeds"
            f" maxLimitRequestRatio {bounds.ratio} — lower the limit or raise the request",
        ),
    )


_RESOURCE_CHECKS = (_invalid_quantities, _required, _out_of_range, _limit_below_request, _ratio_too_high)
"""Each resource rule a container can break, in the order its findings are reported."""


def _value(raw: Any) -> Decimal | None:
    return None if raw is None else quantity_or_none(raw)


def _qos_message(actual: str, wanted: str) -> str:
    if wanted == "Guaranteed":
        remedy = "set cpu and memory limits on every container, with requests equal to limits"
    else:
        remedy = "set resources.requests on the containers"
    return f"QoS class {actual} is below minQoSClass {wanted} — {remedy}"
