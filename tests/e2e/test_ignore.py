"""The ``productionpolicy.dev/ignore`` opt-out, through the real API server, for every spelling.

One namespace per spelling, all under one policy that defaults, audits and rolls everything in
them (``Audit``: it requires a CPU request it gives no default for, so every workload it matches
is admitted and listed in its status). The API server evaluates the webhooks' namespaceSelector;
``run --dev`` is admission, audit and rollouts at once. Each of the four must leave out exactly the
namespaces ``engine.names.is_ignored`` says are ignored (the unit twin:
``tests/unit/test_ignore_label.py``).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from production_policy.admission.configuration import WebhookSettings, namespace_selector
from production_policy.engine.names import BASELINE_ANNOTATION, IGNORE, INJECTED_ANNOTATION, is_ignored
from tests.support.cluster import EXCLUDED_NAMESPACE, OPERATOR_NAMESPACE, Cluster, DevOperator
from tests.support.kube import deployment, wait_for

pytestmark = pytest.mark.e2e

SPELLINGS = ("true", "True", "TRUE", "tRUE", "false")
RUN = uuid.uuid4().hex[:8]
GROUP_LABEL = "ignore-e2e"
CONTAINER = {"name": "app", "image": "nginx:1.27", "ports": [{"containerPort": 8080}]}


def _name(spelling: str) -> str:
    return f"ignore-{spelling.lower()}-{sum(c.isupper() for c in spelling)}-{RUN}"


NAMESPACES = {spelling: _name(spelling) for spelling in SPELLINGS}
IGNORED = {NAMESPACES[s] for s in SPELLINGS if is_ignored(s)}
ENFORCED = set(NAMESPACES.values()) - IGNORED
LAST = NAMESPACES[SPELLINGS[-1]]
"""Created last and not ignored: once the operator matches a pod in it, it has seen every namespace
(one watch stream, in order), so no workload is judged on a namespace it has not seen yet."""
assert LAST in ENFORCED


def _label_selector(selector: dict[str, Any]) -> str:
    """A namespaceSelector in the query syntax: the API server evaluates both with the same code."""
    terms = [f"{key}={value}" for key, value in selector.get("matchLabels", {}).items()]
    for expression in selector.get("matchExpressions", []):
        operator = {"In": "in", "NotIn": "notin"}[expression["operator"]]
        terms.append(f"{expression['key']} {operator} ({','.join(expression['values'])})")
    return ",".join(terms)


@pytest.fixture(scope="module")
def spelled(cluster: Cluster, dev_operator: DevOperator) -> Iterator[dict[str, Any]]:
    """The namespaces, the policy, and in each namespace a ConfigMap, a Deployment using it and a bare Pod."""
    custom = client.CustomObjectsApi(cluster.api)
    policy: dict[str, Any] = {
        "apiVersion": "productionpolicy.dev/v1alpha1",
        "kind": "ProductionPolicy",
        "metadata": {"name": f"ignore-{RUN}"},
        "spec": {
            "match": {"namespaceSelector": {"matchLabels": {GROUP_LABEL: RUN}}},
            "enforcement": "Audit",
            "probes": {"readiness": {"required": True, "default": {"tcpSocket": {"port": "auto"}}}},
            "resources": {"require": {"requests": ["cpu"]}},
            "configRollout": {"enabled": True, "debounceSeconds": 1, "minIntervalSeconds": 0},
        },
    }
    for spelling, namespace in NAMESPACES.items():
        labels = {GROUP_LABEL: RUN, IGNORE: spelling}
        cluster.core.create_namespace({"metadata": {"name": namespace, "labels": labels}})
    custom.create_cluster_custom_object("productionpolicy.dev", "v1alpha1", "productionpolicies", policy)
    try:
        for namespace in NAMESPACES.values():
            cluster.core.create_namespaced_config_map(
                namespace, {"metadata": {"name": "app"}, "data": {"key": "1"}}
            )
        # The operator learns of the policy and the namespaces through watches: wait until a dry run
        # in the last namespace shows both.
        wait_for(
            lambda: (
                INJECTED_ANNOTATION
                in (_create_pod(cluster, LAST, "probe", dry_run="All").metadata.annotations or {})
            ),
            30,
            what="the policy to be enforced",
        )
        pods = {namespace: _create_pod(cluster, namespace, "bare") for namespace in NAMESPACES.values()}
        for namespace in NAMESPACES.values():
            cluster.apps.create_namespaced_deployment(namespace, _deployment("web", "app"))
        # A ConfigMap annotated " true " (spaces kept: annotations may hold them) in an enforced namespace.
        cluster.core.create_namespaced_config_map(
            LAST,
            {"metadata": {"name": "spaced", "annotations": {IGNORE: " true "}}, "data": {"key": "1"}},
        )
        cluster.apps.create_namespaced_deployment(LAST, _deployment("spaced", "spaced"))
        yield {"policy": policy["metadata"]["name"], "pods": pods}
    finally:
        custom.delete_cluster_custom_object(
            "productionpolicy.dev", "v1alpha1", "productionpolicies", policy["metadata"]["name"]
        )
        for namespace in NAMESPACES.values():
            try:
                cluster.core.delete_namespace(namespace)
            except ApiException as exc:
                if exc.status != 404:
                    raise


def _deployment(name: str, config_map: str) -> dict[str, Any]:
    return deployment(name, containers=[{**CONTAINER, "envFrom": [{"configMapRef": {"name": config_map}}]}])


def _create_pod(cluster: Cluster, namespace: str, name: str, dry_run: str | None = None) -> Any:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {"containers": [CONTAINER]}}
    return cluster.core.create_namespaced_pod(namespace, pod, dry_run=dry_run)


def test_the_api_server_refuses_a_spaced_value_on_a_namespace(cluster: Cluster) -> None:
    # Why the selector need not list " true ": no namespace can carry it (annotations can).
    with pytest.raises(ApiException) as refused:
        cluster.core.create_namespace(
            {"metadata": {"name": f"ignore-spaced-{RUN}", "labels": {IGNORE: " true "}}}, dry_run="All"
        )
    assert refused.value.status == 422


def test_the_webhook_selector_leaves_out_exactly_the_ignored(
    cluster: Cluster, spelled: dict[str, Any]
) -> None:
    settings = WebhookSettings(
        operator_namespace=OPERATOR_NAMESPACE, excluded_namespaces=(EXCLUDED_NAMESPACE,)
    )
    query = f"{GROUP_LABEL}={RUN},{_label_selector(namespace_selector(settings))}"
    selected = {n.metadata.name for n in cluster.core.list_namespace(label_selector=query).items}
    assert selected == ENFORCED


def test_admission_defaults_exactly_the_pods_outside_ignored_namespaces(spelled: dict[str, Any]) -> None:
    injected = {
        namespace
        for namespace, pod in spelled["pods"].items()
        if INJECTED_ANNOTATION in (pod.metadata.annotations or {})
    }
    assert injected == ENFORCED


def test_the_audit_counts_only_the_workloads_outside_ignored_namespaces(
    cluster: Cluster, spelled: dict[str, Any], dev_operator: DevOperator
) -> None:
    custom = client.CustomObjectsApi(cluster.api)
    # A bare Pod gets the probe default but no CPU request, so it breaks the policy like the Deployments.
    expected = (
        {(namespace, "Deployment", "web") for namespace in ENFORCED}
        | {(namespace, "Pod", "bare") for namespace in ENFORCED}
        | {(LAST, "Deployment", "spaced")}
    )

    def listed() -> tuple[int, set[tuple[str, str, str]]]:
        policy = custom.get_cluster_custom_object(
            "productionpolicy.dev", "v1alpha1", "productionpolicies", spelled["policy"]
        )
        status = policy.get("status", {})
        violations = {(v["namespace"], v["kind"], v["name"]) for v in status.get("violations", [])}
        return status.get("matchedWorkloads", 0), violations

    try:
        wait_for(lambda: listed() == (len(expected), expected), 60, what=f"{len(expected)} listed workloads")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {listed()}\n{dev_operator.log()[-3000:]}") from None
    time.sleep(3)  # judgements of the ignored namespaces, if any, would have been written by now
    assert listed() == (len(expected), expected)


def test_rollouts_manage_only_the_workloads_outside_ignored_namespaces(
    cluster: Cluster, spelled: dict[str, Any]
) -> None:
    def baselined() -> set[str]:
        return {
            namespace
            for namespace in NAMESPACES.values()
            if BASELINE_ANNOTATION
            in (cluster.apps.read_namespaced_deployment("web", namespace).metadata.annotations or {})
        }

    wait_for(lambda: baselined() >= ENFORCED, 30, what="baselines outside the ignored namespaces")
    time.sleep(3)
    assert baselined() == ENFORCED
    for namespace in ENFORCED:
        annotations = cluster.apps.read_namespaced_deployment("web", namespace).metadata.annotations
        assert json.loads(annotations[BASELINE_ANNOTATION])["src"], "the ConfigMap is tracked"


def test_a_config_map_annotated_with_spaces_around_true_is_not_tracked(
    cluster: Cluster, spelled: dict[str, Any]
) -> None:
    def baseline() -> Any:
        deployment = cluster.apps.read_namespaced_deployment("spaced", LAST)
        return (deployment.metadata.annotations or {}).get(BASELINE_ANNOTATION)

    assert json.loads(wait_for(baseline, 30, what="the baseline of Deployment spaced"))["src"] == {}
