"""Properties of mutation over generated pods and policies (hypothesis; how many examples: tests/conftest.py).

The mutation is idempotent, never changes a field the user set, its patch applies to the pod it was
computed for, and the mutated pod has no violation that one of the matching defaults could fix.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import jsonpatch
from hypothesis import given

from production_policy.engine import (
    INJECTED_ANNOTATION,
    CompiledPolicy,
    evaluate_workload,
    matching_policies,
    plan_mutation,
)
from production_policy.engine.merge import merge_defaults
from production_policy.quantity import parse_quantity
from tests.support import strategies
from tests.support.strategies import NAMESPACE, NAMESPACE_LABELS


def _leaves(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """Every set value of a JSON document with its path; nulls count as unset, as in Kubernetes."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _leaves(value, (*path, index))
    elif node is not None:
        yield path, node


def _at(document: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        document = document[key]
    return document


def _plan(pod: dict[str, Any], policies: list[CompiledPolicy]) -> Any:
    return plan_mutation(pod, NAMESPACE, NAMESPACE_LABELS, policies)


# --- properties ------------------------------------------------------------------------------------


@given(strategies.pods, strategies.policies)
def test_patch_applies_to_the_pod_it_was_computed_for(
    pod: dict[str, Any], policies: list[CompiledPolicy]
) -> None:
    original = copy.deepcopy(pod)
    plan = _plan(pod, policies)
    mutated = jsonpatch.apply_patch(pod, plan.patch)
    assert pod == original  # neither planning nor applying touched the input
    assert all(op["op"] == "add" for op in plan.patch)
    assert (plan.patch == []) == (plan.injected == []) == (mutated == pod)


@given(strategies.pods, strategies.policies)
def test_mutation_is_idempotent(pod: dict[str, Any], policies: list[CompiledPolicy]) -> None:
    mutated = jsonpatch.apply_patch(pod, _plan(pod, policies).patch)
    assert _plan(mutated, policies).patch == []


@given(strategies.pods, strategies.policies)
def test_mutation_never_changes_a_field_the_user_set(
    pod: dict[str, Any], policies: list[CompiledPolicy]
) -> None:
    plan = _plan(pod, policies)
    mutated = jsonpatch.apply_patch(pod, plan.patch)
    for path, value in _leaves(pod):
        if path == ("metadata", "annotations", INJECTED_ANNOTATION):
            # Our own record: kept, and extended.
            assert _at(mutated, path).split(",")[: len(value.split(","))] == value.split(",")
        else:
            assert _at(mutated, path) == value, path
    for name, container in _containers(mutated):
        assert container == next(c for n, c in _containers(pod) if n == name) | container  # only additions


def _containers(pod: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for field in ("containers", "initContainers"):
        for container in pod["spec"].get(field, []):
            yield container["name"], container


@given(strategies.pods, strategies.policies)
def test_the_mutated_pod_has_no_violation_a_default_could_fix(
    pod: dict[str, Any], policies: list[CompiledPolicy]
) -> None:
    mutated = jsonpatch.apply_patch(pod, _plan(pod, policies).patch)
    labels = (mutated.get("metadata") or {}).get("labels") or {}
    defaults = merge_defaults(matching_policies(policies, NAMESPACE, NAMESPACE_LABELS, labels, ("Pod",)))
    originals = dict(_containers(pod))
    for violation in evaluate_workload(mutated, NAMESPACE, NAMESPACE_LABELS, policies).violations:
        if violation.rule == "probes.required":
            kind = violation.field.removesuffix("Probe")
            template = defaults.probes.get(kind)  # type: ignore[call-overload]
            assert template is None or not _port_resolves(template.value, originals[violation.container])
        elif violation.rule == "resources.required":
            _, kind, resource = violation.field.split(".")
            if kind == "requests":
                assert resource not in defaults.requests and resource not in defaults.limits
            else:
                limit = defaults.limits.get(resource)  # type: ignore[call-overload]
                request = ((originals[violation.container].get("resources") or {}).get("requests") or {}).get(
                    resource
                )
                assert limit is None or (request is not None and _above(request, limit.value)), violation


def _port_resolves(probe: Any, container: dict[str, Any]) -> bool:
    """An independent statement of when a default probe's port can be used in a container."""
    port = (probe.get("httpGet") or probe.get("tcpSocket") or probe.get("grpc"))["port"]
    ports = container.get("ports") or []
    if port == "auto":
        return any(p.get("protocol") in ("TCP", None) for p in ports)
    if isinstance(port, str):
        return any(p.get("name") == port for p in ports)
    return True


def _above(request: str, limit: str) -> bool:
    try:
        return parse_quantity(request) > parse_quantity(limit)
    except ValueError:
        return True  # an invalid request blocks the default limit too
