"""Which ConfigMaps and Secrets — and which of their keys — a pod spec depends on.

Covered: env ``valueFrom`` (configMapKeyRef, secretKeyRef) and ``envFrom`` of regular, init and
ephemeral containers; ``configMap`` and ``secret`` volumes; ``projected`` volume sources. A
volume without ``items`` and an ``envFrom`` depend on every key (``keys=None``). Image pull
secrets, service account tokens and CSI secrets are credentials, not configuration, and are not
listed: a change to them must not roll workloads.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from production_policy.engine.interning import shared

SourceKind = Literal["ConfigMap", "Secret"]
_ENV_KEY_REFS: tuple[tuple[str, SourceKind], ...] = (
    ("configMapKeyRef", "ConfigMap"),
    ("secretKeyRef", "Secret"),
)
_ENV_FROM_REFS: tuple[tuple[str, SourceKind], ...] = (("configMapRef", "ConfigMap"), ("secretRef", "Secret"))
_PROJECTIONS: tuple[tuple[str, SourceKind], ...] = (("configMap", "ConfigMap"), ("secret", "Secret"))


@dataclass(frozen=True, slots=True)
class SourceRef:
    """A ConfigMap or Secret a pod spec uses.

    ``keys``: the keys used, None for every key (one set shared by every reference to the same
    keys). ``optional``: the pod can start without the source.
    """

    kind: SourceKind
    name: str
    keys: frozenset[str] | None
    optional: bool

    @property
    def source(self) -> tuple[str, str]:
        """(kind, name): how the rollout engine keys the data of a source."""
        return self.kind, self.name


def referenced_sources(pod_spec: Mapping[str, Any]) -> list[SourceRef]:
    """The sources ``pod_spec`` references, one per (kind, name), sorted by kind and name.

    References to one source are merged: their keys add up (any "every key" wins), and the source
    is optional only if every reference to it is.
    """
    merged: dict[tuple[SourceKind, str], SourceRef] = {}
    for ref in _references(pod_spec):
        if not ref.name:
            continue
        earlier = merged.get((ref.kind, ref.name))
        if earlier is not None:
            keys = None if earlier.keys is None or ref.keys is None else shared(earlier.keys | ref.keys)
            ref = SourceRef(ref.kind, ref.name, keys, earlier.optional and ref.optional)
        merged[(ref.kind, ref.name)] = ref
    return [merged[key] for key in sorted(merged)]


def _references(pod_spec: Mapping[str, Any]) -> Iterator[SourceRef]:
    for field in ("containers", "initContainers", "ephemeralContainers"):
        for container in _dicts(pod_spec.get(field)):
            for env in _dicts(container.get("env")):
                value_from = _dict(env.get("valueFrom"))
                for key_ref, kind in _ENV_KEY_REFS:
                    ref = value_from.get(key_ref)
                    if isinstance(ref, Mapping):
                        yield _ref(kind, ref.get("name"), _keys_of([ref.get("key")]), ref)
            for env_from in _dicts(container.get("envFrom")):
                for source_ref, kind in _ENV_FROM_REFS:
                    ref = env_from.get(source_ref)
                    if isinstance(ref, Mapping):
                        yield _ref(kind, ref.get("name"), None, ref)
    for volume in _dicts(pod_spec.get("volumes")):
        config_map, secret = volume.get("configMap"), volume.get("secret")
        if isinstance(config_map, Mapping):
            yield _ref("ConfigMap", config_map.get("name"), _item_keys(config_map), config_map)
        if isinstance(secret, Mapping):
            yield _ref("Secret", secret.get("secretName"), _item_keys(secret), secret)
        for source in _dicts(_dict(volume.get("projected")).get("sources")):
            for field, kind in _PROJECTIONS:
                projection = source.get(field)
                if isinstance(projection, Mapping):
                    yield _ref(kind, projection.get("name"), _item_keys(projection), projection)


def _ref(kind: SourceKind, name: Any, keys: frozenset[str] | None, ref: Mapping[str, Any]) -> SourceRef:
    return SourceRef(kind, name if isinstance(name, str) else "", keys, ref.get("optional") is True)


def _item_keys(source: Mapping[str, Any]) -> frozenset[str] | None:
    """The keys a volume projects: those of ``items``, or every key when there are none."""
    items = list(_dicts(source.get("items")))
    return _keys_of([item.get("key") for item in items]) if items else None


def _keys_of(keys: list[Any]) -> frozenset[str]:
    return shared(frozenset(key for key in keys if isinstance(key, str) and key))


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _dicts(value: Any) -> Iterator[Mapping[str, Any]]:
    if isinstance(value, list):
        yield from (item for item in value if isinstance(item, Mapping))
