"""The status of a ProductionPolicy: what it matches, what violates it, and whether it is active."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from production_policy.api.base import NAME_MAX, KubeModel

MAX_STATUS_VIOLATIONS = 20
MAX_STATUS_PROBE_FAILURES = 10
MAX_STATUS_WITHDRAWN_PROBES = 50
"""More than the failures listed: a withdrawal the list has no room for is not made (it is reported)."""
MESSAGE_MAX = 1024


class Condition(KubeModel):
    """A condition of the policy, in the shape of Kubernetes' metav1.Condition."""

    type: str = Field(min_length=1, max_length=316, description="Type of the condition, e.g. Ready.")
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str = Field(default="", max_length=1024, description="One-word CamelCase reason for the status.")
    message: str = Field(default="", max_length=32768, description="Human-readable details.")
    last_transition_time: str | None = Field(
        default=None,
        max_length=64,
        json_schema_extra={"format": "date-time"},
        description="When the status last changed (RFC 3339).",
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="The spec generation the condition was computed from."
    )


class StatusViolation(KubeModel):
    """One workload that breaks the policy."""

    namespace: str = Field(max_length=NAME_MAX, description="Namespace of the workload.")
    kind: str = Field(max_length=64, description="Kind of the workload: Deployment, StatefulSet, Pod, ...")
    name: str = Field(max_length=NAME_MAX, description="Name of the workload.")
    message: str = Field(max_length=MESSAGE_MAX, description="What violates the policy and what to add.")


class StatusProbeFailure(KubeModel):
    """One probe this policy's default injected that fails a workload."""

    namespace: str = Field(max_length=NAME_MAX, description="Namespace of the workload.")
    kind: str = Field(max_length=64, description="Kind of the workload: Deployment, StatefulSet, Pod, ...")
    name: str = Field(max_length=NAME_MAX, description="Name of the workload.")
    container: str = Field(max_length=NAME_MAX, description="The container the probe was injected into.")
    probe: Literal["readiness", "liveness", "startup"] = Field(description="Which probe fails.")
    message: str = Field(
        max_length=MESSAGE_MAX, description="The injected probe, what the kubelet did, and its last message."
    )


class WorkloadIdentity(KubeModel):
    """Which workload: its kind, namespace and name."""

    kind: str = Field(max_length=64, description="Kind of the workload: Deployment, StatefulSet, Pod, ...")
    namespace: str = Field(max_length=NAME_MAX, description="Namespace of the workload.")
    name: str = Field(max_length=NAME_MAX, description="Name of the workload.")


class StatusWithdrawnProbe(KubeModel):
    """A default probe of this policy no longer injected into one container of one workload."""

    workload: WorkloadIdentity = Field(description="The workload whose new pods go without it.")
    container: str = Field(max_length=NAME_MAX, description="The container it is withdrawn from.")
    probe: Literal["liveness", "startup"] = Field(description="Which probe is withdrawn.")
    default_digest: str = Field(
        max_length=64,
        description="Digest of the policy's default when it was withdrawn: a changed default lifts it.",
    )
    since: str = Field(
        max_length=64, json_schema_extra={"format": "date-time"}, description="When it was withdrawn."
    )
    last_failure: str = Field(
        max_length=MESSAGE_MAX,
        description="Why: the injected probe's failure and the kubelet's last message.",
    )


class ProductionPolicyStatus(KubeModel):
    """Observed state of the policy, kept current by the controller."""

    observed_generation: int | None = Field(
        default=None, ge=0, description="The spec generation this status reflects."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        max_length=8,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
        description="Conditions of the policy, such as Ready.",
    )
    matched_workloads: int | None = Field(default=None, ge=0, description="Workloads this policy applies to.")
    non_compliant_workloads: int | None = Field(
        default=None, ge=0, description="Matched workloads that break at least one of its rules."
    )
    violations: list[StatusViolation] = Field(
        default_factory=list,
        max_length=MAX_STATUS_VIOLATIONS,
        description=f"Up to {MAX_STATUS_VIOLATIONS} violating workloads, most severe first.",
    )
    probe_failing_workloads: int | None = Field(
        default=None,
        ge=0,
        description="Workloads that a probe injected from this policy's defaults restarts or keeps unready.",
    )
    probe_failures: list[StatusProbeFailure] | None = Field(
        default=None,
        max_length=MAX_STATUS_PROBE_FAILURES,
        description=f"Up to {MAX_STATUS_PROBE_FAILURES} injected probes failing workloads, by namespace, kind"
        " and name.",
    )
    withdrawn_probes: list[StatusWithdrawnProbe] | None = Field(
        default=None,
        max_length=MAX_STATUS_WITHDRAWN_PROBES,
        description="The default probes (onInjectedFailure: Withdraw) no longer injected into a workload "
        "because they failed it; written by the controller only, read by the mutating side.",
    )
