"""Small helpers for tests that talk to a real API server."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal, TypeVar

from kubernetes import client
from kubernetes.client.rest import ApiException

T = TypeVar("T")


def wait_for(
    condition: Callable[[], T | Literal[False] | None],
    timeout: float = 60.0,
    interval: float = 0.25,
    what: str = "",
) -> T:
    """Poll until ``condition()`` is truthy and return it; fail the test with ``what`` on timeout.

    ``condition`` says "not yet" with any falsy value (``None``, ``False``, an empty list), so
    ``lambda: (r := read()).ready and r`` waits for ``r``.
    """
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    result: T | Literal[False] | None
    while time.monotonic() < deadline:
        try:
            result = condition()
        except ApiException as exc:  # an object not created yet reads as "not yet"
            last_error = exc
            result = None
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(
        f"timed out after {timeout:.0f}s waiting for {what or condition}: {last_error or ''}"
    )


def pod_ready(pod: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or []))


def deployment(
    name: str,
    replicas: int = 1,
    containers: list[dict[str, Any]] | None = None,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A Deployment manifest; the default container has a port and nothing else."""
    labels = labels or {"app": name}
    containers = containers or [{"name": "app", "image": "nginx:1.27", "ports": [{"containerPort": 8080}]}]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": containers}},
        },
    }


def replica_sets_of(apps: client.AppsV1Api, namespace: str, deployment_name: str) -> list[Any]:
    items = apps.list_namespaced_replica_set(namespace).items
    return [
        rs for rs in items if any(o.name == deployment_name for o in (rs.metadata.owner_references or []))
    ]


def ready_pods(core: client.CoreV1Api, namespace: str, selector: str) -> list[Any]:
    pods = core.list_namespaced_pod(namespace, label_selector=selector).items
    return [p for p in pods if p.metadata.deletion_timestamp is None and pod_ready(p)]


def kubectl_table(text: str, header: str) -> list[dict[str, str]]:
    """The rows of the ``kubectl get`` table in ``text`` whose header starts with ``header``
    (``"NAME ENFORCEMENT"``), keyed by column; the table ends at the first empty line. Columns are
    matched by name, so a column added later does not break the reader."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[: len(header.split())] == header.split())
    columns = lines[start].split()
    rows = []
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        rows.append(dict(zip(columns, line.split(), strict=False)))
    return rows
