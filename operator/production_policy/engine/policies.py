"""Validation of ProductionPolicy objects themselves, for the validating webhook and ``check``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from production_policy.api import PolicyError, parse_policy


def validate_policy(obj: Mapping[str, Any]) -> list[str]:
    """Field-level messages (``spec.resources.min.cpu: ...``) for a raw ProductionPolicy; empty when valid."""
    try:
        parse_policy(obj)
    except PolicyError as error:
        return error.problems
    return []
