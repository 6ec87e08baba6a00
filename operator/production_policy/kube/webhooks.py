"""Create and delete the webhook configurations (built by ``admission.configuration``).

In a cluster the Helm chart owns them; this is for local runs (``run --dev``, tests) and for the
chart's pre-delete hook (``production-policy uninstall-webhooks``), which removes them before
anything else on ``helm uninstall``: a configuration left pointing at a deleted Service would
refuse every pod create in the cluster.
"""

from __future__ import annotations

import logging
from typing import Any

from production_policy.kube.client import ApiClient, path
from production_policy.kube.errors import ApiError

log = logging.getLogger(__name__)

KINDS = ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")

_COLLECTIONS = {
    "MutatingWebhookConfiguration": path(
        "apis", "admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations"
    ),
    "ValidatingWebhookConfiguration": path(
        "apis", "admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations"
    ),
}


def delete_configuration(api_client: ApiClient, kind: str, name: str) -> bool:
    """Delete one configuration; ``False`` if it was already gone."""
    try:
        api_client.request("DELETE", _COLLECTIONS[kind] + path(name))
    except ApiError as exc:
        if exc.status != 404:
            raise
        return False
    return True


def register_configurations(api_client: ApiClient, configs: list[dict[str, Any]]) -> None:
    """Create the configurations, replacing ones a crashed run may have left."""
    for config in configs:
        kind, name = config["kind"], config["metadata"]["name"]
        try:
            api_client.request("POST", _COLLECTIONS[kind], body=config)
        except ApiError as exc:
            if exc.status != 409:
                raise
            delete_configuration(api_client, kind, name)
            api_client.request("POST", _COLLECTIONS[kind], body=config)
        log.info("registered %s %s", kind, name)


def remove_configurations(api_client: ApiClient, name: str) -> list[str]:
    """Delete both configurations called ``name``; returns the kinds that existed."""
    removed = [kind for kind in KINDS if delete_configuration(api_client, kind, name)]
    for kind in KINDS:
        log.info("%s %s: %s", kind, name, "deleted" if kind in removed else "already absent")
    return removed
