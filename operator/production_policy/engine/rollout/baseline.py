"""The baseline: which data a workload's pods run with, as keyed digests, and how it compares.

The baseline is stored on the workload (``config-baseline``) so that the controller is
level-triggered: whatever happened while it was not watching, comparing the stored baseline with
the data observed now says exactly what changed, by source and by key, and nothing else.

Rules that keep rollouts to real changes of data the pods use:

- Only referenced keys are tracked (all keys for ``envFrom`` and whole volumes).
- A source that is newly referenced, or referenced differently, is adopted without a rollout:
  the reference itself changed the pod template, so the workload rolls on its own.
- A source that is no longer referenced, or is now ignored, is dropped without a rollout.
- A *required* source or key that is missing never causes a rollout, and its last known digests
  are kept: new pods could not start, and the data may come back unchanged. An *optional* source
  that appears or disappears is a change.
- Digests made with another HMAC key (a new install, a rotated key) or another scheme cannot be
  compared: the workload is re-baselined, not rolled.
"""

from __future__ import annotations

import bisect
import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from production_policy.engine.interning import shared
from production_policy.engine.references import SourceRef

SCHEME = 1
"""Version of the baseline format. A change of format must re-baseline, never roll (wave #151)."""

ABSENT = "-"
"""Digest recorded for a referenced key that the source does not have."""

MAX_KEYS_PER_SOURCE = 64
"""Beyond this many tracked keys a source is stored as one digest, to bound the annotation's size
(the Deployment controller copies annotations to every ReplicaSet it keeps)."""

DIGEST_LENGTH = 16
"""Hex characters kept of each keyed digest: 64 bits tell versions of one key apart with certainty."""

SourceId = tuple[str, str]
"""(kind, name) of a ConfigMap or Secret in the workload's namespace."""

Digests = Mapping[str, str] | str | None
"""Per-key digests; one digest for a source with too many keys; None for an absent optional source."""


@dataclass(frozen=True, slots=True)
class SourceData:
    """A ConfigMap or Secret as the controller holds it: digests per key, never values."""

    digests: Mapping[str, str]
    """In their stored form (:func:`short`); the controller's own are :class:`PackedDigests`."""
    ignored: bool = False


class PackedDigests(Mapping[str, str]):
    """Per-key digests in their stored form, packed: what the controller holds of every source.

    The keys are kept sorted in a tuple shared by every source with the same keys, the digests as
    the bytes their hex stands for, one after the other in key order; reading one gives the hex
    back. A dict of hex strings would hold a dict, a key name and a 16-character string per key
    of every ConfigMap and Secret in the cluster.
    """

    __slots__ = ("_keys", "_packed")

    def __init__(self, digests: Mapping[str, str]) -> None:
        keys = shared(tuple(sorted(digests)))
        self._keys: tuple[str, ...] = keys
        self._packed = b"".join(bytes.fromhex(short(digests[key])) for key in keys)

    def __getitem__(self, key: str) -> str:
        index = bisect.bisect_left(self._keys, key)
        if index == len(self._keys) or self._keys[index] != key:
            raise KeyError(key)
        width = DIGEST_LENGTH // 2
        return self._packed[index * width : (index + 1) * width].hex()

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PackedDigests):
            return self._keys == other._keys and self._packed == other._packed
        return super().__eq__(other)

    __hash__ = None  # type: ignore[assignment]  # equal to dicts, which are not hashable

    def __repr__(self) -> str:
        return f"PackedDigests({dict(self)!r})"


@dataclass(frozen=True)
class Tracked:
    """What the pods of a workload were started with, from one source."""

    keys: frozenset[str] | None
    """The referenced keys; None: every key."""
    digests: Digests


@dataclass(frozen=True)
class Baseline:
    """Every tracked source of one workload, and the HMAC key (by id) its digests were made with."""

    key_id: str
    sources: Mapping[SourceId, Tracked] = field(default_factory=dict)


@dataclass(frozen=True)
class Missing:
    """A required source, or required keys of a source, that do not exist: pods could not start."""

    kind: str
    name: str
    keys: tuple[str, ...] = ()

    def describe(self) -> str:
        what = f"{self.kind} {self.name}"
        return f"{what} (keys {', '.join(self.keys)})" if self.keys else what


@dataclass(frozen=True)
class Observation:
    """The referenced data as it is now."""

    tracked: Mapping[SourceId, Tracked]
    missing: tuple[Missing, ...] = ()


@dataclass(frozen=True)
class SourceChange:
    """One source whose referenced data changed; ``keys`` names the changed keys, never values."""

    kind: str
    name: str
    keys: tuple[str, ...]
    """Changed keys, sorted; empty when the source is tracked as a single digest."""

    def describe(self) -> str:
        if not self.keys:
            return f"{self.kind} {self.name} (keys not tracked one by one)"
        noun = "key" if len(self.keys) == 1 else "keys"
        return f"{self.kind} {self.name} {noun} {', '.join(self.keys)}"


@dataclass(frozen=True)
class Comparison:
    """What changed between a baseline and an observation."""

    changes: tuple[SourceChange, ...]
    """Data changes that call for a rollout."""
    next_baseline: Baseline
    """The baseline to store: the observation, plus the kept digests of missing required sources."""
    first_sight: bool
    """No usable baseline: store ``next_baseline`` and roll nothing."""
    rewrite: bool
    """The stored baseline differs from ``next_baseline`` (by a change, or only by adoptions)."""


