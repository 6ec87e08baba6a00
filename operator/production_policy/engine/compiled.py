"""A policy compiled once, when it arrives: everything the engine derives from the policy alone.

Every admission request runs the same few policies, which change rarely, so their order of
precedence, their rules with the quantities parsed and their default probes in pod-spec form are
worked out here once per policy (``compile_policy``), not once per request. The processes keep
the compiled policies (``ClusterView.put_policy``, ``check``) and hand them to the engine.

A compiled policy is a value: two compiled from the same name and spec are equal and hash alike,
so what is derived from a set of them (``merge.merge_defaults``) can be cached on the set itself.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Literal

from production_policy.api import (
    RESOURCE_NAMES,
    Enforcement,
    ProbeTemplate,
    ProductionPolicy,
    QoSClass,
    ResourceName,
    ResourcePolicy,
)
from production_policy.api.resources import ResourceQuantities
from production_policy.quantity import parse_quantity

ProbeKind = Literal["readiness", "liveness", "startup"]
PROBE_KINDS: tuple[ProbeKind, ...] = ("readiness", "liveness", "startup")


WITHDRAWABLE: tuple[ProbeKind, ...] = ("liveness", "startup")
"""The probe kinds ``onInjectedFailure: Withdraw`` may withdraw (never readiness)."""

ExemptionKey = tuple[str, str, str, str, ProbeKind]
"""(namespace, workload kind, workload name, container, probe): one default withdrawn from one container."""


def probe_field(kind: ProbeKind) -> str:
    """The container field of a probe kind: ``readiness`` -> ``readinessProbe``."""
    return f"{kind}Probe"


def default_digest(probe: Mapping[str, Any]) -> str:
    """The digest of a default probe (as :attr:`CompiledPolicy.default_probes` has it): a withdrawal
    holds while the policy's default keeps it. Not keyed: a probe definition is no secret."""
    text = json.dumps(probe, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True, kw_only=True)
class Bounds:
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

    @property
    def rules_anything(self) -> bool:
        """Whether the policy requires or bounds this resource at all."""
        return bool(self.require_request or self.require_limit or self.minimum or self.maximum or self.ratio)


@dataclass(frozen=True, kw_only=True)
class PolicyRules:
    """What ``rules.policy_violations`` checks for one policy."""

    policy: str
    """The policy's name, which every violation carries."""
    enforcement: Enforcement
    required_probes: tuple[tuple[ProbeKind, str], ...]
    """(kind, container field) of each required probe."""
    bounds: tuple[Bounds, ...]
    """One per resource; none when the policy has no container resource rule (then no resource
    finding at all, not even an invalid quantity, is the policy's)."""
    ruled: tuple[Bounds, ...]
    """Those of ``bounds`` for the resources the policy requires or bounds."""
    min_qos_class: QoSClass | None


@dataclass(frozen=True, eq=False)
class CompiledPolicy:
    """A policy and what the engine derives from it alone; equal (and hashed) by name and spec."""

    policy: ProductionPolicy
    precedence: tuple[int, str]
    """Sort key: highest priority first, then by name — the order in which policies give defaults."""
    rules: PolicyRules
    default_probes: Mapping[ProbeKind, Mapping[str, Any]]
    """Each default probe as a pod spec has it; shared, so copy it before changing it."""
    default_requests: Mapping[ResourceName, str]
    default_limits: Mapping[ResourceName, str]
    withdrawn: frozenset[ExemptionKey]
    """The defaults its status says are withdrawn and that still hold by its spec (it says Withdraw
    for that probe, and its default has the digest recorded). Not part of its identity: a status."""
    _identity: tuple[str, str] = field(repr=False)
    _hash: int = field(repr=False)

    @property
    def name(self) -> str:
        """The policy's name."""
        return self.policy.name

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CompiledPolicy) and self._identity == other._identity

    def __hash__(self) -> int:
        return self._hash


