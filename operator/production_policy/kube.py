"""The one place that builds Kubernetes API clients for the operator's processes."""

from __future__ import annotations

import os
from typing import Any

import kopf
from kubernetes import client, config


def api_client(connections: int | None = None) -> client.ApiClient:
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
