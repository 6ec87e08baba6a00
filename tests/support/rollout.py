"""Builders shared by the rollout unit tests."""

from __future__ import annotations

from typing import Any

from production_policy.api import ProductionPolicy, parse_policy
from production_policy.engine.rollout.facts import WorkloadFacts


def facts(**overrides: Any) -> WorkloadFacts:
    """WorkloadFacts of a plain, settled Deployment, with ``overrides``."""
    fields: dict[str, Any] = {
        "kind": "Deployment",
        "namespace": "shop",
        "name": "web",
        "uid": "u1",
        "resource_version": "7",
        "generation": 2,
        "template_labels": {"app": "web"},
        "references": (),
        "opted_out": False,
        "baseline": None,
        "rolled_at": None,
        "paused": False,
        "on_delete": False,
        "settled": True,
        "observed_generation": 2,
    }
    fields.update(overrides)
    return WorkloadFacts(**fields)


def policy(
    name: str = "p",
    *,
    enabled: bool = True,
    namespaces: list[str] | None = None,
    pod_selector: dict[str, str] | None = None,
    **rollout: Any,
) -> ProductionPolicy:
    """A ProductionPolicy with ``configRollout`` settings (camelCase keys)."""
    match: dict[str, Any] = {}
    if namespaces is not None:
        match["namespaces"] = namespaces
    if pod_selector is not None:
        match["podSelector"] = {"matchLabels": pod_selector}
    return parse_policy(
        {
            "apiVersion": "productionpolicy.dev/v1alpha1",
            "kind": "ProductionPolicy",
            "metadata": {"name": name},
            "spec": {
                "match": match,
                "enforcement": "Audit",
                "configRollout": {"enabled": enabled, **rollout},
            },
        }
    )
