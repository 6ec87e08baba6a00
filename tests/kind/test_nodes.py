"""The kind node itself: a real kubelet, and the kube-system pods it runs."""

from __future__ import annotations

import pytest

from tests.support.cluster import KindNodes
from tests.support.kube import pod_ready
from tests.support.pods import container_id, pod, pod_log, wait_ready

pytestmark = pytest.mark.kind


def test_the_node_is_ready_and_runs_kube_proxy_and_coredns(kind_cluster: KindNodes) -> None:
    # KWOK nodes report whatever node-initialize says and no container runtime at all; here the
    # kubelet of our node image reports itself, and the kube-system pods have real containers.
    core = kind_cluster.cluster.core
    (node,) = core.list_node().items
    assert any(c.type == "Ready" and c.status == "True" for c in node.status.conditions)
    assert node.status.node_info.container_runtime_version.startswith("containerd://")
    binaries = kind_cluster.run.prepared.binaries
    if binaries is not None:
        assert node.status.node_info.kubelet_version == binaries.kubernetes_version
    system = core.list_namespaced_pod("kube-system").items
    for app in ("kube-proxy", "coredns"):
        running = [p for p in system if p.metadata.name.startswith(app) and pod_ready(p)]
        assert running, f"no Ready {app} pod: {[p.metadata.name for p in system]}"
        assert all(container_id(p).startswith("containerd://") for p in running)


def test_a_busybox_pod_runs_and_its_process_writes_the_log(kind_cluster: KindNodes, namespace: str) -> None:
    # On KWOK the pod would be "Running" with no process behind it and no log to read.
    core = kind_cluster.cluster.core
    core.create_namespaced_pod(
        namespace,
        pod("hello", kind_cluster.busybox, "echo hello-from-$(hostname); exec sleep 3600"),
    )
    running = wait_ready(core, namespace, "hello")
    assert running.status.phase == "Running"
    assert container_id(running).startswith("containerd://")
    assert pod_log(core, namespace, "hello").strip() == "hello-from-hello"
