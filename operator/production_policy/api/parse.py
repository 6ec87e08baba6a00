"""Turning a raw ProductionPolicy object (a dict from YAML or the API server) into the model."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from production_policy.api.errors import PolicyError, field_messages
from production_policy.api.policy import ProductionPolicy


def parse_policy(obj: Mapping[str, Any]) -> ProductionPolicy:
    """Validate a raw ProductionPolicy and return it; raise :class:`PolicyError` naming every bad field."""
    try:
        return ProductionPolicy.model_validate(obj)
    except ValidationError as error:
        raise PolicyError(field_messages(error)) from None
