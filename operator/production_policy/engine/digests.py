"""Keyed digests of configuration data, so a workload's annotation can say "changed" without saying what.

Every digest is an HMAC-SHA256 under a per-install key: someone who can read the annotation on a
Deployment but not the Secret cannot test guesses of the secret against it. Digests cover only
the keys a workload references, so a change to an unrelated key of a shared ConfigMap rolls nothing.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence

from production_policy.engine.references import SourceRef


def _mac(hmac_key: bytes, *parts: bytes) -> str:
    # Each part is length-prefixed, so no two different part lists produce the same message.
    message = b"".join(len(part).to_bytes(8, "big") + part for part in parts)
    return hmac.new(hmac_key, message, hashlib.sha256).hexdigest()


def key_digests(hmac_key: bytes, data: Mapping[str, str | bytes]) -> dict[str, str]:
    """Per key, the HMAC-SHA256 (hex) of the key and its value; the value cannot be recovered from it.

    ``data`` is a ConfigMap's ``data`` and ``binaryData`` together, or a Secret's ``data``, with
    values as stored (base64 text for binaryData and Secrets).
    """
    return {
        key: _mac(hmac_key, key.encode(), value if isinstance(value, bytes) else value.encode())
        for key, value in data.items()
    }


def workload_digest(
    hmac_key: bytes,
    refs: Sequence[SourceRef],
    digests_by_source: Mapping[tuple[str, str], Mapping[str, str] | None],
) -> str:
    """One keyed digest of exactly the data ``refs`` reference, independent of their order.

    ``digests_by_source`` maps (kind, name) to the source's :func:`key_digests`, or to None (or
    nothing) when the source does not exist. A missing source and a missing key are part of the
    digest, so creating or deleting one changes it; keys nobody references are not.
    """
    lines = set()
    for ref in refs:
        digests = digests_by_source.get(ref.source)
        source = f"{ref.kind}/{ref.name}"
        lines.add(f"{source} {'present' if digests is not None else 'absent'}")
        keys = (digests or {}).keys() if ref.keys is None else ref.keys
        for key in keys:
            lines.add(f"{source} {key} {(digests or {}).get(key, '-')}")
    return _mac(hmac_key, *(line.encode() for line in sorted(lines)))


def changed_keys(
    old: Mapping[str, str] | None, new: Mapping[str, str] | None, keys: frozenset[str] | None
) -> list[str]:
    """The referenced keys (``keys``; None: every key) whose digests differ in ``old`` and ``new``, sorted.

    A key added or removed counts as changed; None stands for a source that does not exist.
    """
    old, new = old or {}, new or {}
    candidates = set(old) | set(new) if keys is None else keys
    return sorted(key for key in candidates if old.get(key) != new.get(key))
