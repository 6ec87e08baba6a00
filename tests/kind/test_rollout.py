"""A Deployment rollout on a kubelet: new processes, not just new objects."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.cluster import KindNodes
from tests.support.kube import deployment, ready_pods, wait_for
from tests.support.pods import container_id, pod_log, wait_ready_pods

pytestmark = pytest.mark.kind


def test_a_rollout_replaces_the_running_containers(kind_cluster: KindNodes, namespace: str) -> None:
    # On KWOK a rollout swaps Pod objects whose containers never existed: no container IDs, no
    # process, no log. Here the new containers are new processes, and they read the new setting.
    core, apps = kind_cluster.cluster.core, kind_cluster.cluster.apps
    container = {
        "name": "app",
        "image": kind_cluster.busybox,
        "imagePullPolicy": "Never",
        "command": ["/bin/sh", "-c", 'echo "setting=$SETTING"; exec sleep 3600'],
        "env": [{"name": "SETTING", "value": "one"}],
        "readinessProbe": {"exec": {"command": ["/bin/true"]}, "periodSeconds": 1},
    }
    manifest = deployment("roll", replicas=2, containers=[container])
    manifest["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 1
    apps.create_namespaced_deployment(namespace, manifest)
    before = wait_ready_pods(core, namespace, "app=roll", count=2, timeout=120)
    old_ids = {container_id(p) for p in before}
    assert all(i.startswith("containerd://") for i in old_ids) and len(old_ids) == 2

    container["env"] = [{"name": "SETTING", "value": "two"}]
    apps.patch_namespaced_deployment(
        "roll", namespace, {"spec": {"template": {"spec": {"containers": [container]}}}}
    )

    def rolled() -> list[Any] | None:
        pods = core.list_namespaced_pod(namespace, label_selector="app=roll").items
        ready = ready_pods(core, namespace, "app=roll")
        new = [p for p in ready if container_id(p) not in old_ids]
        return new if len(pods) == 2 and len(new) == 2 else None

    after = wait_for(rolled, 180, 0.5, "the rollout to replace both pods")
    new_ids = {container_id(p) for p in after}
    assert new_ids.isdisjoint(old_ids) and all(i.startswith("containerd://") for i in new_ids)
    for p in after:
        name = p.metadata.name
        assert pod_log(core, namespace, name).strip() == "setting=two"
