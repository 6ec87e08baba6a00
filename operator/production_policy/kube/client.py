"""The one place that builds Kubernetes API clients for the operator's processes."""

from __future__ import annotations

import json
import os
from typing import Any, TypeAlias

import kopf
from kubernetes import client, config
from kubernetes.client.rest import ApiException

TIMEOUT = 10.0
"""Seconds for one short call (a read or a write of one object)."""

ApiClient: TypeAlias = client.ApiClient
"""A connection pool to the API server; the first argument of every call of this package."""

TIMEOUT = 10.0
"""Seconds for one short call (a read or a write of one object): a slow API server delays our
work but never wedges it."""


def api_client(connections: int | None = None) -> ApiClient:
    """In a pod, the ServiceAccount; elsewhere $KUBECONFIG or ~/.kube/config.

    ``connections``: how many calls may be in flight at once (the client's default is 5 per core).
    """
    configuration = client.Configuration()
    if connections is not None:
        configuration.connection_pool_maxsize = connections
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config(client_configuration=configuration)
        return client.ApiClient(configuration)
    return config.new_client_from_config(os.environ.get("KUBECONFIG"), client_configuration=configuration)


def kopf_login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """kopf's login: the ServiceAccount in a pod, otherwise the kubeconfig."""
    return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)


def call_json(api: client.ApiClient, method: str, path: str, body: Any = None) -> Any:
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

    def __init__(self, api: client.ApiClient, namespace: str, name: str) -> None:
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
