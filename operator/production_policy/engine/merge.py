"""The defaults of several matching policies, merged into one set.

Each default — each probe, each resource's default request and default limit — comes from the
highest-priority policy that has one, ties broken by name, so the result never depends on the
order policies were listed or created. Requirements are not merged here: every matching policy's
rules are checked on their own (see ``validation``), so all of them apply and the strictest binds,
and each violation names the policy that demands the fix.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from production_policy.api import ResourceName
from production_policy.engine.compiled import PROBE_KINDS, CompiledPolicy, ProbeKind, precedence_order

T = TypeVar("T")

MAX_SETS = 256
"""Merged sets kept: far more than the distinct sets of matching policies a cluster has."""


@dataclass(frozen=True)
class Sourced(Generic[T]):
    """A default value and the name of the policy it comes from."""

    value: T
    policy: str


@dataclass(frozen=True)
class MergedDefaults:
    """The defaults that apply to a pod: probes (as a pod spec has them), requests and limits."""

    probes: dict[ProbeKind, Sourced[Mapping[str, Any]]] = field(default_factory=dict)
    requests: dict[ResourceName, Sourced[str]] = field(default_factory=dict)
    limits: dict[ResourceName, Sourced[str]] = field(default_factory=dict)


def merge_defaults(policies: Sequence[CompiledPolicy]) -> MergedDefaults:
    """Merge the defaults of ``policies``: per field, the first one given in precedence order wins.

    The result is shared between calls with equal policies: read it only.
    """
    return _merged(tuple(policies))


@functools.lru_cache(maxsize=MAX_SETS)
def _merged(policies: tuple[CompiledPolicy, ...]) -> MergedDefaults:
    probes: dict[ProbeKind, Sourced[Mapping[str, Any]]] = {}
    requests: dict[ResourceName, Sourced[str]] = {}
    limits: dict[ResourceName, Sourced[str]] = {}
    for policy in precedence_order(policies):
        for kind in PROBE_KINDS:
            probe = policy.default_probes.get(kind)
            if probe is not None:
                probes.setdefault(kind, Sourced(probe, policy.name))
        for target, quantities in ((requests, policy.default_requests), (limits, policy.default_limits)):
            for resource, value in quantities.items():
                target.setdefault(resource, Sourced(value, policy.name))
    return MergedDefaults(probes, requests, limits)
