"""The one place that builds Kubernetes API clients for the operator's processes."""

from __future__ import annotations

import os
from typing import Any

import kopf
from kubernetes import client, config


def api_client() -> client.ApiClient:
    """In a pod, the ServiceAccount; elsewhere $KUBECONFIG or ~/.kube/config."""
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config()
        return client.ApiClient()
    return config.new_client_from_config(os.environ.get("KUBECONFIG"))


def kopf_login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """kopf's login: the ServiceAccount in a pod, otherwise the kubeconfig."""
    return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)
