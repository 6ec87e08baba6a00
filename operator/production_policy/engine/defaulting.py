"""The defaults a container is missing: probes, and resource requests/limits with LimitRange semantics.

Nothing the user set is ever replaced; only absent (or null) fields are filled. Per resource:

- a missing limit gets the default limit — unless that is below the container's own request,
  which would make the pod invalid (the missing limit is then left for validation to report, and
  the default left out is kept for its message: :class:`LimitGap`);
- a missing request, when the container sets a limit, is left alone: Kubernetes itself sets the
  request to the limit when it creates the pod;
- a missing request, when the container sets no limit, gets the default request (never above the
  injected limit), else the injected default limit — as a LimitRange's defaultRequest defaults to
  its default.

A probe default is injected only if its port resolves: ``auto`` is the container's first declared
TCP port, a named port must be declared by the container. Otherwise nothing is injected and the
reason is kept for the violation message; there are no placeholder probes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from production_policy.api import AUTO_PORT, RESOURCE_NAMES, ResourceName
from production_policy.engine.compiled import PROBE_KINDS, ProbeKind, probe_field
from production_policy.engine.merge import MergedDefaults, Sourced
from production_policy.engine.pods import ContainerSlot, container_slots
from production_policy.quantity import parse_quantity


@dataclass(frozen=True)
class Injection:
    """One field to add to a container."""

    path: tuple[str, ...]
    """Where, below the container: ``("readinessProbe",)``, ``("resources", "requests", "cpu")``."""
    value: Any
    label: str
    """What the injected-annotation records: ``readiness``, ``resources.requests.cpu``."""
    policy: str
    """The policy the default comes from."""


@dataclass(frozen=True)
class ProbeGap:
    """Why a missing probe got no default, and what the user can add instead."""

    reason: str
    remedy: str


GapKey = tuple[str, int, ProbeKind]
"""(container list field, index, probe kind) of a probe that a default could not fill."""

LimitGapKey = tuple[str, int, ResourceName]
"""(container list field, index, resource) of a limit that a default could not fill."""


@dataclass(frozen=True)
class LimitGap:
    """A default limit left out because it is below the container's own request."""

    default: str
    """The default limit, as the policy wrote it."""


@dataclass(frozen=True)
class Gaps:
    """What the defaults could not fill in a pod spec, and why, for the violations' messages."""

    probes: dict[GapKey, ProbeGap] = field(default_factory=dict)
    limits: dict[LimitGapKey, LimitGap] = field(default_factory=dict)


@dataclass(frozen=True)
class ContainerDefaults:
    """What one container gets: the injections, and for each probe left missing despite a default, why."""

    slot: ContainerSlot
    injections: tuple[Injection, ...]
    probe_gaps: Mapping[ProbeKind, ProbeGap]
    limit_gaps: Mapping[ResourceName, LimitGap]


def quantity_or_none(value: Any) -> Decimal | None:
    """The value of a quantity, or None when it is not one (the pod is then invalid anyway)."""
    try:
        return parse_quantity(value)
    except ValueError:
        return None


_EMPTY: Mapping[str, Any] = MappingProxyType({})


