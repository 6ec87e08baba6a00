"""The audit's calls to the API server: policy status patches and Events.

Blocking calls of the official client, run in a worker thread; every call has a timeout.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from production_policy import GROUP, KIND, PLURAL, VERSION
from production_policy.engine.names import FIELD_MANAGER, REPORTING_CONTROLLER

TIMEOUT = 10.0
CLUSTER_EVENT_NAMESPACE = "default"
"""Events about cluster-scoped objects (our policies) live here, as those about Nodes do."""


def describe_error(exc: BaseException) -> str:
    """An error in one line, without the response body: it could quote what was sent or stored."""
    if isinstance(exc, ApiException):
        return f"HTTP {exc.status} {exc.reason}"
    return f"{type(exc).__name__}: {exc}"


class Gone(Exception):
    """The policy was deleted meanwhile."""


def patch_status(api: client.ApiClient, name: str, patch: Mapping[str, Any]) -> dict[str, Any]:
    """Merge-patch a policy's status subresource with the controller's field manager; the object after."""
    try:
        result: dict[str, Any] = client.CustomObjectsApi(api).patch_cluster_custom_object_status(
            GROUP,
            VERSION,
            PLURAL,
            name,
            dict(patch),
            field_manager=FIELD_MANAGER,
            _content_type="application/merge-patch+json",
            _request_timeout=TIMEOUT,
        )
    except ApiException as exc:
        if exc.status == 404:
            raise Gone(name) from None
        raise
    return result


@dataclass(frozen=True)
class EventSpec:
    """An Event to post: about what, why, and what happened."""

    namespace: str
    regarding: Mapping[str, str]
    reason: str
    note: str
    warning: bool = False
    action: str = "Audit"

    @staticmethod
    def about_policy(name: str, uid: str, reason: str, note: str, warning: bool) -> EventSpec:
        regarding = {"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND, "name": name, "uid": uid}
        return EventSpec(CLUSTER_EVENT_NAMESPACE, regarding, reason, note, warning, action="Validate")


def post_event(api: client.ApiClient, event: EventSpec, instance: str) -> None:
    """Post an events.k8s.io/v1 Event (``kubectl describe`` shows it under the object it regards)."""
    name = event.regarding.get("name", "object")
    body = {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": f"{name[:200]}.{secrets.token_hex(8)}", "namespace": event.namespace},
        "eventTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "reportingController": REPORTING_CONTROLLER,
        "reportingInstance": instance[:128],
        "action": event.action,
        "reason": event.reason,
        "note": event.note,
        "type": "Warning" if event.warning else "Normal",
        "regarding": dict(event.regarding),
    }
    client.EventsV1Api(api).create_namespaced_event(event.namespace, body, _request_timeout=TIMEOUT)
