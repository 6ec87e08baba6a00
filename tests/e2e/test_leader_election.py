"""Two controller replicas on the real control plane: the leader is killed while changes arrive.

Every changed workload must roll exactly once (a watch counts each change of its pod template;
only the controller changes templates here), nothing unchanged may roll, and the standby must
serve its metrics while it waits. The hand-over time is printed (not asserted: timings belong to
bench/).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from devtools.devcluster.controlplane import free_port
from devtools.devcluster.processes import stop_process
from tests.support import metrics
from tests.support.cluster import Cluster
from tests.support.kube import deployment, wait_for

pytestmark = pytest.mark.e2e

LEASE = "production-policy-controller"
BASELINE = "productionpolicy.dev/config-baseline"
CHANGED = 50
UNCHANGED = 10


@dataclass
class Replica:
    name: str
    process: subprocess.Popen[bytes]
    metrics_port: int
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def leading(self) -> float:
        return metrics.scrape(self.metrics_port)["production_policy_leader{}"]


def _start(name: str, env: dict[str, str], tmp: Path) -> Replica:
    port = free_port()
    log_path = tmp / f"{name}.log"
    with log_path.open("ab") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "production_policy",
                "controller",
                f"--metrics-port={port}",
                f"--namespace={env['POD_NAMESPACE']}",
            ],
            env={**env, "POD_NAME": name},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    replica = Replica(name, process, port, log_path)

    def serving() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"{name} exited with {process.returncode}:\n{replica.log()[-3000:]}")
        try:
            replica.leading()
        except OSError:
            return False
        return True

    wait_for(serving, 30, what=f"{name} to serve /metrics")
    return replica


@pytest.fixture
def replicas(
    cluster: Cluster, crd: dict[str, object], operator_identity: Any, tmp_path: Path
) -> Iterator[Any]:
    env = {**os.environ, **operator_identity.env("controller")}
    if env["POD_NAMESPACE"] not in {n.metadata.name for n in cluster.core.list_namespace().items}:
        cluster.core.create_namespace({"metadata": {"name": env["POD_NAMESPACE"]}})
    started: list[Replica] = []

    def start(name: str) -> Replica:
        started.append(_start(name, env, tmp_path))
        return started[-1]

    yield start, env["POD_NAMESPACE"]
    for replica in started:
        if replica.process.poll() is None:
            stop_process(replica.process)


def _holder(cluster: Cluster, namespace: str) -> str | None:
    try:
        lease = client.CoordinationV1Api(cluster.api).read_namespaced_lease(LEASE, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return lease.spec.holder_identity or None


class TemplateChanges:
    """A watch thread counting, per Deployment, the changes of its pod template (its rollouts)."""

    def __init__(self, cluster: Cluster, namespace: str) -> None:
        self.cluster = cluster
        self.namespace = namespace
        listed = cluster.apps.list_namespaced_deployment(namespace)
        self.templates = {d.metadata.name: self._digest(d) for d in listed.items}
        self.rollouts: Counter[str] = Counter()
        self._stopping = threading.Event()
        self._watch = watch.Watch()
        self._thread = threading.Thread(
            target=self._run, args=(listed.metadata.resource_version,), daemon=True
        )
        self._thread.start()

    def _digest(self, workload: Any) -> str:
        template = self.cluster.api.sanitize_for_serialization(workload.spec.template)
        return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()

    def _run(self, version: str) -> None:
        apps = self.cluster.apps
        try:
            for event in self._watch.stream(
                apps.list_namespaced_deployment, self.namespace, resource_version=version, timeout_seconds=600
            ):
                workload = event["object"]
                digest = self._digest(workload)
                if self.templates.get(workload.metadata.name) not in (None, digest):
                    self.rollouts[workload.metadata.name] += 1
                self.templates[workload.metadata.name] = digest
        except Exception:
            if not self._stopping.is_set():  # a watch that broke while counting: the test must not pass
                self.rollouts["<watch failed>"] += 1
                raise

    def stop(self) -> None:
        self._stopping.set()
        self._watch.stop()


def _populate(cluster: Cluster, namespace: str, make_policy: Callable[[str, dict[str, Any]], Any]) -> None:
    make_policy(
        f"rollout-{namespace}",
        {
            "match": {"namespaces": [namespace]},
            "enforcement": "Audit",
            "configRollout": {
                "enabled": True,
                "debounceSeconds": 0,
                "minIntervalSeconds": 0,
                "maxConcurrent": 100,
                "maxRolloutsPerWindow": 1000,
                "windowSeconds": 60,
            },
        },
    )
    for i in range(CHANGED + UNCHANGED):
        cluster.core.create_namespaced_config_map(
            namespace, {"metadata": {"name": f"cm-{i}"}, "data": {"level": "info"}}
        )
        env = [{"name": "LEVEL", "valueFrom": {"configMapKeyRef": {"name": f"cm-{i}", "key": "level"}}}]
        manifest = deployment(
            f"dep-{i}", replicas=0, containers=[{"name": "app", "image": "nginx:1.27", "env": env}]
        )
        cluster.apps.create_namespaced_deployment(namespace, manifest)


def test_killing_the_leader_while_changes_arrive_rolls_every_change_exactly_once(
    cluster: Cluster,
    namespace: str,
    make_policy: Callable[[str, dict[str, Any]], Any],
    replicas: Any,
) -> None:
    start, lease_namespace = replicas
    _populate(cluster, namespace, make_policy)
    first = start("replica-a")
    wait_for(lambda: _holder(cluster, lease_namespace) == "replica-a", 30, what="replica-a to take the Lease")
    second = start("replica-b")
    assert first.leading() == 1
    assert second.leading() == 0  # the standby answers its health check and metrics, and waits

    def baselined() -> bool:
        items = cluster.apps.list_namespaced_deployment(namespace).items
        return len(items) == CHANGED + UNCHANGED and all(
            BASELINE in (d.metadata.annotations or {}) for d in items
        )

    wait_for(baselined, 90, what="the leader to give every workload its baseline")
    changes = TemplateChanges(cluster, namespace)

    killed_at = None
    for i in range(CHANGED):
        cluster.core.patch_namespaced_config_map(f"cm-{i}", namespace, {"data": {"level": f"debug-{i}"}})
        if i == CHANGED // 2:
            first.process.send_signal(signal.SIGKILL)
            killed_at = time.monotonic()
        time.sleep(0.1)
    assert killed_at is not None
    wait_for(lambda: _holder(cluster, lease_namespace) == "replica-b", 60, what="replica-b to take the Lease")
    handed_over = time.monotonic() - killed_at
    assert second.leading() == 1

    changed = {f"dep-{i}" for i in range(CHANGED)}
    try:
        wait_for(lambda: set(changes.rollouts) >= changed, 120, what="every changed workload to roll")
        rolled_at = time.monotonic() - killed_at
        time.sleep(5)  # room for a second, double rollout to show up
    finally:
        changes.stop()
    assert dict(changes.rollouts) == dict.fromkeys(changed, 1)  # each once; nothing unchanged rolled
    print(
        f"\nhand-over: the standby held the Lease {handed_over:.1f}s after the leader was killed; "
        f"all {CHANGED} changed workloads rolled {rolled_at:.1f}s after the kill"
    )
