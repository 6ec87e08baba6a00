"""Events (events.k8s.io/v1): what ``kubectl describe`` shows under the object they regard."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from production_policy import GROUP, KIND, VERSION
from production_policy.engine import kinds
from production_policy.engine.names import REPORTING_CONTROLLER
from production_policy.kube.client import ApiClient, path

CLUSTER_EVENT_NAMESPACE = "default"
"""Events about cluster-scoped objects (our policies) live here, as those about Nodes do."""


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
        """An Event about one of our policies (cluster-scoped)."""
        regarding = {"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND, "name": name, "uid": uid}
        return EventSpec(CLUSTER_EVENT_NAMESPACE, regarding, reason, note, warning, action="Validate")

    @staticmethod
    def about_workload(
        kind: str, namespace: str, name: str, uid: str, reason: str, note: str, warning: bool, action: str
    ) -> EventSpec:
        """An Event about a workload of one of the kinds of ``engine.kinds``."""
        regarding = {
            "apiVersion": kinds.BY_KIND[kind].api_version,
            "kind": kind,
            "namespace": namespace,
            "name": name,
            "uid": uid,
        }
        return EventSpec(namespace, regarding, reason, note, warning, action)


def post_event(api: ApiClient, event: EventSpec, instance: str) -> None:
    """Post an Event as ``reportingInstance`` ``instance`` of our controller."""
    name = event.regarding.get("name", "object")
    body = {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        # Named like the events kubectl shows: <object>.<unique suffix> (generateName must not end in ".").
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
    api.request(
        "POST", path("apis", "events.k8s.io", "v1", "namespaces", event.namespace, "events"), body=body
    )
