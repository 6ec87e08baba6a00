"""Leases (coordination.k8s.io/v1), for the controller's leader election."""

from __future__ import annotations

import json
from typing import Any

from kubernetes.client.rest import ApiException

from production_policy.kube.client import TIMEOUT, ApiClient


def call_json(api: ApiClient, method: str, path: str, body: Any = None) -> Any:
    """One call with a JSON body and answer, as plain data (none of the client's model classes)."""
    headers = {"Accept": "application/json", "Content-Type": "application/json"}
    response = api.call_api(
        path,
        method,
        header_params=headers,
        body=body,
        auth_settings=["BearerToken"],
        _preload_content=False,
        _request_timeout=TIMEOUT,
    )
    return json.loads(response.data) if response.data else None


class LeaseStore:
    """One Lease of coordination.k8s.io (leader election); a conflict answers False."""

    def __init__(self, api: ApiClient, namespace: str, name: str) -> None:
        self.api = api
        self.collection = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
        self.path = f"{self.collection}/{name}"

    def read(self) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = call_json(self.api, "GET", self.path)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return found

    def create(self, body: dict[str, Any]) -> bool:
        return self._write("POST", self.collection, body)

    def replace(self, body: dict[str, Any]) -> bool:
        # The body carries the resourceVersion read: a write in between is a 409, not overwritten.
        return self._write("PUT", self.path, body)

    def _write(self, method: str, path: str, body: dict[str, Any]) -> bool:
        try:
            call_json(self.api, method, path, body)
        except ApiException as exc:
            if exc.status == 409:
                return False
            raise
        return True
