"""The ProductionPolicy resource: which workloads it applies to, how it enforces, what it requires."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, field_validator

from production_policy import GROUP, KIND, VERSION
from production_policy.api.base import LABEL_VALUE_MAX, NAME_MAX, KubeModel, LabelSelector
from production_policy.api.probes import ProbePolicy
from production_policy.api.resources import ResourcePolicy
from production_policy.api.status import ProductionPolicyStatus

API_VERSION = f"{GROUP}/{VERSION}"
Enforcement = Literal["Enforce", "Warn", "Audit"]
ENFORCEMENTS: tuple[Enforcement, ...] = ("Enforce", "Warn", "Audit")
WorkloadKindName = Literal["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod"]
"""The kinds of :data:`production_policy.engine.kinds.KINDS` (a unit test keeps them equal)."""


class WorkloadSelector(KubeModel):
    """Selects pods by workload kind, namespace name, namespace labels and pod labels; every criterion
    given must hold."""

    kinds: list[WorkloadKindName] = Field(
        default_factory=list,
        max_length=7,
        json_schema_extra={"x-kubernetes-list-type": "set"},
        description="Kinds of workload. A pod counts as the kind of the workload that made it (a "
        "Deployment's pods as Deployment), a pod no workload controls as Pod, and a workload as its "
        "pods do; Job and CronJob mean both, since a pod cannot tell whether a CronJob made its Job. "
        "Empty: any kind.",
    )

    namespaces: list[Annotated[str, Field(min_length=1, max_length=LABEL_VALUE_MAX)]] = Field(
        default_factory=list,
        max_length=256,
        json_schema_extra={"x-kubernetes-list-type": "set"},
        description="Namespace names. Empty: any namespace.",
    )
    namespace_selector: LabelSelector | None = Field(
        default=None, description="Labels of the namespace. Absent: any namespace; {} also matches any."
    )
    pod_selector: LabelSelector | None = Field(
        default=None, description="Labels of the pod (of the pod template, for workloads). Absent: any pod."
    )

    def is_empty(self) -> bool:
        """True when no criterion is given."""
        return (
            not self.kinds
            and not self.namespaces
            and self.namespace_selector is None
            and self.pod_selector is None
        )


class ConfigRollout(KubeModel):
    """Rolling restarts of Deployments, StatefulSets and DaemonSets when the configuration they use changes.

    Only the keys a workload references count.
    """

    enabled: bool = Field(
        default=False,
        description="Roll matched workloads when a referenced key of a ConfigMap or Secret changes.",
    )
    debounce_seconds: int = Field(
        default=2, ge=0, le=3600, description="Wait this long after a change for more changes before rolling."
    )
    min_interval_seconds: int = Field(
        default=30, ge=0, le=86400, description="Never roll one workload more often than this."
    )
    max_concurrent: int = Field(
        default=5,
        ge=1,
        le=1000,
        description="At most this many workloads rolling at the same time, cluster-wide.",
    )
    max_rollouts_per_window: int = Field(
        default=5,
        ge=1,
        le=1000,
        description="Breaker for a flapping source: at most this many rollouts of one workload per window; "
        "beyond that, rollouts stop and the workload is reported until the window has passed.",
    )
    window_seconds: int = Field(
        default=600, ge=1, le=86400, description="Length of the breaker's window (see maxRolloutsPerWindow)."
    )


class ProductionPolicySpec(KubeModel):
    """What a ProductionPolicy applies to and what it requires of the pods it matches."""

    match: WorkloadSelector = Field(
        default_factory=WorkloadSelector,
        description="Pods this policy applies to. Empty: every pod (in namespaces the installation watches).",
    )
    exclude: WorkloadSelector = Field(
        default_factory=WorkloadSelector,
        description="Pods exempt from this policy: those meeting every criterion given here. Empty: none.",
    )
    enforcement: Enforcement = Field(
        default="Enforce",
        description="Enforce: refuse violating pods and workloads. Warn: admit them with warnings. "
        "Audit: admit them silently; violations show in the status only.",
    )
    priority: int = Field(
        default=0,
        ge=-1000,
        le=1000,
        description="When several policies give a default for the same field, the highest priority wins, "
        "then the policy name in alphabetical order. Requirements of all matching policies always apply.",
    )
    probes: ProbePolicy = Field(
        default_factory=ProbePolicy, description="Required probes and their defaults."
    )
    resources: ResourcePolicy = Field(
        default_factory=ResourcePolicy,
        description="Resource defaults, bounds and requirements per container.",
    )
    config_rollout: ConfigRollout = Field(
        default_factory=ConfigRollout,
        description="Rolling restarts when referenced ConfigMaps and Secrets change.",
    )


class PolicyMetadata(KubeModel):
    """The part of the object metadata the policy logic uses."""

    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1, max_length=NAME_MAX, description="Name of the policy.")
    generation: int | None = Field(default=None, description="Generation of the spec, set by the API server.")


class ProductionPolicy(KubeModel):
    """A ProductionPolicy object (cluster-scoped)."""

    model_config = ConfigDict(extra="ignore")

    api_version: str = Field(alias="apiVersion")
    kind: str
    metadata: PolicyMetadata
    spec: ProductionPolicySpec
    status: ProductionPolicyStatus | None = None

    @field_validator("api_version")
    @classmethod
    def _our_api_version(cls, value: str) -> str:
        if value != API_VERSION:
            raise ValueError(f"must be {API_VERSION}")
        return value

    @field_validator("kind")
    @classmethod
    def _our_kind(cls, value: str) -> str:
        if value != KIND:
            raise ValueError(f"must be {KIND}")
        return value

    @property
    def name(self) -> str:
        """The policy's name."""
        return self.metadata.name
