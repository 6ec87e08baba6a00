"""What the config-rollout controller needs to know of a Deployment, StatefulSet or DaemonSet.

A workload body is reduced to :class:`WorkloadFacts` as soon as it arrives: the references of its
pod template, our own annotations, and the few spec/status fields that decide whether it can be
rolled and whether a rollout is still running. Nothing else of the body is kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

from production_policy.engine import kinds
from production_policy.engine.interning import shared
from production_policy.engine.names import (
    BASELINE_ANNOTATION,
    ROLLED_AT_ANNOTATION,
    WORKLOAD_OPT_OUT_ANNOTATION,
    WORKLOAD_OPT_OUT_VALUE,
)
from production_policy.engine.pods import pod_template
from production_policy.engine.references import SourceRef, referenced_sources

WORKLOAD_KINDS = tuple(kind.kind for kind in kinds.ROLLABLE)
"""The kinds the controller rolls (Deployment, StatefulSet, DaemonSet)."""


NO_LABELS: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class WorkloadFacts:
    """The part of a workload the controller keeps and decides on (one per workload: compact)."""

    kind: str
    namespace: str
    name: str
    uid: str
    resource_version: str
    generation: int
    template_labels: Mapping[str, str]
    references: tuple[SourceRef, ...]
    """One per referenced source, sorted by (kind, name)."""
    opted_out: bool
    baseline: str | None
    """The raw baseline annotation, decoded only when needed."""
    rolled_at: float | None
    """When the controller last rolled the workload (seconds since the epoch), from its annotation."""
    paused: bool
    """A paused Deployment: a template change would not roll it."""
    on_delete: bool
    """A StatefulSet or DaemonSet with ``updateStrategy: OnDelete``: a template change replaces no pod."""
    settled: bool
    """The workload's controller has caught up with its spec and every pod runs the current template
    (or a Deployment's rollout gave up on its progress deadline)."""
    observed_generation: int
    key: tuple[str, str, str] = field(init=False, repr=False, compare=False)
    """(kind, namespace, name): how the controller names a workload. One tuple, made once, so that
    every map keyed by it (the store, its index, the fleet) holds the same one."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", (self.kind, self.namespace, self.name))

    def describe(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


def parse_time(text: str | None) -> float | None:
    """An RFC 3339 time as seconds since the epoch; None when absent or unreadable."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def workload_facts(obj: Mapping[str, Any]) -> WorkloadFacts | None:
    """Reduce a Deployment, StatefulSet or DaemonSet body to its facts; None for anything else."""
    if obj.get("kind") not in WORKLOAD_KINDS:
        return None
    template = pod_template(obj)
    if template is None:
        return None
    template_metadata, pod_spec = template
    kind = str(obj.get("kind", ""))
    metadata = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    annotations = metadata.get("annotations") or {}
    labels = template_metadata.get("labels")
    strategy = spec.get("updateStrategy") or {}
    generation = int(metadata.get("generation") or 0)
    observed = int(status.get("observedGeneration") or 0)
    return WorkloadFacts(
        kind=shared(kind),
        namespace=shared(str(metadata.get("namespace", ""))),
        name=str(metadata.get("name", "")),
        uid=str(metadata.get("uid", "")),
        resource_version=str(metadata.get("resourceVersion", "")),
        generation=generation,
        # The body's own labels, not a copy: the audit keeps the same dict (the pod's labels).
        template_labels=labels if isinstance(labels, dict) and labels else NO_LABELS,
        references=tuple(referenced_sources(pod_spec)),
        opted_out=str(annotations.get(WORKLOAD_OPT_OUT_ANNOTATION, "")).strip().lower()
        == WORKLOAD_OPT_OUT_VALUE,
        baseline=annotations.get(BASELINE_ANNOTATION),
        rolled_at=parse_time(annotations.get(ROLLED_AT_ANNOTATION)),
        paused=kind == "Deployment" and bool(spec.get("paused")),
        on_delete=kind in ("StatefulSet", "DaemonSet") and strategy.get("type") == "OnDelete",
        settled=observed >= generation and _caught_up(kind, spec, status),
        observed_generation=observed,
    )


def _caught_up(kind: str, spec: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    # The same tests `kubectl rollout status` makes, per kind.
    def count(field: str) -> int:
        return int(status.get(field) or 0)

    if kind == "Deployment":
        conditions = status.get("conditions") or []
        if any(
            c.get("type") == "Progressing" and c.get("reason") == "ProgressDeadlineExceeded"
            for c in conditions
        ):
            return True  # the Deployment controller gave up; waiting longer would block other rollouts
        replicas = int(spec.get("replicas", 1))
        return (
            count("updatedReplicas") >= replicas
            and count("replicas") <= count("updatedReplicas")
            and count("availableReplicas") >= replicas
        )
    if kind == "StatefulSet":
        replicas = int(spec.get("replicas", 1))
        rolling = (spec.get("updateStrategy") or {}).get("rollingUpdate") or {}
        partition = int(rolling.get("partition") or 0)
        return count("updatedReplicas") >= replicas - partition and count("readyReplicas") >= replicas
    if kind == "DaemonSet":
        desired = count("desiredNumberScheduled")
        return count("updatedNumberScheduled") >= desired and count("numberAvailable") >= desired
    return True
