"""The workload kinds: the one table every kind-dependent list of the operator is derived from.

The webhook rules (``admission.configuration``), the audited kinds and their API versions
(``engine.audit.subjects``), the rolled kinds (``engine.rollout.facts``), the watched resources
(the rollout and audit wiring), the workload patches (``kube``) and where each kind keeps its pod
template (``engine.pods``) all come from :data:`KINDS`. Adding a kind is adding one row.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WorkloadKind:
    """A kind of object that makes pods (or is one), and what the operator does with it."""

    kind: str
    group: str
    """The API group ("" for the core group)."""
    version: str
    plural: str
    """The resource name, as in the API path and in webhook rules."""
    template_path: tuple[str, ...]
    """Keys from the object to its pod template; empty for the Pod, its own template."""
    audited: bool
    """Counted by the policy audit (when no controller owns it)."""
    rollable: bool
    """Rolled by the config-rollout controller when the data its pods use changes."""

    @property
    def api_version(self) -> str:
        """The ``apiVersion`` of its objects ("apps/v1", "v1")."""
        return f"{self.group}/{self.version}" if self.group else self.version


_TEMPLATE = ("spec", "template")
_JOB_TEMPLATE = ("spec", "jobTemplate", "spec", "template")

KINDS = (
    WorkloadKind("Deployment", "apps", "v1", "deployments", _TEMPLATE, audited=True, rollable=True),
    WorkloadKind("StatefulSet", "apps", "v1", "statefulsets", _TEMPLATE, audited=True, rollable=True),
    WorkloadKind("DaemonSet", "apps", "v1", "daemonsets", _TEMPLATE, audited=True, rollable=True),
    # Nearly always owned by a Deployment; a bare one is too rare to be worth a cluster-wide watch.
    WorkloadKind("ReplicaSet", "apps", "v1", "replicasets", _TEMPLATE, audited=False, rollable=False),
    WorkloadKind("Job", "batch", "v1", "jobs", _TEMPLATE, audited=True, rollable=False),
    WorkloadKind("CronJob", "batch", "v1", "cronjobs", _JOB_TEMPLATE, audited=True, rollable=False),
    WorkloadKind("Pod", "", "v1", "pods", (), audited=True, rollable=False),
)
"""Every workload kind, in the order lists derived from it keep (the audit's status, say)."""

BY_KIND = {kind.kind: kind for kind in KINDS}

POD = BY_KIND["Pod"]

POD_CONTROLLERS = tuple(kind for kind in KINDS if kind.template_path)
"""The kinds with a pod template (every kind but the Pod): the workload webhook's."""

AUDITED = tuple(kind for kind in KINDS if kind.audited)

ROLLABLE = tuple(kind for kind in KINDS if kind.rollable)
