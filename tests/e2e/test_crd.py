"""The generated CRD on the real API server: accepted, self-documenting, and validating on its own
(no webhook runs in this module: these refusals come from the schema and its CEL rules)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.support.cluster import Cluster
from tests.support.helm import kubectl
from tests.support.kube import wait_for
from tests.support.paths import REPO

pytestmark = pytest.mark.e2e


def _create(cluster: Cluster, name: str, spec: dict[str, Any]) -> None:
    body = {
        "apiVersion": "productionpolicy.dev/v1alpha1",
        "kind": "ProductionPolicy",
        "metadata": {"name": name},
        "spec": spec,
    }
    client.CustomObjectsApi(cluster.api).create_cluster_custom_object(
        "productionpolicy.dev", "v1alpha1", "productionpolicies", body, dry_run="All"
    )


def test_the_crd_is_established_and_kubectl_explain_teaches(cluster: Cluster, crd: dict[str, Any]) -> None:
    # The API server publishes a new CRD's OpenAPI schema a moment after it is Established.
    explained = wait_for(
        lambda: (
            (r := kubectl(cluster.kubeconfig, "explain", "prodpol.spec.probes", check=False)).returncode == 0
            and r
        ),
        60,
        what="kubectl explain to know the CRD",
    )
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    description = schema["properties"]["spec"]["properties"]["probes"]["description"]
    assert description in " ".join(explained.stdout.split())
    assert "readiness" in explained.stdout and "liveness" in explained.stdout


def test_the_served_openapi_schema_carries_the_descriptions(cluster: Cluster, crd: dict[str, Any]) -> None:
    def served() -> Any:
        response = cluster.api.call_api(
            "/openapi/v3/apis/productionpolicy.dev/v1alpha1",
            "GET",
            auth_settings=["BearerToken"],
            _preload_content=False,
        )
        return json.loads(response.data)

    document = wait_for(served, 60, what="the CRD's OpenAPI document")
    schemas = document["components"]["schemas"]
    policy = next(v for k, v in schemas.items() if k.endswith("ProductionPolicy"))
    spec = policy["properties"]["spec"]
    assert spec["description"].startswith("What a ProductionPolicy applies to")
    assert spec["properties"]["enforcement"]["description"].startswith("Enforce:")


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"resources": {"min": {"memory": "1Gi"}, "max": {"memory": "512Mi"}}}, "spec.resources"),
        (
            {"probes": {"readiness": {"default": {"tcpSocket": {"port": 80}, "timeoutSeconds": -1}}}},
            "spec.probes.readiness.default.timeoutSeconds",
        ),
        ({"enforcement": "Sometimes"}, "spec.enforcement"),
        ({"resources": {"defaultRequest": {"cpu": "2"}, "default": {"cpu": "1"}}}, "spec.resources"),
    ],
    ids=["min-above-max", "negative-timeout", "unknown-enforcement", "request-above-limit"],
)
def test_the_api_server_refuses_invalid_policies_naming_the_field(
    cluster: Cluster, crd: dict[str, Any], spec: dict[str, Any], field: str
) -> None:
    with pytest.raises(ApiException) as refused:
        _create(cluster, "invalid", spec)
    assert refused.value.status == 422
    message = json.loads(refused.value.body)["message"]
    assert field in message, message


def test_a_valid_example_policy_is_accepted(cluster: Cluster, crd: dict[str, Any]) -> None:
    import yaml

    for path in sorted((REPO / "examples" / "policies").glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            client.CustomObjectsApi(cluster.api).create_cluster_custom_object(
                "productionpolicy.dev", "v1alpha1", "productionpolicies", document, dry_run="All"
            )
