"""The defaults of several matching policies, merged into one set.

Each default — each probe, each resource's default request and default limit — comes from the
highest-priority policy that has one, ties broken by name, so the result never depends on the
order policies were listed or created. Requirements are not merged here: every matching policy's
rules are checked on their own (see ``validation``), so all of them apply and the strictest binds,
and each violation names the policy that demands the fix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar

from production_policy.api import RESOURCE_NAMES, ProbeTemplate, ProductionPolicy, ResourceName
from production_policy.engine.matching import precedence_order
from production_policy.engine.memo import per_policy_set

ProbeKind = Literal["readiness", "liveness", "startup"]
PROBE_KINDS: tuple[ProbeKind, ...] = ("readiness", "liveness", "startup")

T = TypeVar("T")


@dataclass(frozen=True)
class Sourced(Generic[T]):
    """A default value and the name of the policy it comes from."""

    value: T
    policy: str


@dataclass(frozen=True)
class MergedDefaults:
    """The defaults that apply to a pod: probe templates, default requests and default limits."""

    probes: dict[ProbeKind, Sourced[ProbeTemplate]] = field(default_factory=dict)
    requests: dict[ResourceName, Sourced[str]] = field(default_factory=dict)
    limits: dict[ResourceName, Sourced[str]] = field(default_factory=dict)


@per_policy_set
def merge_defaults(policies: Sequence[ProductionPolicy]) -> MergedDefaults:
    """Merge the defaults of ``policies``: per field, the first one given in precedence order wins.

    Computed once per sequence of policy objects (see ``memo``): the result is shared, read it only.
    """
    probes: dict[ProbeKind, Sourced[ProbeTemplate]] = {}
    requests: dict[ResourceName, Sourced[str]] = {}
    limits: dict[ResourceName, Sourced[str]] = {}
    for policy in precedence_order(policies):
        for kind in PROBE_KINDS:
            template = getattr(policy.spec.probes, kind).default_probe
            if template is not None:
                probes.setdefault(kind, Sourced(template, policy.name))
        resources = policy.spec.resources
        for target, quantities in ((requests, resources.default_request), (limits, resources.default_limits)):
            for resource in RESOURCE_NAMES:
                value = quantities.get(resource) if quantities else None
                if value is not None:
                    target.setdefault(resource, Sourced(value, policy.name))
    return MergedDefaults(probes, requests, limits)
