"""The install's HMAC key for the digests, kept in a Secret of the operator's namespace."""

from __future__ import annotations

import base64
import logging
import secrets

from production_policy import kube

log = logging.getLogger(__name__)

KEY_FIELD = "key"
KEY_BYTES = 32


def load_or_create_key(api: kube.ApiClient, namespace: str, name: str) -> bytes:
    """The install's HMAC key from its Secret, creating the Secret with a random key if missing.

    Read first, so a running install never needs to create anything; creating is safe under a
    race with another replica: the loser reads the winner's key.
    """
    data = kube.read_secret_data(api, namespace, name)
    if data is not None:
        return _key_of(data, namespace, name)
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "labels": {
                "app.kubernetes.io/name": "production-policy",
                "app.kubernetes.io/component": "controller",
            },
        },
        "type": "Opaque",
        "data": {KEY_FIELD: base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()},
    }
    if kube.create_secret(api, namespace, secret):
        log.info("created the digest key Secret %s/%s", namespace, name)
    return _key_of(kube.read_secret_data(api, namespace, name) or {}, namespace, name)


def _key_of(data: dict[str, str], namespace: str, name: str) -> bytes:
    key = base64.b64decode(data.get(KEY_FIELD, ""))
    if len(key) < 16:
        raise RuntimeError(f"Secret {namespace}/{name} has no usable {KEY_FIELD!r} (16 bytes at least)")
    return key
