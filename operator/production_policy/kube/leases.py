"""Leases (coordination.k8s.io/v1), for the controller's leader election."""

from __future__ import annotations

from typing import Any

from production_policy.kube.client import ApiClient, path
from production_policy.kube.errors import ApiError


class LeaseStore:
    """One Lease of coordination.k8s.io (leader election); a conflict answers False."""

    def __init__(self, api: ApiClient, namespace: str, name: str) -> None:
        self.api = api
        self.collection = path("apis", "coordination.k8s.io", "v1", "namespaces", namespace, "leases")
        self.path = self.collection + path(name)

    def read(self) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = self.api.request("GET", self.path)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise
        return found

    def create(self, body: dict[str, Any]) -> bool:
        return self._write("POST", self.collection, body)

    def replace(self, body: dict[str, Any]) -> bool:
        # The body carries the resourceVersion read: a write in between is a 409, not overwritten.
        return self._write("PUT", self.path, body)

    def _write(self, method: str, where: str, body: dict[str, Any]) -> bool:
        try:
            self.api.request(method, where, body=body)
        except ApiError as exc:
            if exc.status == 409:
                return False
            raise
        return True
