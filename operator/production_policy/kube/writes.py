"""The writes: workload and policy-status merge patches, the Secret of the digest key, namespaces.

Every write carries our field manager, and every call the package's timeout.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from production_policy import GROUP, PLURAL, VERSION
from production_policy.engine import kinds
from production_policy.engine.names import FIELD_MANAGER
from production_policy.kube.client import TIMEOUT, ApiClient
from production_policy.kube.errors import Conflict, Gone

MERGE_PATCH = "application/merge-patch+json"


@dataclass(frozen=True)
class Patched:
    """What a successful workload patch returned."""

    resource_version: str
    generation: int


def patch_workload(api: ApiClient, kind: str, namespace: str, name: str, patch: Mapping[str, Any]) -> Patched:
    """Merge-patch a workload of a rollable kind; :class:`Conflict` if it changed or went away (409, 404).

    The patch carries the ``resourceVersion`` it was decided on, so a changed workload refuses it.
    """
    workload = kinds.BY_KIND[kind]
    if not workload.rollable:
        raise ValueError(f"{kind} is not a kind the controller writes to")
    try:
        # The generic path (/apis/<group>/<version>/namespaces/<namespace>/<plural>/<name>) serves
        # every kind of the table alike; RBAC sees the same resource as with the typed call.
        result = client.CustomObjectsApi(api).patch_namespaced_custom_object(
            workload.group,
            workload.version,
            namespace,
            workload.plural,
            name,
            dict(patch),
            field_manager=FIELD_MANAGER,
            _content_type=MERGE_PATCH,
            _request_timeout=TIMEOUT,
            _preload_content=False,  # two fields wanted: not worth parsing into the client's model
        )
    except ApiException as exc:
        if exc.status in (404, 409):
            raise Conflict(str(exc.reason)) from None
        raise
    metadata = json.loads(result.data)["metadata"]
    return Patched(str(metadata["resourceVersion"]), int(metadata.get("generation") or 0))


def patch_status(api: ApiClient, name: str, patch: Mapping[str, Any]) -> dict[str, Any]:
    """Merge-patch a policy's status subresource; the object after. :class:`Gone` if it was deleted."""
    try:
        result: dict[str, Any] = client.CustomObjectsApi(api).patch_cluster_custom_object_status(
            GROUP,
            VERSION,
            PLURAL,
            name,
            dict(patch),
            field_manager=FIELD_MANAGER,
            _content_type=MERGE_PATCH,
            _request_timeout=TIMEOUT,
        )
    except ApiException as exc:
        if exc.status == 404:
            raise Gone(name) from None
        raise
    return result


def read_secret_data(api: ApiClient, namespace: str, name: str) -> dict[str, str] | None:
    """A Secret's ``data`` (base64 values, as stored); None if there is no such Secret."""
    try:
        secret = client.CoreV1Api(api).read_namespaced_secret(name, namespace, _request_timeout=TIMEOUT)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return dict(secret.data or {})


def create_secret(api: ApiClient, namespace: str, body: Mapping[str, Any]) -> bool:
    """Create a Secret; False if one of that name exists already (409)."""
    try:
        client.CoreV1Api(api).create_namespaced_secret(
            namespace, dict(body), field_manager=FIELD_MANAGER, _request_timeout=TIMEOUT
        )
    except ApiException as exc:
        if exc.status == 409:
            return False
        raise
    return True


def ensure_namespace(api: ApiClient, name: str) -> None:
    """Create a namespace unless it exists."""
    try:
        client.CoreV1Api(api).create_namespace({"metadata": {"name": name}}, _request_timeout=TIMEOUT)
    except ApiException as exc:
        if exc.status != 409:
            raise
