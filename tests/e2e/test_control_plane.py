"""Smoke tests: the local control plane is a real one.

Each test also shows that its result depends on the component it claims to exercise: with the
scheduler stopped a pod stays unscheduled, with kube-controller-manager stopped a Deployment gets
no ReplicaSet, and the webhook test checks the call the API server made.
"""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.support.cluster import Cluster
from tests.support.kube import deployment, ready_pods, replica_sets_of, wait_for
from tests.support.webhook_stub import DENY_LABEL, serve_stub

pytestmark = pytest.mark.e2e


def _local_plane(cluster: Cluster) -> Any:
    if cluster.plane is None:
        pytest.skip("stopping components needs --cluster=local")
    return cluster.plane


def test_deployment_pods_are_scheduled_on_kwok_nodes_and_become_ready(
    cluster: Cluster, namespace: str
) -> None:
    cluster.apps.create_namespaced_deployment(namespace, deployment("web", replicas=2))
    replica_set = wait_for(lambda: replica_sets_of(cluster.apps, namespace, "web"), 60, what="a ReplicaSet")
    assert len(replica_set) == 1
    pods = wait_for(
        lambda: (
            len(ready_pods(cluster.core, namespace, "app=web")) == 2
            and ready_pods(cluster.core, namespace, "app=web")
        ),
        60,
        what="2 Ready pods",
    )
    nodes = {n.metadata.name: n for n in cluster.core.list_node().items}
    for pod in pods:
        assert pod.spec.node_name in nodes, "the scheduler bound the pod to a node"
        assert nodes[pod.spec.node_name].metadata.annotations.get("kwok.x-k8s.io/node") == "fake"
        assert pod.status.phase == "Running" and pod.status.pod_ip, "KWOK ran the pod"


def test_pod_template_change_rolls_the_deployment(cluster: Cluster, namespace: str) -> None:
    cluster.apps.create_namespaced_deployment(namespace, deployment("roll", replicas=2))
    wait_for(lambda: len(ready_pods(cluster.core, namespace, "app=roll")) == 2, 60, what="first pods Ready")
    old_pods = {p.metadata.name for p in ready_pods(cluster.core, namespace, "app=roll")}
    patch = {"spec": {"template": {"metadata": {"annotations": {"smoke/restartedAt": str(time.time())}}}}}
    cluster.apps.patch_namespaced_deployment("roll", namespace, patch)

    def rolled() -> bool:
        sets = replica_sets_of(cluster.apps, namespace, "roll")
        pods = ready_pods(cluster.core, namespace, "app=roll")
        all_pods = cluster.core.list_namespaced_pod(namespace, label_selector="app=roll").items
        return (
            len(sets) == 2
            and len(pods) == 2
            and not ({p.metadata.name for p in pods} & old_pods)
            and len(all_pods) == 2
        )

    wait_for(rolled, 90, what="a new ReplicaSet with new Ready pods and the old pods gone")
    sets = replica_sets_of(cluster.apps, namespace, "roll")
    assert sorted(rs.spec.replicas for rs in sets) == [0, 2]


def test_without_the_scheduler_pods_stay_pending(cluster: Cluster, namespace: str) -> None:
    plane = _local_plane(cluster)
    pod = {"metadata": {"name": "lonely"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    with plane.component_stopped("kube-scheduler"):
        cluster.core.create_namespaced_pod(namespace, pod)
        time.sleep(3)
        assert cluster.core.read_namespaced_pod("lonely", namespace).spec.node_name is None
    wait_for(
        lambda: cluster.core.read_namespaced_pod("lonely", namespace).spec.node_name,
        60,
        what="scheduling once the scheduler is back",
    )


def test_without_the_controller_manager_a_deployment_gets_no_replicaset(
    cluster: Cluster, namespace: str
) -> None:
    plane = _local_plane(cluster)
    with plane.component_stopped("kube-controller-manager"):
        cluster.apps.create_namespaced_deployment(namespace, deployment("idle"))
        time.sleep(3)
        assert replica_sets_of(cluster.apps, namespace, "idle") == []
    wait_for(
        lambda: replica_sets_of(cluster.apps, namespace, "idle"), 60, what="a ReplicaSet once kcm is back"
    )


def test_the_api_server_calls_a_local_tls_webhook(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    admission = client.AdmissionregistrationV1Api(cluster.api)
    name = f"smoke-{namespace}"
    with serve_stub(tmp_path) as stub:
        admission.create_validating_webhook_configuration(
            {
                "metadata": {"name": name},
                "webhooks": [
                    {
                        "name": "smoke.productionpolicy.dev",
                        "clientConfig": {"url": stub.url, "caBundle": base64.b64encode(stub.ca_pem).decode()},
                        "rules": [
                            {
                                "apiGroups": [""],
                                "apiVersions": ["v1"],
                                "operations": ["CREATE"],
                                "resources": ["pods"],
                            }
                        ],
                        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
                        "failurePolicy": "Fail",
                        "sideEffects": "None",
                        "admissionReviewVersions": ["v1"],
                        "timeoutSeconds": 5,
                    }
                ],
            }
        )
        try:
            bad = {
                "metadata": {"name": "bad", "labels": {DENY_LABEL: "yes"}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            }

            def denied() -> str | None:
                try:
                    cluster.core.create_namespaced_pod(namespace, bad, dry_run="All")
                except ApiException as exc:
                    return str(exc.body)
                return None

            body = wait_for(denied, 30, what="the webhook configuration to take effect")
            assert "denied by the smoke-test webhook" in body
            with pytest.raises(ApiException) as refused:
                cluster.core.create_namespaced_pod(namespace, bad)
            assert "denied by the smoke-test webhook" in str(refused.value.body)
            good = {"metadata": {"name": "good"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
            cluster.core.create_namespaced_pod(namespace, good)
            reviewed = {
                (
                    c["request"]["name"] or c["request"]["object"]["metadata"].get("name"),
                    c["request"]["dryRun"],
                )
                for c in stub.calls
            }
            assert ("bad", False) in reviewed and ("good", False) in reviewed
            assert all(c["request"]["namespace"] == namespace for c in stub.calls)
        finally:
            admission.delete_validating_webhook_configuration(name)
