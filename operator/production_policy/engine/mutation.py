"""The mutating webhook's answer for a Pod: an RFC 6902 JSON patch adding the missing defaults.

The patch only adds members that are absent (or null); it records what it added in the
``productionpolicy.dev/injected`` annotation ("app:readiness,app:resources.requests.cpu"). Applied
to the pod it was computed for, it yields a pod for which the next plan is empty, so a
re-invocation of the webhook changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from production_policy.engine import kinds
from production_policy.engine.compiled import PROBE_KINDS, CompiledPolicy
from production_policy.engine.defaulting import ContainerDefaults, pod_defaults
from production_policy.engine.matching import matching_policies
from production_policy.engine.merge import merge_defaults
from production_policy.engine.names import INJECTED_ANNOTATION
from production_policy.engine.pods import PodView, pod_from_template


@dataclass(frozen=True)
class MutationPlan:
    """The JSON patch for a pod (empty when there is nothing to add) and the ``container:field`` added."""

    patch: list[dict[str, Any]] = field(default_factory=list)
    injected: list[str] = field(default_factory=list)


def plan_mutation(
    pod: Mapping[str, Any],
    namespace: str,
    namespace_labels: Mapping[str, str],
    policies: Sequence[CompiledPolicy],
) -> MutationPlan:
    """The patch adding to ``pod`` the probes and resources its policies default; it never overwrites.

    A default probe its policy has withdrawn from this container of the pod's workload (see
    :attr:`CompiledPolicy.withdrawn`) is left out, unless a matching policy requires that probe.
    """
    view = pod_from_template(pod)
    metadata = pod.get("metadata")
    workload = kinds.pod_workload(metadata if isinstance(metadata, Mapping) else {})
    results = _needed(view, namespace, namespace_labels, policies, workload) if view is not None else []
    if not results or view is None:
        return MutationPlan()
    patch: list[dict[str, Any]] = []
    for result in results:
        pointer = f"/spec/{result.slot.field}/{result.slot.index}"
        patch += add_operations(
            pointer, result.slot.container, [(i.path, i.value) for i in result.injections]
        )
    injected = _entries(results)
    # A re-invocation (another webhook added a container) extends the record instead of replacing it.
    entries = [*view.injected, *(entry for entry in injected if entry not in view.injected)]
    patch += add_operations("", pod, [(("metadata", "annotations", INJECTED_ANNOTATION), ",".join(entries))])
    return MutationPlan(patch, injected)


def needed_defaults(
    pod: PodView,
    namespace: str,
    namespace_labels: Mapping[str, str],
    policies: Sequence[CompiledPolicy],
) -> tuple[str, ...]:
    """What the mutating webhook will inject into the pods ``pod`` stands for: ``container:field``
    entries, as its ``productionpolicy.dev/injected`` annotation records them."""
    return tuple(_entries(_needed(pod, namespace, namespace_labels, policies)))


def _needed(
    pod: PodView,
    namespace: str,
    namespace_labels: Mapping[str, str],
    policies: Sequence[CompiledPolicy],
    workload: tuple[str, str] | None = None,
) -> list[ContainerDefaults]:
    """The defaults of each container that gets any (``workload``: (kind, name) of the pod's
    workload, whose withdrawn defaults are left out; None: none are)."""
    matched = matching_policies(policies, namespace, namespace_labels, pod.labels, pod.kinds)
    if not matched:
        return []
    results = pod_defaults(pod.spec, merge_defaults(matched))
    if workload is not None and any(policy.withdrawn for policy in matched):
        results = [_without_withdrawn(result, namespace, workload, matched) for result in results]
    return [result for result in results if result.injections]


def _without_withdrawn(
    result: ContainerDefaults, namespace: str, workload: tuple[str, str], matched: Sequence[CompiledPolicy]
) -> ContainerDefaults:
    """``result`` without the probes their policy withdrew from this container (a required one stays)."""
    givers = {policy.name: policy for policy in matched}
    required = {kind for policy in matched for kind, _ in policy.rules.required_probes}
    kept = tuple(
        injection
        for injection in result.injections
        if injection.label not in PROBE_KINDS
        or injection.label in required
        or (namespace, *workload, result.slot.name, injection.label) not in givers[injection.policy].withdrawn
    )
    if len(kept) == len(result.injections):
        return result
    return ContainerDefaults(result.slot, kept, result.probe_gaps, result.limit_gaps)


def _entries(results: Sequence[ContainerDefaults]) -> list[str]:
    return [f"{result.slot.name}:{i.label}" for result in results for i in result.injections]


def add_operations(
    pointer: str, document: Mapping[str, Any], assignments: Sequence[tuple[tuple[str, ...], Any]]
) -> list[dict[str, Any]]:
    """JSON patch ``add`` operations setting each (path, value) below ``pointer`` in ``document``.

    Each operation adds at the first member missing on its path (absent or null), carrying the
    nested objects below it, so that no object the document has is replaced — only created.
    """
    additions: dict[tuple[str, ...], Any] = {}
    for path, value in assignments:
        node, depth = document, 0
        while depth < len(path) - 1 and _is_mapping(node.get(path[depth])):
            node, depth = node[path[depth]], depth + 1
        anchor, rest = path[: depth + 1], path[depth + 1 :]
        if not rest:
            additions[anchor] = value
            continue
        nested = additions.setdefault(anchor, {})
        for key in rest[:-1]:
            nested = nested.setdefault(key, {})
        nested[rest[-1]] = value
    return [
        {"op": "add", "path": pointer + "".join(f"/{escape_pointer(key)}" for key in anchor), "value": value}
        for anchor, value in additions.items()
    ]


def escape_pointer(key: str) -> str:
    """Escape one JSON pointer segment (RFC 6901): ``~`` as ``~0``, ``/`` as ``~1``."""
    return key.replace("~", "~0").replace("/", "~1")


def _is_mapping(value: Any) -> bool:
    return type(value) is dict or isinstance(value, Mapping)  # the ABC check alone costs more
