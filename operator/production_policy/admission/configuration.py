"""The webhook configurations, built in one place for the Helm chart and for local runs.

In a cluster the API server reaches us through a Service; locally, through a URL on 127.0.0.1.
Everything else (which kinds, which operations, which namespaces are never seen, failure
policies, timeouts, reinvocation) is the same and comes from here. What the failure policies mean
for an install: docs/operations.md, "Failure policy".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from production_policy import GROUP, PLURAL, VERSION
from production_policy.engine import kinds
from production_policy.engine.matching import system_namespace_selector

MUTATE_PODS = "/mutate-pods"
VALIDATE_PODS = "/validate-pods"
VALIDATE_WORKLOADS = "/validate-workloads"
VALIDATE_POLICIES = "/validate-policies"

CONFIGURATION_NAME = "production-policy"


WORKLOAD_RULES = kinds.rules_for(kinds.POD_CONTROLLERS)
POD_RULES = kinds.rules_for([kinds.POD])


@dataclass(frozen=True)
class WebhookSettings:
    """What an install decides about its webhooks."""

    operator_namespace: str
    excluded_namespaces: tuple[str, ...] = ()
    validating_failure_policy: str = "Fail"
    mutating_failure_policy: str = "Ignore"
    timeout_seconds: int = 5
    labels: dict[str, str] = field(default_factory=dict)


def url_client_config(base_url: str, ca_bundle_b64: str) -> Any:
    """clientConfig for a webhook server the API server reaches by URL (local runs)."""

    def for_path(path: str) -> dict[str, Any]:
        return {"url": base_url.rstrip("/") + path, "caBundle": ca_bundle_b64}

    return for_path


def service_client_config(namespace: str, service: str, port: int, ca_bundle_b64: str) -> Any:
    """clientConfig for the in-cluster Service in front of the webhook pods."""

    def for_path(path: str) -> dict[str, Any]:
        return {
            "service": {"namespace": namespace, "name": service, "path": path, "port": port},
            "caBundle": ca_bundle_b64,
        }

    return for_path


def namespace_selector(settings: WebhookSettings) -> dict[str, Any]:
    """Never the control plane's namespaces, ours, the excluded ones, or ones labelled ignore=true."""
    return system_namespace_selector(settings.operator_namespace, settings.excluded_namespaces)


def _webhook(
    name: str,
    path: str,
    rules: list[dict[str, Any]],
    client_config: Any,
    failure_policy: str,
    settings: WebhookSettings,
    namespaced: bool = True,
) -> dict[str, Any]:
    webhook: dict[str, Any] = {
        "name": name,
        "clientConfig": client_config(path),
        "rules": rules,
        "failurePolicy": failure_policy,
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
        "timeoutSeconds": settings.timeout_seconds,
        "matchPolicy": "Equivalent",
    }
    if namespaced:
        webhook["namespaceSelector"] = namespace_selector(settings)
    return webhook


def build_configurations(
    settings: WebhookSettings, client_config: Any, engine: str = "webhook"
) -> list[dict[str, Any]]:
    """The MutatingWebhookConfiguration and the ValidatingWebhookConfiguration, as plain dicts.

    ``engine`` (``admission.engine``): with ``both``, the API server's compiled admission policies
    enforce too, so the pod and workload validating webhooks fail open (an outage of ours no longer
    blocks pods); with ``apiserver`` there are no pod or workload webhooks, only the policies'.
    """
    create = ["CREATE"]
    create_update = ["CREATE", "UPDATE"]
    pods = [{**rule, "operations": create} for rule in POD_RULES]
    metadata = {"name": CONFIGURATION_NAME, "labels": dict(settings.labels)}
    mutating_pods = _webhook(
        f"pods.mutate.{GROUP}", MUTATE_PODS, pods, client_config, settings.mutating_failure_policy, settings
    )
    # Another webhook may add a container after us; run again so it gets defaults too.
    mutating_pods["reinvocationPolicy"] = "IfNeeded"
    mutating = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": metadata,
        "webhooks": [mutating_pods] if engine != "apiserver" else [],
    }
    workload_failure = "Ignore" if engine == "both" else settings.validating_failure_policy
    workload_webhooks = [
        _webhook(f"pods.validate.{GROUP}", VALIDATE_PODS, pods, client_config, workload_failure, settings),
        _webhook(
            f"workloads.validate.{GROUP}",
            VALIDATE_WORKLOADS,
            [{**rule, "operations": create_update} for rule in WORKLOAD_RULES],
            client_config,
            workload_failure,
            settings,
        ),
    ]
    validating = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": metadata,
        "webhooks": [
            *(workload_webhooks if engine != "apiserver" else []),
            # Policies are cluster-scoped: a namespaceSelector would not apply to them.
            _webhook(
                f"policies.validate.{GROUP}",
                VALIDATE_POLICIES,
                [
                    {
                        "apiGroups": [GROUP],
                        "apiVersions": [VERSION],
                        "resources": [PLURAL],
                        "operations": create_update,
                    }
                ],
                client_config,
                settings.validating_failure_policy,
                settings,
                namespaced=False,
            ),
        ],
    }
    return [mutating, validating]