def short(digest: str) -> str:
    """The stored form of a keyed digest."""
    return digest[:DIGEST_LENGTH]


def compact(digests: Mapping[str, str]) -> PackedDigests:
    """Per-key digests in their stored form: only these are held in memory and written out."""
    return PackedDigests(digests)


def combined(digests: Mapping[str, str]) -> str:
    """One digest for many per-key digests (already keyed, so a plain hash reveals nothing)."""
    text = json.dumps(sorted(digests.items()), separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:DIGEST_LENGTH]


def key_id(hmac_key: bytes) -> str:
    """A short public id of the HMAC key, so that digests made with another key are recognised."""
    import hmac

    return hmac.new(hmac_key, b"production-policy config-rollout key id", hashlib.sha256).hexdigest()[:8]


def observe(references: Iterable[SourceRef], sources: Mapping[SourceId, SourceData]) -> Observation:
    """Track the referenced keys of every referenced source, as the data stands now."""
    tracked: dict[SourceId, Tracked] = {}
    missing: list[Missing] = []
    for ref in references:
        source = (ref.kind, ref.name)
        data = sources.get(source)
        if data is not None and data.ignored:
            continue  # an ignored source never triggers a rollout: it is simply not tracked
        if data is None:
            if ref.optional:
                tracked[source] = Tracked(ref.keys, None)
            else:
                missing.append(Missing(ref.kind, ref.name))
            continue
        if ref.keys is None:
            digests = dict(data.digests)
        else:
            digests = {key: data.digests.get(key, ABSENT) for key in ref.keys}
            absent = tuple(sorted(key for key, value in digests.items() if value == ABSENT))
            if absent and not ref.optional:
                missing.append(Missing(ref.kind, ref.name, absent))
        tracked[source] = Tracked(
            ref.keys, combined(digests) if len(digests) > MAX_KEYS_PER_SOURCE else digests
        )
    return Observation(tracked, tuple(missing))


def compare(stored: Baseline | None, observation: Observation, current_key_id: str) -> Comparison:
    """Compare a stored baseline (None: none or unreadable) with the observed data."""
    if stored is None or stored.key_id != current_key_id:
        return Comparison(
            (), Baseline(current_key_id, dict(observation.tracked)), first_sight=True, rewrite=True
        )
    missing_sources = {(m.kind, m.name) for m in observation.missing if not m.keys}
    kept = {source: tracked for source, tracked in stored.sources.items() if source in missing_sources}
    next_sources = {**kept, **observation.tracked}
    changes = []
    for source, now in sorted(observation.tracked.items()):
        before = stored.sources.get(source)
        if before is None or before.keys != now.keys:
            continue  # newly or differently referenced: adopted, the template change rolls the pods
        changed = changed_keys(before.digests, now.digests)
        if changed is not None:
            changes.append(SourceChange(source[0], source[1], changed))
    next_baseline = Baseline(current_key_id, next_sources)
    return Comparison(
        tuple(changes), next_baseline, first_sight=False, rewrite=dict(stored.sources) != next_sources
    )


def changed_keys(before: Digests, now: Digests) -> tuple[str, ...] | None:
    """The keys whose digests differ (None: no change; empty: changed, keys not tracked one by one)."""
    if before == now:
        return None
    if isinstance(before, str) or isinstance(now, str):
        as_one = [
            value if isinstance(value, str) or value is None else combined(value) for value in (before, now)
        ]
        return None if as_one[0] == as_one[1] else ()
    before_map = before or {}
    now_map = now or {}
    # An optional source that appeared or disappeared: every key it has (or had) changed.
    return tuple(
        sorted(key for key in before_map.keys() | now_map.keys() if before_map.get(key) != now_map.get(key))
    )


def config_digest(baseline: Baseline) -> str:
    """One digest of all tracked data: the pod-template annotation whose change is the rollout.

    It is a function of the data only, so reverting a change gives back the earlier digest and an
    identical rollout patch written twice is a no-op.
    """
    return hashlib.sha256(encode(baseline).encode()).hexdigest()[:DIGEST_LENGTH]


def encode(baseline: Baseline) -> str:
    """The baseline as compact, canonical JSON, for the workload's annotation."""
    sources = {
        f"{kind}/{name}": {
            "keys": "*" if tracked.keys is None else sorted(tracked.keys),
            "d": tracked.digests,
        }
        for (kind, name), tracked in sorted(baseline.sources.items())
    }
    return json.dumps(
        {"v": SCHEME, "key": baseline.key_id, "src": sources}, sort_keys=True, separators=(",", ":")
    )


def decode(text: str | None) -> Baseline | None:
    """Read a baseline annotation; None when absent, of another scheme, or not ours to trust."""
    if not text:
        return None
    try:
        raw = json.loads(text)
        if not isinstance(raw, dict) or raw.get("v") != SCHEME or not isinstance(raw.get("key"), str):
            return None
        sources: dict[SourceId, Tracked] = {}
        for ident, entry in raw["src"].items():
            kind, _, name = ident.partition("/")
            keys = entry["keys"]
            digests = entry["d"]
            if not name or not (keys == "*" or _strings(keys)) or not _digests(digests):
                return None
            sources[(kind, name)] = Tracked(None if keys == "*" else frozenset(keys), digests)
        return Baseline(raw["key"], sources)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None  # hand-edited or corrupt: treated like no baseline, i.e. re-baselined, never rolled


def _strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _digests(value: object) -> bool:
    if value is None or isinstance(value, str):
        return True
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    )
