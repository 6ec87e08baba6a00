"""Building blocks shared by the ProductionPolicy models: the model base, quantities, label selectors.

Every string, list and map carries a size bound: the API server estimates the cost of the CRD's
CEL rules from them, and an unbounded one makes that estimate exceed its budget.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, WithJsonSchema, model_validator
from pydantic.alias_generators import to_camel

from production_policy.api.errors import FieldProblems
from production_policy.quantity import parse_quantity

NAME_MAX = 253
LABEL_KEY_MAX = 317  # a 253-character DNS prefix, "/", a 63-character name
LABEL_VALUE_MAX = 63


class KubeModel(BaseModel):
    """Base of every API model: camelCase on the wire, unknown fields are errors, instances are immutable."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


# Quantities: a non-negative "100m", "128Mi" or 2 — int-or-string, like core Kubernetes resource lists.
# Stricter than the API server's grammar on purpose (no sign, no bare "."), so that a policy's
# quantities are unambiguous; the same pattern is enforced by the CRD.
QUANTITY_PATTERN = r"^\+?([0-9]+(\.[0-9]*)?|\.[0-9]+)(([KMGTPE]i)|[numkMGTPE]|[eE][+-]?[0-9]+)?$"
QUANTITY_MAX_LENGTH = 32


def _quantity(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("must be a quantity such as 100m, 128Mi or 2")
    text = str(value)
    if len(text) > QUANTITY_MAX_LENGTH or not re.fullmatch(QUANTITY_PATTERN, text):
        raise ValueError(f"{text!r} is not a non-negative quantity such as 100m, 128Mi or 2")
    parse_quantity(text)  # the pattern admits a few exponents the API server refuses
    return text


Quantity = Annotated[
    str,
    PlainValidator(_quantity),
    WithJsonSchema(
        {
            "x-kubernetes-int-or-string": True,
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": QUANTITY_PATTERN,
            "maxLength": QUANTITY_MAX_LENGTH,
            "minimum": 0,
        }
    ),
]
"""A quantity as written by the user, normalised to its string form."""


class LabelSelectorRequirement(KubeModel):
    """One requirement of a label selector, as in Kubernetes' matchExpressions."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.operator in ['In', 'NotIn'] ? (has(self.values) && size(self.values) > 0)"
                    " : (!has(self.values) || size(self.values) == 0)",
                    "message": "values must be non-empty for In and NotIn, and empty for Exists and DoesNotExist",  # noqa: E501
                    "fieldPath": ".values",
                }
            ]
        }
    )

    key: str = Field(
        min_length=1, max_length=LABEL_KEY_MAX, description="The label key the requirement applies to."
    )
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"] = Field(
        description="How the key's value is compared: In, NotIn, Exists or DoesNotExist."
    )
    values: list[Annotated[str, Field(max_length=LABEL_VALUE_MAX)]] = Field(
        default_factory=list,
        max_length=64,
        description="The values for In and NotIn (at least one); must be empty for Exists and DoesNotExist.",
    )

    @model_validator(mode="after")
    def _values_fit_operator(self) -> LabelSelectorRequirement:
        if self.operator in ("In", "NotIn") and not self.values:
            raise FieldProblems([(("values",), f"must be non-empty for operator {self.operator}")])
        if self.operator in ("Exists", "DoesNotExist") and self.values:
            raise FieldProblems([(("values",), f"must be empty for operator {self.operator}")])
        return self


class LabelSelector(KubeModel):
    """A Kubernetes label selector: every matchLabels pair and every matchExpressions requirement must hold.

    An empty selector matches everything.
    """

    match_labels: dict[str, Annotated[str, Field(max_length=LABEL_VALUE_MAX)]] = Field(
        default_factory=dict,
        max_length=64,
        description="Labels that must be present with exactly these values.",
    )
    match_expressions: list[LabelSelectorRequirement] = Field(
        default_factory=list, max_length=32, description="Requirements on labels; all of them must hold."
    )
