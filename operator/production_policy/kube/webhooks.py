"""Create and delete the webhook configurations (built by ``admission.configuration``).

In a cluster the Helm chart owns them; this is for local runs (``run --dev``, tests) and for the
chart's pre-delete hook (``production-policy uninstall-webhooks``), which removes them before
anything else on ``helm uninstall``: a configuration left pointing at a deleted Service would
refuse every pod create in the cluster.
"""

from __future__ import annotations

import logging
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from production_policy.kube.client import TIMEOUT

log = logging.getLogger(__name__)

KINDS = ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")


_CREATE = {
    "MutatingWebhookConfiguration": "create_mutating_webhook_configuration",
    "ValidatingWebhookConfiguration": "create_validating_webhook_configuration",
}
_DELETE = {
    "MutatingWebhookConfiguration": "delete_mutating_webhook_configuration",
    "ValidatingWebhookConfiguration": "delete_validating_webhook_configuration",
}


def _method(api_client: client.ApiClient, name: str) -> Any:
    return getattr(client.AdmissionregistrationV1Api(api_client), name)


def delete_configuration(api_client: client.ApiClient, kind: str, name: str) -> bool:
    """Delete one configuration; ``False`` if it was already gone."""
    try:
        _method(api_client, _DELETE[kind])(name, _request_timeout=TIMEOUT)
    except ApiException as exc:
        if exc.status != 404:
            raise
        return False
    return True


def register_configurations(api_client: client.ApiClient, configs: list[dict[str, Any]]) -> None:
    """Create the configurations, replacing ones a crashed run may have left."""
    for config in configs:
        kind, name = config["kind"], config["metadata"]["name"]
        create = _method(api_client, _CREATE[kind])
        try:
            create(config, _request_timeout=TIMEOUT)
        except ApiException as exc:
            if exc.status != 409:
                raise
            delete_configuration(api_client, kind, name)
            create(config, _request_timeout=TIMEOUT)
        log.info("registered %s %s", kind, name)


def remove_configurations(api_client: client.ApiClient, name: str) -> list[str]:
    """Delete both configurations called ``name``; returns the kinds that existed."""
    removed = [kind for kind in KINDS if delete_configuration(api_client, kind, name)]
    for kind in KINDS:
        log.info("%s %s: %s", kind, name, "deleted" if kind in removed else "already absent")
    return removed
