"""The workload kinds: the one table every kind-dependent list of the operator is derived from.

The webhook rules (``admission.configuration``) and the compiled admission policies' resource rules
(``engine.apiserver.validating``), the audited kinds and their API versions
(``engine.audit.subjects``), the rolled kinds (``engine.rollout.facts``), the watched resources
(the rollout and audit wiring), the workload patches (``kube``) and where each kind keeps its pod
template (``engine.pods``) all come from :data:`KINDS`. Adding a kind is adding one row.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from production_policy.engine.interning import shared


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


def rules_for(workload_kinds: Iterable[WorkloadKind]) -> list[dict[str, Any]]:
    """Admission rules (no operations) matching these kinds: one per API group and version, in table
    order. The webhook configurations and the compiled admission policies add their operations."""
    rules: dict[tuple[str, str], list[str]] = {}
    for kind in workload_kinds:
        rules.setdefault((kind.group, kind.version), []).append(kind.plural)
    return [
        {"apiGroups": [group], "apiVersions": [version], "resources": plurals}
        for (group, version), plurals in rules.items()
    ]


_DEPLOYMENT_POD_LABEL = "pod-template-hash"
"""Set by the Deployment controller on its ReplicaSets' pods (and on no bare ReplicaSet's)."""


def pods_counted_as(kind: str) -> frozenset[str]:
    """The kinds ``match.kinds`` sees the pods of a workload of ``kind`` as.

    A Job's pods count as Job and as CronJob: a pod knows its Job, not whether a CronJob made the
    Job, so a policy naming either kind gives them its defaults.
    """
    if kind in ("Job", "CronJob"):
        return shared(frozenset(("Job", "CronJob")))
    return shared(frozenset((kind,)))


def counted_as(obj: Mapping[str, Any]) -> frozenset[str]:
    """The kinds ``match.kinds`` sees a Pod or a workload's template as: those of the pods it makes.

    A workload's pods count as its kind (:func:`pods_counted_as`: a Job's and a CronJob's as both);
    a Pod as the kind of the workload controlling it, a ReplicaSet's pod with the Deployment
    controller's ``pod-template-hash`` label as a Deployment's; a pod no workload controls as Pod.
    So a template is judged, and its pods get defaults, under the same policies.
    """
    kind = obj.get("kind")
    if not isinstance(kind, str):
        return frozenset()
    if kind != POD.kind:
        return pods_counted_as(kind)
    metadata = obj.get("metadata")
    metadata = metadata if isinstance(metadata, Mapping) else {}
    owner = controller_kind(metadata.get("ownerReferences"))
    if owner is None:
        return pods_counted_as(POD.kind)
    labels = metadata.get("labels")
    if owner == "ReplicaSet" and isinstance(labels, Mapping) and _DEPLOYMENT_POD_LABEL in labels:
        return pods_counted_as("Deployment")
    return pods_counted_as(owner)


def controller_kind(owner_references: Any) -> str | None:
    """The kind of the workload controlling an object (its controller owner reference of one of
    :data:`KINDS` in that kind's API group); None when no workload controls it."""
    for owner in owner_references if isinstance(owner_references, list) else ():
        if not isinstance(owner, Mapping) or owner.get("controller") is not True:
            continue
        kind, api_version = owner.get("kind"), owner.get("apiVersion")
        if kind in BY_KIND and kind != POD.kind and isinstance(api_version, str):
            return str(kind) if api_version.rpartition("/")[0] == BY_KIND[kind].group else None
    return None


def pod_workload(metadata: Mapping[str, Any]) -> tuple[str, str]:
    """(kind, name) of the workload a pod (its metadata) belongs to, from its controller owner reference.

    A ReplicaSet's pod with the Deployment controller's ``pod-template-hash`` label belongs to the
    Deployment: the Deployment controller names its ReplicaSets ``<deployment>-<hash>``, so the
    Deployment's name is read off the ReplicaSet's without asking the API server. A StatefulSet's,
    DaemonSet's, Job's or bare ReplicaSet's pod belongs to it; a pod no workload controls, to itself.
    The probe watch and the mutating side both name workloads so (``engine.apiserver.cel`` in CEL).
    """
    name = metadata.get("name")
    pod = (POD.kind, name if isinstance(name, str) else "")
    owners = metadata.get("ownerReferences")
    kind = controller_kind(owners)
    if kind is None:
        return pod
    owner = next(o for o in owners or () if isinstance(o, Mapping) and o.get("controller") is True)
    owner_name = owner.get("name")
    if not isinstance(owner_name, str) or not owner_name:
        return pod
    labels = metadata.get("labels")
    pod_hash = labels.get(_DEPLOYMENT_POD_LABEL) if isinstance(labels, Mapping) else None
    if kind == "ReplicaSet" and isinstance(pod_hash, str) and owner_name.endswith(f"-{pod_hash}"):
        return "Deployment", owner_name[: -len(pod_hash) - 1]
    return kind, owner_name
