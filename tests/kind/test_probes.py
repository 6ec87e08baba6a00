"""Probes as the kubelet runs them: readiness decides Ready, liveness restarts the container."""

from __future__ import annotations

import pytest

from tests.support.cluster import KindNodes
from tests.support.kube import pod_ready, wait_for
from tests.support.pods import pod, read_pod, wait_event, wait_ready, web_server

pytestmark = pytest.mark.kind


def _probe(port: int) -> dict[str, object]:
    return {"tcpSocket": {"port": port}, "periodSeconds": 1, "failureThreshold": 1}


def test_a_readiness_probe_on_the_listening_port_makes_the_pod_ready(
    kind_cluster: KindNodes, namespace: str
) -> None:
    # KWOK marks every pod Ready; here Ready comes from the kubelet's HTTP GET to busybox httpd.
    core = kind_cluster.cluster.core
    probe = {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1}
    core.create_namespaced_pod(
        namespace, pod("web", kind_cluster.busybox, web_server("hello"), readinessProbe=probe)
    )
    wait_ready(core, namespace, "web")


def test_a_readiness_probe_on_a_closed_port_keeps_the_pod_unready_with_the_kubelets_event(
    kind_cluster: KindNodes, namespace: str
) -> None:
    # KWOK would call this pod Ready and no kubelet would ever write "Readiness probe failed".
    core = kind_cluster.cluster.core
    core.create_namespaced_pod(
        namespace, pod("closed", kind_cluster.busybox, web_server("hello"), readinessProbe=_probe(9090))
    )

    event = wait_event(core, namespace, "Readiness probe failed", "involvedObject.name=closed")
    assert event.reason == "Unhealthy"
    assert event.source.component == "kubelet"
    current = read_pod(core, namespace, "closed")
    assert current.status.phase == "Running"
    assert not pod_ready(current)


def test_a_failing_liveness_probe_restarts_the_container(kind_cluster: KindNodes, namespace: str) -> None:
    # KWOK never restarts anything: restartCount stays 0 there whatever the probe.
    core = kind_cluster.cluster.core
    core.create_namespaced_pod(
        namespace, pod("dying", kind_cluster.busybox, "exec sleep 3600", livenessProbe=_probe(9090))
    )

    def restarts() -> int:
        statuses = read_pod(core, namespace, "dying").status.container_statuses or []
        return statuses[0].restart_count if statuses else 0

    wait_for(lambda: restarts() >= 2, 180, 1, "restartCount to reach 2")
    events = core.list_namespaced_event(namespace, field_selector="involvedObject.name=dying").items
    assert any("Liveness probe failed" in (e.message or "") for e in events)
