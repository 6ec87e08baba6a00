"""Where the pod is in each workload kind, and which containers of a pod spec the rules apply to.

Container roles (what each kind of container gets):

- ``container`` (``spec.containers``): probes and resources.
- ``sidecar`` (a native sidecar: an init container with ``restartPolicy: Always``): probes and
  resources, like a regular container — it runs for the pod's whole life, and Kubernetes
  accepts probes on it (its readiness counts towards the pod's).
- ``init`` (any other init container): resources only. It runs to completion before the app
  starts; Kubernetes refuses probes on it, so none is ever required or injected.

Ephemeral containers (``kubectl debug``) accept neither probes nor resources and are ignored.

The shape of an incoming object is checked here, once (:func:`pod_from_template`): admission,
the audit and ``check`` all judge the :class:`PodView` it returns, whose fields have the types
they say, so the rules read them without checking again. An API server only ever sends
well-formed objects; the checks are for what a fuzzer, a person with curl or a hand-written
manifest may send, and treat a member of the wrong type as absent.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from production_policy.engine import kinds
from production_policy.engine.names import INJECTED_ANNOTATION

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
    # A Mapping, not only a dict: kopf hands a Pod over as its Body view, and a Pod is its own template.
    if not isinstance(node, Mapping):
        return None
    metadata, spec = node.get("metadata"), node.get("spec")
    return (metadata if isinstance(metadata, dict) else {}), (spec if isinstance(spec, dict) else {})


@dataclass(frozen=True, slots=True)
class PodView:
    """The pod a Pod or a workload's template makes, reduced to what the rules read, shape checked."""

    labels: Mapping[str, str]
    kinds: frozenset[str]
    """The kinds ``match.kinds`` sees the pod as (:func:`production_policy.engine.kinds.counted_as`)."""
    injected: tuple[str, ...] = field(compare=False)
    """The entries of the pod's ``productionpolicy.dev/injected`` annotation: what a mutation added.
    Not compared: two views are equal when they judge alike."""
    spec: Mapping[str, Any]
    """The pod spec, with only what the rules read: ``resources`` and ``containers`` and
    ``initContainers``. A ``resources`` (the pod's or a container's) is an object whose ``requests``
    and ``limits``, when present, are objects. Each container list entry is a container object —
    or None where the entry is not one, so that the others keep their index (they become JSON
    pointers) — holding only ``name`` (a string), ``ports`` (a list of objects), ``resources``, the
    three probes and ``restartPolicy``. The objects are the incoming ones where they were
    well-formed: read them, never change them."""


_CONTAINER_FIELDS = (
    "name",
    "ports",
    "resources",
    "readinessProbe",
    "livenessProbe",
    "startupProbe",
    "restartPolicy",
)
_CONTAINER_LISTS = ("containers", "initContainers")
_RESOURCE_KINDS = ("requests", "limits")


def pod_from_template(obj: Mapping[str, Any]) -> PodView | None:
    """The pod that a Pod or a workload (see :func:`pod_template`) makes; None for any other object."""
    template = pod_template(obj)
    if template is None:
        return None
    metadata, spec = template
    labels = metadata.get("labels")
    if not isinstance(labels, dict):
        labels = {}
    elif not all(type(value) is str for value in labels.values()):
        labels = {key: value for key, value in labels.items() if type(value) is str}
    annotations = metadata.get("annotations")
    injected = annotations.get(INJECTED_ANNOTATION) if isinstance(annotations, dict) else None
    return PodView(
        labels,
        kinds.counted_as(obj),
        tuple(entry for entry in injected.split(",") if entry) if isinstance(injected, str) else (),
        _checked_spec(spec),
    )


def _checked_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    checked: dict[str, Any] = {}
    resources = _checked_resources(spec.get("resources"))
    if resources is not None:
        checked["resources"] = resources
    for name in _CONTAINER_LISTS:
        items = spec.get(name)
        if isinstance(items, list):
            checked[name] = [_checked_container(item) if isinstance(item, dict) else None for item in items]
    return checked


def _checked_container(container: dict[str, Any]) -> dict[str, Any]:
    checked = {key: container[key] for key in _CONTAINER_FIELDS if key in container}
    if "name" in checked and type(checked["name"]) is not str:
        del checked["name"]
    if "ports" in checked:
        ports = checked["ports"]
        if not isinstance(ports, list):
            del checked["ports"]
        elif not all(type(port) is dict for port in ports):
            checked["ports"] = [port for port in ports if isinstance(port, dict)]
    if "resources" in checked:
        resources = _checked_resources(checked["resources"])
        if resources is None:
            del checked["resources"]
        else:
            checked["resources"] = resources
    return checked


def _checked_resources(resources: Any) -> dict[str, Any] | None:
    """``resources`` whose requests and limits are objects (others left out); None if not an object."""
    if not isinstance(resources, dict):
        return None
    if all(kind not in resources or type(resources[kind]) is dict for kind in _RESOURCE_KINDS):
        return resources  # well-formed: shared, not copied
    return {kind: value for kind in _RESOURCE_KINDS if isinstance(value := resources.get(kind), dict)}


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
        name: str = self.container.get("name", "")
        return name

    @property
    def takes_probes(self) -> bool:
        """Whether probes apply to this container: regular containers and native sidecars."""
        return self.role != "init"


def container_slots(pod_spec: Mapping[str, Any]) -> Iterator[ContainerSlot]:
    """The regular containers, then the init containers (native sidecars included), in spec order,
    of a pod spec shaped as :attr:`PodView.spec`."""
    for index, container in _entries(pod_spec, "containers"):
        yield ContainerSlot("containers", index, container, "container")
    for index, container in _entries(pod_spec, "initContainers"):
        role: Role = "sidecar" if container.get("restartPolicy") == "Always" else "init"
        yield ContainerSlot("initContainers", index, container, role)


def _entries(pod_spec: Mapping[str, Any], field: str) -> Iterator[tuple[int, dict[str, Any]]]:
    # Indexes are those of the spec (they become JSON pointers): a malformed entry is None, skipped.
    for index, item in enumerate(pod_spec.get(field, ())):
        if item is not None:
            yield index, item


def controlled_by_workload(obj: Mapping[str, Any]) -> bool:
    """Whether a controller of one of the workload kinds owns ``obj`` (a ReplicaSet's pods, say).

    Such an object was already judged through its owner's template — with ratcheting on UPDATE —
    so judging it again without ratcheting would block the rollout of a legacy workload the
    owner's update was allowed to start.
    """
    metadata = obj.get("metadata")
    return (
        isinstance(metadata, Mapping) and kinds.controller_kind(metadata.get("ownerReferences")) is not None
    )
