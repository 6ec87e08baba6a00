"""Admission with exactly the permissions of the Helm chart's webhook ServiceAccount.

The webhook process runs locally with a bound token of the chart's ServiceAccount (installed with
the chart's RBAC and nothing else), registers its configurations by URL and must inject a probe.
It is apart from test_chart.py because it needs the opposite of that module's release: while the
release is installed, its webhooks point at pods that do not serve and refuse every pod. Here
the ``no_chart_webhooks`` fixture says so, and fails rather than run with them present.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from devtools.devcluster.controlplane import free_port
from production_policy import kube
from production_policy.admission import configuration
from production_policy.kube import webhooks
from tests.support import processes
from tests.support.cluster import Cluster
from tests.support.kube import wait_for
from tests.support.operator_identity import local_webhook, operator_identity

pytestmark = pytest.mark.e2e


@pytest.fixture
def no_chart_webhooks(cluster: Cluster) -> None:
    """No webhook configuration of ours is registered (the test registers its own and removes them)."""
    admission = client.AdmissionregistrationV1Api(cluster.api)
    names = {c.metadata.name for c in admission.list_mutating_webhook_configuration().items} | {
        c.metadata.name for c in admission.list_validating_webhook_configuration().items
    }
    assert configuration.CONFIGURATION_NAME not in names, "a release's or run --dev's webhooks are registered"


INJECTED = "productionpolicy.dev/injected"


def test_admission_works_as_the_chart_webhook_service_account(
    cluster: Cluster,
    crd: dict[str, object],
    namespace: str,
    tmp_path: Path,
    no_chart_webhooks: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The identity comes from the same helper `--operator-identity=chart` uses, with a release
    # name of its own.
    operator_namespace = "pp-chart-identity"
    settings = configuration.WebhookSettings(operator_namespace=operator_namespace)
    custom = client.CustomObjectsApi(cluster.api)
    monkeypatch.setenv("KUBECONFIG", str(cluster.kubeconfig))  # the door logs in as kopf does
    admin = kube.api_client()
    with operator_identity(
        "chart", cluster.kubeconfig, operator_namespace, tmp_path, release="pp-chart-check"
    ) as who:
        port = free_port()
        args, configs = local_webhook(tmp_path, port, settings)
        ca_pem = base64.b64decode(configs[0]["webhooks"][0]["clientConfig"]["caBundle"])
        process = processes.start(
            [*args, f"--metrics-port={free_port()}"],
            who.kubeconfig("webhook"),
            tmp_path / "webhook.log",
            operator_namespace,
        )
        try:
            wait_for(lambda: process.alive() and _ready(port, ca_pem), 60, what="the webhook process")
            webhooks.register_configurations(admin, configs)
            policy: dict[str, Any] = {
                "apiVersion": "productionpolicy.dev/v1alpha1",
                "kind": "ProductionPolicy",
                "metadata": {"name": f"chart-identity-{namespace}"},
                "spec": {
                    "match": {"namespaces": [namespace]},
                    "probes": {"readiness": {"required": True, "default": {"tcpSocket": {"port": "auto"}}}},
                },
            }
            custom.create_cluster_custom_object(
                "productionpolicy.dev", "v1alpha1", "productionpolicies", policy
            )
            try:
                pod = {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"generateName": "web-"},
                    "spec": {
                        "containers": [
                            {"name": "app", "image": "nginx:1.27", "ports": [{"containerPort": 80}]}
                        ]
                    },
                }

                def injected() -> bool:
                    created = cluster.core.create_namespaced_pod(namespace, pod, dry_run="All")
                    return "app:readiness" in (created.metadata.annotations or {}).get(INJECTED, "")

                # The policy reaches the webhook through its watch, made with the ServiceAccount.
                wait_for(injected, 30, what="the webhook to inject a readiness probe")
                process.alive()
                assert not processes.forbidden(process.log()), process.log()[-3000:]
            finally:
                custom.delete_cluster_custom_object(
                    "productionpolicy.dev", "v1alpha1", "productionpolicies", policy["metadata"]["name"]
                )
        finally:
            webhooks.remove_configurations(admin, configuration.CONFIGURATION_NAME)
            process.stop()


def _ready(port: int, ca_pem: bytes) -> bool:
    try:
        return processes.https_status(port, ca_pem, "localhost", "/readyz") == 200
    except OSError:
        return False
