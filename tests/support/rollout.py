"""Builders shared by the rollout unit tests."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from production_policy.api import ProductionPolicy, parse_policy
from production_policy.engine.names import BASELINE_ANNOTATION, ROLLED_AT_ANNOTATION
from production_policy.engine.rollout.facts import WorkloadFacts, parse_time


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
    kinds: list[str] | None = None,
    **rollout: Any,
) -> ProductionPolicy:
    """A ProductionPolicy with ``configRollout`` settings (camelCase keys)."""
    match: dict[str, Any] = {}
    if kinds is not None:
        match["kinds"] = kinds
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


def applied(workload: WorkloadFacts, patch: dict[str, Any], resource_version: str) -> WorkloadFacts:
    """The workload as the API server leaves it after the controller's merge ``patch``."""
    annotations = patch["metadata"]["annotations"]
    rolled = "spec" in patch
    return replace(
        workload,
        resource_version=resource_version,
        baseline=annotations[BASELINE_ANNOTATION],
        rolled_at=parse_time(annotations.get(ROLLED_AT_ANNOTATION)) or workload.rolled_at,
        generation=workload.generation + rolled,
        settled=workload.settled and not rolled,
    )
