"""The controller's calls to the API server: its HMAC key, workload patches, Events.

Blocking calls of the official client; the controller runs them in a worker thread. Every call
has a timeout, so a slow API server delays rollouts but never wedges the controller.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from production_policy.engine.names import FIELD_MANAGER, REPORTING_CONTROLLER
from production_policy.engine.rollout import Report, WorkloadFacts

log = logging.getLogger(__name__)

TIMEOUT = 10.0
KEY_FIELD = "key"
KEY_BYTES = 32


def load_or_create_key(api: client.ApiClient, namespace: str, name: str) -> bytes:
    """The install's HMAC key from its Secret, creating the Secret with a random key if missing.

    Read first, so a running install never needs to create anything; creating is safe under a
    race with another replica: the loser reads the winner's key.
    """
    core = client.CoreV1Api(api)
    try:
        found = core.read_namespaced_secret(name, namespace, _request_timeout=TIMEOUT)
        return _key_of(found, namespace, name)
    except ApiException as exc:
        if exc.status != 404:
            raise
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
    try:
        core.create_namespaced_secret(
            namespace, secret, field_manager=FIELD_MANAGER, _request_timeout=TIMEOUT
        )
        log.info("created the digest key Secret %s/%s", namespace, name)
    except ApiException as exc:
        if exc.status != 409:
            raise
    return _key_of(core.read_namespaced_secret(name, namespace, _request_timeout=TIMEOUT), namespace, name)


def _key_of(secret: Any, namespace: str, name: str) -> bytes:
    key = base64.b64decode((secret.data or {}).get(KEY_FIELD, ""))
    if len(key) < 16:
        raise RuntimeError(f"Secret {namespace}/{name} has no usable {KEY_FIELD!r} (16 bytes at least)")
    return key


@dataclass(frozen=True)
class Patched:
    """What a successful patch returned."""

    resource_version: str
    generation: int


def describe_error(exc: BaseException) -> str:
    """An error in one line, without the response body: it could quote what was sent or stored."""
    if isinstance(exc, ApiException):
        return f"HTTP {exc.status} {exc.reason}"
    return f"{type(exc).__name__}: {exc}"


class Conflict(Exception):
    """The workload changed (or went away) since the decision: look again at the next event."""


_PATCHERS = {
    "Deployment": "patch_namespaced_deployment",
    "StatefulSet": "patch_namespaced_stateful_set",
    "DaemonSet": "patch_namespaced_daemon_set",
}


def patch_workload(api: client.ApiClient, facts: WorkloadFacts, patch: dict[str, Any]) -> Patched:
    """Apply a merge patch to a workload with our field manager; :class:`Conflict` on 409/404."""
    patcher = getattr(client.AppsV1Api(api), _PATCHERS[facts.kind])
    try:
        result = patcher(
            facts.name,
            facts.namespace,
            patch,
            field_manager=FIELD_MANAGER,
            _content_type="application/merge-patch+json",
            _request_timeout=TIMEOUT,
            _preload_content=False,  # two fields wanted: not worth the client's model of the whole object
        )
    except ApiException as exc:
        if exc.status in (404, 409):
            raise Conflict(str(exc.reason)) from None
        raise
    metadata = json.loads(result.data)["metadata"]
    return Patched(str(metadata["resourceVersion"]), int(metadata.get("generation") or 0))


_ACTIONS = {
    "ConfigRollout": "RollingRestart",
    "ConfigRolloutBlocked": "Hold",
    "ConfigRolloutBreakerOpen": "Hold",
    "ConfigRolloutBreakerClosed": "Resume",
}


def post_event(api: client.ApiClient, facts: WorkloadFacts, report: Report, instance: str) -> None:
    """Post an events.k8s.io/v1 Event about a workload (shown by ``kubectl describe``)."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    event = {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        # Named like the events kubectl shows: <object>.<unique suffix> (generateName must not end in ".").
        "metadata": {"name": f"{facts.name[:200]}.{secrets.token_hex(8)}", "namespace": facts.namespace},
        "eventTime": now,
        "reportingController": REPORTING_CONTROLLER,
        "reportingInstance": instance[:128],
        "action": _ACTIONS.get(report.reason, "Report"),
        "reason": report.reason,
        "note": report.note,
        "type": "Warning" if report.warning else "Normal",
        "regarding": {
            "apiVersion": "apps/v1",
            "kind": facts.kind,
            "namespace": facts.namespace,
            "name": facts.name,
            "uid": facts.uid,
        },
    }
    client.EventsV1Api(api).create_namespaced_event(facts.namespace, event, _request_timeout=TIMEOUT)
