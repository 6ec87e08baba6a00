"""The writes: workload and policy-status merge patches, the Secret of the digest key, namespaces.

Every write carries our field manager, and every call the package's timeout.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from production_policy import GROUP, PLURAL, VERSION
from production_policy.engine import kinds
from production_policy.engine.names import FIELD_MANAGER
from production_policy.kube.client import ApiClient, path
from production_policy.kube.errors import ApiError, Conflict, Gone
from production_policy.kube.listings import read_source

MERGE_PATCH = "application/merge-patch+json"
AS_US = {"fieldManager": FIELD_MANAGER}


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
    where = path("apis", workload.group, workload.version, "namespaces", namespace, workload.plural, name)
    try:
        result = api.request("PATCH", where, query=AS_US, body=dict(patch), content_type=MERGE_PATCH)
    except ApiError as exc:
        if exc.status in (404, 409):
            raise Conflict(exc.reason) from None
        raise
    metadata = result["metadata"]
    return Patched(str(metadata["resourceVersion"]), int(metadata.get("generation") or 0))


def patch_status(api: ApiClient, name: str, patch: Mapping[str, Any]) -> dict[str, Any]:
    """Merge-patch a policy's status subresource; the object after. :class:`Gone` if it was deleted."""
    where = path("apis", GROUP, VERSION, PLURAL, name, "status")
    try:
        result: dict[str, Any] = api.request(
            "PATCH", where, query=AS_US, body=dict(patch), content_type=MERGE_PATCH
        )
    except ApiError as exc:
        if exc.status == 404:
            raise Gone(name) from None
        raise
    return result


def read_secret_data(api: ApiClient, namespace: str, name: str) -> dict[str, str] | None:
    """A Secret's ``data`` (base64 values, as stored); None if there is no such Secret."""
    secret = read_source(api, "Secret", namespace, name)
    return None if secret is None else dict(secret.get("data") or {})


def create_secret(api: ApiClient, namespace: str, body: Mapping[str, Any]) -> bool:
    """Create a Secret; False if one of that name exists already (409)."""
    try:
        api.request(
            "POST", path("api", "v1", "namespaces", namespace, "secrets"), query=AS_US, body=dict(body)
        )
    except ApiError as exc:
        if exc.status == 409:
            return False
        raise
    return True


def ensure_namespace(api: ApiClient, name: str) -> None:
    """Create a namespace unless it exists."""
    try:
        api.request("POST", path("api", "v1", "namespaces"), body={"metadata": {"name": name}})
    except ApiError as exc:
        if exc.status != 409:
            raise
