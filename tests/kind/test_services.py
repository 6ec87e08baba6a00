"""Service traffic through kube-proxy's rules on the node: pod to ClusterIP to pod."""

from __future__ import annotations

import uuid

import pytest

from tests.support.cluster import KindNodes
from tests.support.pods import fetch_until, pod, wait_finished, wait_ready, web_server

pytestmark = pytest.mark.kind


def test_a_clusterip_service_routes_a_second_pod_to_the_server(
    kind_cluster: KindNodes, namespace: str
) -> None:
    # KWOK runs no container and programs no Service: nothing would answer, and there is no log.
    core = kind_cluster.cluster.core
    page = f"page-{uuid.uuid4().hex[:8]}"
    probe = {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1}
    core.create_namespaced_pod(
        namespace, pod("web", kind_cluster.busybox, web_server(page), readinessProbe=probe)
    )
    service = core.create_namespaced_service(
        namespace,
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
        },
    )
    wait_ready(core, namespace, "web")
    # kube-proxy programs the rules a moment after the endpoint turns ready, hence the retries;
    # the name goes through CoreDNS, the ClusterIP straight to kube-proxy's rules.
    fetch = fetch_until(service.spec.cluster_ip, 80, page) + fetch_until("web", 80, page)
    core.create_namespaced_pod(namespace, pod("client", kind_cluster.busybox, fetch, restart_policy="Never"))
    log = wait_finished(core, namespace, "client")
    assert log.count("200 OK") == 2, log
    assert log.count(page) == 2, log
