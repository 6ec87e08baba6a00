"""The writes the controller makes to a workload, as merge patches.

Each is one write: a rollout sets the pod-template digest (the rollout itself) together with the
new baseline and the rollout time, so the workload can never be rolled without its baseline
moving, or the reverse. Each patch carries the ``resourceVersion`` the decision was made on: if
the workload changed meanwhile, the API server refuses the write and the controller looks again.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from production_policy.engine.names import (
    BASELINE_ANNOTATION,
    ROLLED_AT_ANNOTATION,
    TEMPLATE_DIGEST_ANNOTATION,
)
from production_policy.engine.rollout.baseline import Baseline, config_digest, encode
from production_policy.engine.rollout.facts import WorkloadFacts


def format_time(now: float) -> str:
    """RFC 3339 in UTC with second resolution, as ``kubectl rollout restart`` writes it."""
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def baseline_patch(facts: WorkloadFacts, baseline: Baseline) -> dict[str, Any]:
    """Store a baseline on the workload's metadata; the pod template is not touched."""
    return {
        "metadata": {
            "resourceVersion": facts.resource_version,
            "annotations": {BASELINE_ANNOTATION: encode(baseline)},
        }
    }


def rollout_patch(facts: WorkloadFacts, baseline: Baseline, now: float) -> dict[str, Any]:
    """Roll the workload to ``baseline``: new template digest, new baseline, rollout time."""
    return {
        "metadata": {
            "resourceVersion": facts.resource_version,
            "annotations": {BASELINE_ANNOTATION: encode(baseline), ROLLED_AT_ANNOTATION: format_time(now)},
        },
        "spec": {
            "template": {"metadata": {"annotations": {TEMPLATE_DIGEST_ANNOTATION: config_digest(baseline)}}}
        },
    }