def resource_map(container: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    """``resources.requests`` or ``resources.limits`` of a container (or of a pod spec, for the
    pod-level ones), shaped as ``pods.PodView`` has them; empty when absent."""
    values: Mapping[str, Any] = container.get("resources", _EMPTY).get(kind, _EMPTY)
    return values


def container_defaults(slot: ContainerSlot, defaults: MergedDefaults) -> ContainerDefaults:
    """The defaults ``slot``'s container is missing, and why a missing probe could not be defaulted."""
    injections: list[Injection] = []
    gaps: dict[ProbeKind, ProbeGap] = {}
    if slot.takes_probes:
        for kind in PROBE_KINDS:
            template = defaults.probes.get(kind)
            if template is None or slot.container.get(probe_field(kind)) is not None:
                continue
            probe = _resolved_probe(template.value, slot.container)
            if isinstance(probe, ProbeGap):
                gaps[kind] = probe
            else:
                injections.append(Injection((probe_field(kind),), probe, kind, template.policy))
    resources, limit_gaps = _resource_injections(slot.container, defaults)
    return ContainerDefaults(slot, (*injections, *resources), gaps, limit_gaps)


def _resolved_probe(template: Mapping[str, Any], container: Mapping[str, Any]) -> dict[str, Any] | ProbeGap:
    probe: dict[str, Any] = _copy_tree(template)
    handler = next(probe[name] for name in ("httpGet", "tcpSocket", "grpc") if name in probe)
    ports: list[Mapping[str, Any]] = container.get("ports", [])
    if handler["port"] == AUTO_PORT:
        tcp = [
            port["containerPort"]
            for port in ports
            if isinstance(port.get("containerPort"), int) and (port.get("protocol") or "TCP") == "TCP"
        ]
        if not tcp:
            detail = "has no declared TCP port" if ports else "has no declared port"
            return ProbeGap(f'port "auto" {detail}', "or a containerPort")
        handler["port"] = tcp[0]
    elif isinstance(handler["port"], str) and handler["port"] not in {port.get("name") for port in ports}:
        name = handler["port"]
        return ProbeGap(f'port "{name}" is not a declared port name', f'or a containerPort named "{name}"')
    return probe


def _resource_injections(
    container: Mapping[str, Any], defaults: MergedDefaults
) -> tuple[list[Injection], dict[ResourceName, LimitGap]]:
    injections: list[Injection] = []
    gaps: dict[ResourceName, LimitGap] = {}
    if not defaults.requests and not defaults.limits:
        return injections, gaps
    requests, limits = resource_map(container, "requests"), resource_map(container, "limits")
    for resource in RESOURCE_NAMES:
        default_request, default_limit = defaults.requests.get(resource), defaults.limits.get(resource)
        if default_request is None and default_limit is None:
            continue  # nothing to inject, whatever the container has
        request, limit = requests.get(resource), limits.get(resource)
        injected_limit = _default_limit(request, limit, default_limit)
        injected_request = _default_request(request, limit, default_request, injected_limit)
        if injected_request is not None:
            injections.append(_resource_injection("requests", resource, injected_request))
        if injected_limit is not None:
            injections.append(_resource_injection("limits", resource, injected_limit))
        elif limit is None and default_limit is not None and quantity_or_none(request) is not None:
            gaps[resource] = LimitGap(default_limit.value)  # left out: below the request
    return injections, gaps


def _default_limit(request: Any, limit: Any, default: Sourced[str] | None) -> Sourced[str] | None:
    """The limit to inject: the default, unless the container has a limit or a request above the default."""
    if limit is not None or default is None:
        return None
    if request is None:
        return default
    request_value = quantity_or_none(request)
    return default if request_value is not None and request_value <= parse_quantity(default.value) else None


def _default_request(
    request: Any, limit: Any, default: Sourced[str] | None, injected_limit: Sourced[str] | None
) -> Sourced[str] | None:
    """The request to inject: none if the container has a request or a limit (Kubernetes copies the
    limit), else the default request capped at the injected limit, else the injected limit."""
    if request is not None or limit is not None:
        return None
    if default is None:
        return injected_limit
    if injected_limit is not None and parse_quantity(default.value) > parse_quantity(injected_limit.value):
        return injected_limit  # the two defaults come from different policies and disagree
    return default


def _resource_injection(kind: str, resource: str, default: Sourced[str]) -> Injection:
    return Injection(
        ("resources", kind, resource), default.value, f"resources.{kind}.{resource}", default.policy
    )


def pod_defaults(pod_spec: Mapping[str, Any], defaults: MergedDefaults) -> list[ContainerDefaults]:
    """The defaults of every container of ``pod_spec`` (see ``workloads`` for which containers get what)."""
    return [container_defaults(slot, defaults) for slot in container_slots(pod_spec)]


def with_defaults(pod_spec: Mapping[str, Any], defaults: MergedDefaults) -> tuple[dict[str, Any], Gaps]:
    """``pod_spec`` with its defaults applied, and the defaults that could not be (see :class:`Gaps`).

    ``pod_spec`` is not changed: the containers that get defaults are copied, along the paths the
    defaults are set at; everything else is shared with ``pod_spec``, so the result is for reading.
    """
    spec = dict(pod_spec)
    gaps = Gaps()
    for result in pod_defaults(pod_spec, defaults):
        slot = result.slot
        if result.injections:
            if spec[slot.field] is pod_spec[slot.field]:
                spec[slot.field] = list(spec[slot.field])
            spec[slot.field][slot.index] = _with_injections(slot.container, result.injections)
        gaps.probes.update({(slot.field, slot.index, kind): gap for kind, gap in result.probe_gaps.items()})
        gaps.limits.update({(slot.field, slot.index, res): gap for res, gap in result.limit_gaps.items()})
    return spec, gaps


def _with_injections(container: Mapping[str, Any], injections: tuple[Injection, ...]) -> dict[str, Any]:
    """A copy of ``container`` with each injection's field set (objects missing on its path are
    created; an object there is copied, not changed; the rest is shared with ``container``)."""
    copy = dict(container)
    copied: set[int] = {id(copy)}
    for injection in injections:
        node = copy
        for key in injection.path[:-1]:
            child = node.get(key)
            if child is None:
                child = {}
            elif id(child) not in copied:
                child = dict(child)
            copied.add(id(child))
            node[key] = child
            node = child
        node[injection.path[-1]] = injection.value
    return copy


def _copy_tree(value: Any) -> Any:
    """A deep copy of the dicts and lists of a JSON-like value; other values are shared."""
    if isinstance(value, dict):
        return {key: _copy_tree(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy_tree(item) for item in value]
    return value
