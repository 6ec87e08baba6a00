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

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from production_policy.api import QOS_ORDER, RESOURCE_NAMES, Enforcement, ProductionPolicy, ResourcePolicy
from production_policy.engine.defaulting import GapKey, ProbeGap, probe_field, quantity_or_none, resource_map
from production_policy.engine.merge import PROBE_KINDS, ProbeKind
from production_policy.engine.qos import effective_requests, pod_qos_class
from production_policy.engine.workloads import container_slots
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


def policy_violations(
    pod_spec: Mapping[str, Any], policy: ProductionPolicy, gaps: Mapping[GapKey, ProbeGap]
) -> list[Violation]:
    """Every rule of ``policy`` that the (defaulted) ``pod_spec`` breaks; ``gaps`` explain missing probes."""
    findings: list[tuple[str, str, str, str]] = []  # container, field, rule, message
    resources = policy.spec.resources
    for slot in container_slots(pod_spec):
        if slot.takes_probes:
            for kind in PROBE_KINDS:
                if (
                    getattr(policy.spec.probes, kind).required
                    and slot.container.get(probe_field(kind)) is None
                ):
                    gap = gaps.get((slot.field, slot.index, kind))
                    findings.append(
                        (slot.name, probe_field(kind), "probes.required", _missing_probe(kind, gap))
                    )
        if _has_container_rules(resources):
            findings += [(slot.name, *finding) for finding in _resource_findings(slot.container, resources)]
    if resources.min_qos_class is not None:
        qos = pod_qos_class(pod_spec)
        if QOS_ORDER.index(qos) < QOS_ORDER.index(resources.min_qos_class):
            findings.append(("", "qosClass", "qos.min", _qos_message(qos, resources.min_qos_class)))
    return [
        Violation(c, field, message, policy.name, policy.spec.enforcement, rule)
        for c, field, rule, message in findings
    ]


def _missing_probe(kind: ProbeKind, gap: ProbeGap | None) -> str:
    name = probe_field(kind)
    if gap is None:
        return f"no {name} — add a {name}"
    return f"no {name} and {gap.reason} — add a {name} {gap.remedy}"


def _has_container_rules(resources: ResourcePolicy) -> bool:
    return bool(
        resources.require.requests
        or resources.require.limits
        or resources.min
        or resources.max
        or resources.max_limit_request_ratio
    )


def _resource_findings(
    container: Mapping[str, Any], resources: ResourcePolicy
) -> Iterator[tuple[str, str, str]]:
    """(field, rule, message) for each resource rule the container breaks."""
    explicit_requests, limits = resource_map(container, "requests"), resource_map(container, "limits")
    requests = effective_requests(container)
    for resource in RESOURCE_NAMES:
        request_field, limit_field = f"resources.requests.{resource}", f"resources.limits.{resource}"
        request, limit = requests.get(resource), limits.get(resource)
        request_value, limit_value = _value(request), _value(limit)
        for field, raw, value in ((request_field, request, request_value), (limit_field, limit, limit_value)):
            if raw is not None and value is None:
                yield field, "resources.invalid", f'{field} "{raw}" is not a valid quantity — fix {field}'
        minimum = resources.min.get(resource) if resources.min else None
        maximum = resources.max.get(resource) if resources.max else None
        ratio = resources.max_limit_request_ratio.get(resource) if resources.max_limit_request_ratio else None
        if request is None and resource in resources.require.requests:
            yield request_field, "resources.required", f"no {request_field} — add {request_field}"
        if limit is None and resource in resources.require.limits:
            yield limit_field, "resources.required", f"no {limit_field} — add {limit_field}"
        # An implicit request equals its limit: checking the limit covers both.
        checked = [(limit_field, limit, limit_value)]
        if resource in explicit_requests:
            checked.insert(0, (request_field, request, request_value))
        for field, raw, value in checked:
            if minimum is not None and value is not None and value < parse_quantity(minimum):
                yield field, "resources.min", f"{field} {raw} is below min {minimum} — set at least {minimum}"
            if maximum is not None and value is not None and value > parse_quantity(maximum):
                yield field, "resources.max", f"{field} {raw} exceeds max {maximum} — set at most {maximum}"
        if request_value is None or limit_value is None:
            continue
        if limit_value < request_value:
            yield (
                limit_field,
                "resources.order",
                f"{limit_field} {limit} is below {request_field} {request}"
                " — raise the limit or lower the request",
            )
        elif ratio is not None and limit_value > request_value * parse_quantity(ratio):
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
