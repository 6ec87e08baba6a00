"""Requests as the pod will run with them, and its QoS class, computed as Kubernetes (1.37) computes it.

Kubernetes' ComputePodQOS (pkg/apis/core/helper/qos): per container and per resource (cpu,
memory), request == limit == 0 is BestEffort, request == limit > 0 is Guaranteed, anything else
Burstable; the pod is Burstable as soon as one container or resource is, or when BestEffort and
Guaranteed mix. Pod-level ``spec.resources``, when they set anything, replace the containers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from production_policy.api import QoSClass
from production_policy.engine.defaulting import quantity_or_none, resource_map
from production_policy.engine.pods import container_slots

QOS_RESOURCES = ("cpu", "memory")
"""The resources that decide the QoS class."""
_ZERO = Decimal(0)


def effective_requests(holder: Mapping[str, Any]) -> dict[str, Any]:
    """The requests of a container, each missing one set to its limit.

    Kubernetes does this when it creates a pod (SetDefaults_Pod), so a template's rules are checked
    against what its pods will really have.
    """
    return {**resource_map(holder, "limits"), **resource_map(holder, "requests")}


def pod_qos_class(
    pod_spec: Mapping[str, Any],
    container_amounts: Iterable[tuple[Mapping[str, Decimal], Mapping[str, Decimal]]] | None = None,
) -> QoSClass:
    """The QoS class of a pod with this spec: regular and init containers count, ephemeral ones cannot.

    ``container_amounts``: each container's (requests, limits) as :func:`containers_qos_class`
    takes them, when the caller has parsed them already; read only if the pod sets no pod-level
    resources.
    """
    # A pod spec holds its pod-level resources in the same `resources` field as a container does.
    if resource_map(pod_spec, "requests") or resource_map(pod_spec, "limits"):
        return _requirements_qos(_pod_level_requests(pod_spec), _amounts(resource_map(pod_spec, "limits")))
    if container_amounts is None:
        container_amounts = (
            (_amounts(effective_requests(slot.container)), _amounts(resource_map(slot.container, "limits")))
            for slot in container_slots(pod_spec)
        )
    return containers_qos_class(container_amounts)


def containers_qos_class(amounts: Iterable[tuple[Mapping[str, Decimal], Mapping[str, Decimal]]]) -> QoSClass:
    """The QoS class of a pod without pod-level resources, from the (requests, limits) of each of its
    containers: their ``cpu`` and ``memory`` as numbers, absent or invalid ones as 0."""
    classes = {_requirements_qos(requests, limits) for requests, limits in amounts}
    if len(classes) > 1:
        return "Burstable"
    return classes.pop() if classes else "BestEffort"


def _requirements_qos(requests: Mapping[str, Decimal], limits: Mapping[str, Decimal]) -> QoSClass:
    classes: set[QoSClass] = set()
    for resource in QOS_RESOURCES:
        if requests[resource] != limits[resource]:
            return "Burstable"
        classes.add("BestEffort" if requests[resource] == 0 else "Guaranteed")
    return "Burstable" if len(classes) > 1 else classes.pop()


def _amounts(values: Mapping[str, Any]) -> dict[str, Decimal]:
    """The cpu and memory quantities of ``values``; absent (or invalid: the API server refuses those) is 0."""
    amounts = {}
    for resource in QOS_RESOURCES:
        value = values.get(resource)
        # None is no quantity either; skipping it spares parse_quantity's ValueError.
        amounts[resource] = (quantity_or_none(value) if value is not None else None) or _ZERO
    return amounts


def _pod_level_requests(pod_spec: Mapping[str, Any]) -> dict[str, Decimal]:
    """Pod-level requests after Kubernetes' defaulting (defaultPodRequests): when pod-level limits are
    set, a missing pod-level request is the containers' aggregated request, else the pod-level limit."""
    given, limits = resource_map(pod_spec, "requests"), resource_map(pod_spec, "limits")
    requests = _amounts(given)
    for resource in QOS_RESOURCES:
        if limits and resource not in given:
            aggregated = _aggregated_container_request(pod_spec, resource)
            requests[resource] = aggregated if aggregated is not None else _amounts(limits)[resource]
    return requests


def _aggregated_container_request(pod_spec: Mapping[str, Any], resource: str) -> Decimal | None:
    """As AggregateContainerRequests: regular containers and sidecars add up; each plain init container
    runs with the sidecars started before it; the pod needs the larger. None if no container requests it."""
    running = Decimal(0)  # regular containers and the sidecars, which run alongside them
    sidecars = Decimal(0)  # sidecars started so far, in init order
    peak_init = Decimal(0)
    requested = False
    for slot in container_slots(pod_spec):
        requests = effective_requests(slot.container)
        requested = requested or resource in requests
        amount = _amounts(requests)[resource]
        if slot.role == "init":
            peak_init = max(peak_init, amount + sidecars)
        else:
            running += amount
            if slot.role == "sidecar":
                sidecars += amount
    return max(running, peak_init) if requested else None