def compile_policy(policy: ProductionPolicy) -> CompiledPolicy:
    """Work out once what the engine needs of ``policy`` (see the module docstring)."""
    spec = policy.spec
    resources = spec.resources
    identity = (policy.name, spec.model_dump_json(by_alias=True))
    return CompiledPolicy(
        policy=policy,
        precedence=(-spec.priority, policy.name),
        rules=PolicyRules(
            policy=policy.name,
            enforcement=spec.enforcement,
            required_probes=tuple(
                (kind, probe_field(kind)) for kind in PROBE_KINDS if getattr(spec.probes, kind).required
            ),
            bounds=(bounds := _bounds(resources)),
            ruled=tuple(b for b in bounds if b.rules_anything),
            min_qos_class=resources.min_qos_class,
        ),
        default_probes=(default_probes := _default_probes(policy)),
        default_requests=_quantities(resources.default_request),
        default_limits=_quantities(resources.default_limits),
        withdrawn=_withdrawn(policy, default_probes),
        _identity=identity,
        _hash=hash(identity),
    )


def _default_probes(policy: ProductionPolicy) -> Mapping[ProbeKind, Mapping[str, Any]]:
    return MappingProxyType(
        {
            kind: _probe_dict(template)
            for kind in PROBE_KINDS
            if (template := getattr(policy.spec.probes, kind).default_probe) is not None
        }
    )


def _withdrawn(
    policy: ProductionPolicy, default_probes: Mapping[ProbeKind, Mapping[str, Any]]
) -> frozenset[ExemptionKey]:
    entries = policy.status.withdrawn_probes if policy.status is not None else None
    if not entries:
        return frozenset()
    digests = {
        kind: default_digest(probe)
        for kind, probe in default_probes.items()
        if kind in WITHDRAWABLE and getattr(policy.spec.probes, kind).on_injected_failure == "Withdraw"
    }
    return frozenset(
        (e.workload.namespace, e.workload.kind, e.workload.name, e.container, e.probe)
        for e in entries
        if digests.get(e.probe) == e.default_digest
    )


def precedence_order(policies: Iterable[CompiledPolicy]) -> list[CompiledPolicy]:
    """``policies`` highest priority first, then by name: the order in which they give defaults."""
    return sorted(policies, key=_precedence)


def _precedence(policy: CompiledPolicy) -> tuple[int, str]:
    return policy.precedence


def has_container_rules(resources: ResourcePolicy) -> bool:
    """Whether a policy sets any per-container resource rule (require, min, max, ratio)."""
    return bool(
        resources.require.requests
        or resources.require.limits
        or resources.min
        or resources.max
        or resources.max_limit_request_ratio
    )


def _bounds(resources: ResourcePolicy) -> tuple[Bounds, ...]:
    if not has_container_rules(resources):
        return ()
    bounds = []
    for index, resource in enumerate(RESOURCE_NAMES):
        minimum = resources.min.get(resource) if resources.min else None
        maximum = resources.max.get(resource) if resources.max else None
        ratio = resources.max_limit_request_ratio.get(resource) if resources.max_limit_request_ratio else None
        bounds.append(
            Bounds(
                position=index,
                request_field=f"resources.requests.{resource}",
                limit_field=f"resources.limits.{resource}",
                require_request=resource in resources.require.requests,
                require_limit=resource in resources.require.limits,
                minimum=minimum,
                minimum_value=None if minimum is None else parse_quantity(minimum),
                maximum=maximum,
                maximum_value=None if maximum is None else parse_quantity(maximum),
                ratio=ratio,
                ratio_value=None if ratio is None else parse_quantity(ratio),
            )
        )
    return tuple(bounds)


def _quantities(values: ResourceQuantities | None) -> Mapping[ResourceName, str]:
    if values is None:
        return MappingProxyType({})
    return MappingProxyType(
        {resource: value for resource in RESOURCE_NAMES if (value := values.get(resource)) is not None}
    )


def _probe_dict(template: ProbeTemplate) -> dict[str, Any]:
    probe = template.model_dump(by_alias=True, exclude_none=True)
    handler = next(probe[name] for name in ("httpGet", "tcpSocket", "grpc") if name in probe)
    if handler.get("httpHeaders") == []:  # pydantic's default; a pod spec leaves it out
        del handler["httpHeaders"]
    return probe
