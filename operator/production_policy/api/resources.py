"""Resource rules of a ProductionPolicy, with LimitRange semantics per container, plus requirements.

The cross-field rules (min <= defaultRequest <= default <= max, ratio >= 1, ...) are the ones the
API server enforces on a LimitRange; they are checked twice, with the same wording: here in
Python (``production-policy check``, the validating webhook) and as CEL rules in the CRD.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Literal

from pydantic import ConfigDict, Field, JsonValue, field_validator, model_validator

from production_policy.api.base import KubeModel, Quantity
from production_policy.api.errors import FieldProblems, Path
from production_policy.quantity import parse_quantity

ResourceName = Literal["cpu", "memory", "ephemeral-storage"]
RESOURCE_NAMES: tuple[ResourceName, ...] = ("cpu", "memory", "ephemeral-storage")
QoSClass = Literal["BestEffort", "Burstable", "Guaranteed"]
QOS_ORDER: tuple[QoSClass, ...] = ("BestEffort", "Burstable", "Guaranteed")


class ResourceQuantities(KubeModel):
    """A quantity per resource; resources left out are not constrained or defaulted."""

    cpu: Quantity | None = Field(default=None, description="CPU, in cores: 100m, 0.5, 2.")
    memory: Quantity | None = Field(default=None, description="Memory, in bytes: 128Mi, 1Gi.")
    ephemeral_storage: Quantity | None = Field(
        default=None, alias="ephemeral-storage", description="Local ephemeral storage, in bytes: 1Gi."
    )

    def get(self, resource: ResourceName) -> str | None:
        """The quantity given for ``resource``, as written, or None."""
        value: str | None = getattr(self, resource.replace("-", "_"))
        return value


class ResourceRequirement(KubeModel):
    """Resources every container must declare (once defaults are applied)."""

    requests: list[ResourceName] = Field(
        default_factory=list,
        max_length=3,
        json_schema_extra={"x-kubernetes-list-type": "set"},
        description="Resources whose request must be set: cpu, memory, ephemeral-storage.",
    )
    limits: list[ResourceName] = Field(
        default_factory=list,
        max_length=3,
        json_schema_extra={"x-kubernetes-list-type": "set"},
        description="Resources whose limit must be set: cpu, memory, ephemeral-storage.",
    )

    @field_validator("requests", "limits")
    @classmethod
    def _unique(cls, names: list[ResourceName]) -> list[ResourceName]:
        if len(set(names)) != len(names):
            raise ValueError("must not list a resource twice")
        return names


def _cel_path(field: str, resource: ResourceName) -> str:
    # CEL escapes "-" in property names as "__dash__".
    return f"self.{field}.{resource.replace('-', '__dash__')}"


def _field_path(field: str, resource: ResourceName) -> str:
    return f".{field}['{resource}']" if "-" in resource else f".{field}.{resource}"


def _cel_number(path: str) -> str:
    """A quantity (int-or-string) as a double: ints directly, strings through the quantity library."""
    return f"(type({path}) == int ? double({path}) : quantity({path}).asApproximateFloat())"


def _cel_at_most(low: str, high: str) -> str:
    both_strings = f"type({low}) == string && type({high}) == string"
    exact = f"quantity({low}).compareTo(quantity({high})) <= 0"
    return f"({both_strings} ? {exact} : {_cel_number(low)} <= {_cel_number(high)})"


# (smaller field, larger field): the orderings a LimitRange requires between its quantities.
ORDERINGS: tuple[tuple[str, str], ...] = (
    ("min", "max"),
    ("min", "defaultRequest"),
    ("defaultRequest", "max"),
    ("min", "default"),
    ("default", "max"),
    ("defaultRequest", "default"),
)


def _cel_rules() -> list[JsonValue]:
    rules: list[JsonValue] = []
    for resource in RESOURCE_NAMES:
        for low, high in ORDERINGS:
            low_path, high_path = _cel_path(low, resource), _cel_path(high, resource)
            guard = f"!has(self.{low}) || !has(self.{high}) || !has({low_path}) || !has({high_path})"
            rules.append(
                {
                    "rule": f"{guard} || {_cel_at_most(low_path, high_path)}",
                    "message": f"{low}.{resource} must be less than or equal to {high}.{resource}",
                    "fieldPath": _field_path(low, resource),
                }
            )
        ratio = _cel_path("maxLimitRequestRatio", resource)
        rules.append(
            {
                "rule": f"!has(self.maxLimitRequestRatio) || !has({ratio}) || {_cel_number(ratio)} >= 1.0",
                "message": f"maxLimitRequestRatio.{resource} must be at least 1",
                "fieldPath": _field_path("maxLimitRequestRatio", resource),
            }
        )
        limit, request = _cel_path("default", resource), _cel_path("defaultRequest", resource)
        rules.append(
            {
                "rule": f"!has(self.maxLimitRequestRatio) || !has({ratio})"
                f" || !has(self.default) || !has({limit}) || !has(self.defaultRequest) || !has({request})"
                f" || {_cel_number(limit)} <= {_cel_number(request)} * {_cel_number(ratio)}",
                "message": f"default.{resource} / defaultRequest.{resource}"
                f" must not exceed maxLimitRequestRatio.{resource}",
                "fieldPath": _field_path("default", resource),
            }
        )
    return rules


class ResourcePolicy(KubeModel):
    """Per-container resource defaults and bounds, with LimitRange semantics.

    A missing limit gets ``default``; a missing request gets the container's own limit (Kubernetes
    does that), else ``defaultRequest``, else the injected default limit. The bounds apply to the
    requests and limits that are set; ``require`` says which must be.
    """

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": _cel_rules()})

    default_request: ResourceQuantities | None = Field(
        default=None, description="Requests injected into containers that set neither a request nor a limit."
    )
    default_limits: ResourceQuantities | None = Field(
        default=None, alias="default", description="Limits injected into containers that set none."
    )
    require: ResourceRequirement = Field(
        default_factory=ResourceRequirement, description="Requests and limits every container must have."
    )
    min: ResourceQuantities | None = Field(
        default=None, description="Lowest request and limit allowed, where set (see require)."
    )
    max: ResourceQuantities | None = Field(
        default=None, description="Highest request and limit allowed, where set (see require)."
    )
    max_limit_request_ratio: ResourceQuantities | None = Field(
        default=None, description="Highest limit/request ratio allowed, where both are set."
    )
    min_qos_class: QoSClass | None = Field(
        default=None,
        alias="minQoSClass",
        description="Lowest QoS class the pod may have, as Kubernetes computes it: BestEffort, Burstable "
        "or Guaranteed.",
    )

    def quantities(self, field: str) -> ResourceQuantities | None:
        """The quantities of a field by API name: min, max, default, defaultRequest, maxLimitRequestRatio."""
        by_api_name = {
            "min": self.min,
            "max": self.max,
            "default": self.default_limits,
            "defaultRequest": self.default_request,
            "maxLimitRequestRatio": self.max_limit_request_ratio,
        }
        return by_api_name[field]

    @model_validator(mode="after")
    def _limit_range_rules(self) -> ResourcePolicy:
        problems = list(self._problems())
        if problems:
            raise FieldProblems(problems)
        return self

    def _value(self, field: str, resource: ResourceName) -> tuple[str, Decimal] | None:
        quantities = self.quantities(field)
        text = quantities.get(resource) if quantities else None
        return None if text is None else (text, parse_quantity(text))

    def _problems(self) -> Iterator[tuple[Path, str]]:
        for resource in RESOURCE_NAMES:
            for low, high in ORDERINGS:
                low_value, high_value = self._value(low, resource), self._value(high, resource)
                if low_value and high_value and low_value[1] > high_value[1]:
                    yield (
                        (low, resource),
                        f"must be less than or equal to {high}.{resource} ({high_value[0]})",
                    )
            ratio = self._value("maxLimitRequestRatio", resource)
            if ratio and ratio[1] < 1:
                yield ("maxLimitRequestRatio", resource), "must be at least 1"
            limit, request = self._value("default", resource), self._value("defaultRequest", resource)
            if ratio and limit and request and limit[1] > request[1] * ratio[1]:
                yield (
                    ("default", resource),
                    f"{limit[0]} / defaultRequest.{resource} ({request[0]})"
                    f" exceeds maxLimitRequestRatio.{resource} ({ratio[0]})",
                )
