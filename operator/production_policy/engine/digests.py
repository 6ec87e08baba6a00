"""Keyed digests of configuration data, so a workload's annotation can say "changed" without saying what.

Every digest is an HMAC-SHA256 under a per-install key: someone who can read the annotation on a
Deployment but not the Secret cannot test guesses of the secret against it. Digests cover only
the keys a workload references, so a change to an unrelated key of a shared ConfigMap rolls nothing.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping


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
