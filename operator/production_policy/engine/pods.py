"""Where the pod is in each workload kind, and which containers of a pod spec the rules apply to.

Container roles (what each kind of container gets):

- ``container`` (``spec.containers``): probes and resources.
- ``sidecar`` (a native sidecar: an init container with ``restartPolicy: Always``): probes and
  resources, like a regular container — it runs for the pod's whole life, and Kubernetes
  accepts probes on it (its readiness counts towards the pod's).
- ``init`` (any other init container): resources only. It runs to completion before the app
  starts; Kubernetes refuses probes on it, so none is ever required or injected.

Ephemeral containers (``kubectl debug``) accept neither probes nor resources and are ignored.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from production_policy.engine import kinds

Role = Literal["container", "sidecar", "init"]

WORKLOAD_KINDS = frozenset(kinds.BY_KIND)


def pod_template(obj: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(pod metadata, pod spec) of a Pod or of the pod template of a workload; None for any other object.

    The kinds are those of :data:`engine.kinds.KINDS` (Pod, Deployment, StatefulSet, DaemonSet,
    ReplicaSet, Job, CronJob), each in its own API group (a custom resource that happens to be
    called "Deployment" is not one). The dicts returned are the object's own; callers that change
    them must copy first.
    """
    kind = obj.get("kind")
    if not isinstance(kind, str) or kind not in kinds.BY_KIND:
        return None
    workload_kind = kinds.BY_KIND[kind]
    api_version = obj.get("apiVersion")
    if not isinstance(api_version, str) or api_version.rpartition("/")[0] != workload_kind.group:
        return None
    node: Any = obj
    for key in workload_kind.template_path:
        node = node.get(key) if isinstance(node, Mapping) else None
    if not isinstance(node, dict):
        return None
    metadata, spec = node.get("metadata"), node.get("spec")
    return (metadata if isinstance(metadata, dict) else {}), (spec if isinstance(spec, dict) else {})


@dataclass(frozen=True)
class ContainerSlot:
    """A container of a pod spec, with where it sits and what the rules treat it as."""

    field: Literal["containers", "initContainers"]
    index: int
    container: Mapping[str, Any]
    role: Role

    @property
    def name(self) -> str:
        """The container's name ("" if it has none)."""
        name = self.container.get("name")
        return name if isinstance(name, str) else ""

    @property
    def takes_probes(self) -> bool:
        """Whether probes apply to this container: regular containers and native sidecars."""
        return self.role != "init"


def container_slots(pod_spec: Mapping[str, Any]) -> Iterator[ContainerSlot]:
    """The regular containers, then the init containers (native sidecars included), in spec order."""
    for index, container in _entries(pod_spec, "containers"):
        yield ContainerSlot("containers", index, container, "container")
    for index, container in _entries(pod_spec, "initContainers"):
        role: Role = "sidecar" if container.get("restartPolicy") == "Always" else "init"
        yield ContainerSlot("initContainers", index, container, role)


def _entries(pod_spec: Mapping[str, Any], field: str) -> Iterator[tuple[int, dict[str, Any]]]:
    # Indexes are those of the spec (they become JSON pointers) even if a malformed entry is skipped.
    items = pod_spec.get(field)
    for index, item in enumerate(items if isinstance(items, list) else []):
        if isinstance(item, dict):
            yield index, item


def controlled_by_workload(obj: Mapping[str, Any]) -> bool:
    """Whether a controller of one of the workload kinds owns ``obj`` (a ReplicaSet's pods, say).

    Such an object was already judged through its owner's template — with ratcheting on UPDATE —
    so judging it again without ratcheting would block the rollout of a legacy workload the
    owner's update was allowed to start.
    """
    metadata = obj.get("metadata")
    owners = metadata.get("ownerReferences") if isinstance(metadata, Mapping) else None
    if not isinstance(owners, list):
        return False
    for owner in owners:
        if not isinstance(owner, Mapping) or owner.get("controller") is not True:
            continue
        kind, api_version = owner.get("kind"), owner.get("apiVersion")
        if kind in kinds.BY_KIND and kind != "Pod" and isinstance(api_version, str):
            return api_version.rpartition("/")[0] == kinds.BY_KIND[kind].group
    return False
