"""Config-change rollouts on the real control plane: kube-controller-manager and KWOK do the rolling.

The controller runs as a process of its own (``production-policy controller``) that tests stop
and start. Every test makes its own namespace and a policy that matches only that namespace.
A canary value is planted in Secrets from the start; at the end of each test its namespace is
searched for it (every object's JSON, Secrets' metadata), and when the module is done with the
controller (its fixture's finalizer, whatever tests ran and in whatever order) the controller's
whole log, every Event and every namespace of the cluster.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from devtools.devcluster.controlplane import free_port
from devtools.devcluster.processes import stop_process
from tests.support import metrics
from tests.support.cluster import Cluster
from tests.support.kube import deployment, pod_ready, replica_sets_of, wait_for

pytestmark = pytest.mark.e2e

BASELINE = "productionpolicy.dev/config-baseline"
TEMPLATE_DIGEST = "productionpolicy.dev/config-digest"
OPT_OUT = "productionpolicy.dev/config-rollout"
IGNORE = "productionpolicy.dev/ignore"
MANAGER = "production-policy-controller"
IGNORED_BY_OPTION = "rollout-e2e-ignored"  # passed to the controller as an ignored namespace

CANARY = f"canary-{uuid.uuid4().hex}"
CANARY_2 = f"canary-{uuid.uuid4().hex}"
CANARIES = [CANARY, CANARY_2, *(base64.b64encode(c.encode()).decode() for c in (CANARY, CANARY_2))]

IMAGE = "nginx:1.27"


# The controller process.


@dataclass
class ControllerProcess:
    """``production-policy controller``, started and stopped by the tests."""

    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    metrics_port: int = 0

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self) -> None:
        offset = len(self.log())
        self.metrics_port = free_port()
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "production_policy",
                    "controller",
                    "--log-level=DEBUG",
                    f"--metrics-port={self.metrics_port}",
                    f"--namespace={self.env['POD_NAMESPACE']}",
                    f"--exclude-namespace={IGNORED_BY_OPTION}",
                ],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

        def started() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(
                    f"the controller exited with {self.process.returncode}:\n{self.log()[-3000:]}"
                )
            return "config rollouts: digest key id" in self.log()[offset:]

        wait_for(started, 30, what="the controller to start")

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
        self.process = None

    def restart(self) -> int:
        """Stop and start; returns the log offset of the new run."""
        self.stop()
        offset = len(self.log())
        self.start()
        return offset

    def wait_log(self, text: str, offset: int = 0, timeout: float = 30) -> None:
        wait_for(lambda: text in self.log()[offset:], timeout, what=f"{text!r} in the controller's log")


@pytest.fixture(scope="module")
def controller(
    cluster: Cluster, crd: dict[str, object], operator_identity: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ControllerProcess]:
    """The controller, with the admin's or the Helm chart's identity (``--operator-identity``).

    When the module is done with it, whatever tests ran: it made no error since its last start and
    holds no policy (each test deletes its own), and no canary value reached its log, an Event or
    any namespace of the cluster.
    """
    env = {**os.environ, **operator_identity.env("controller")}
    existing = {n.metadata.name for n in cluster.core.list_namespace().items}
    if env["POD_NAMESPACE"] not in existing:
        cluster.core.create_namespace({"metadata": {"name": env["POD_NAMESPACE"]}})
    process = ControllerProcess(env, tmp_path_factory.mktemp("controller") / "controller.log")
    process.start()
    try:
        yield process
        assert_no_errors_and_no_policies_left(process)
    finally:
        process.stop()
    assert_no_canary_anywhere(cluster, process.log())


@pytest.fixture
def ns(cluster: Cluster, namespace: str, controller: ControllerProcess) -> Iterator[str]:
    """The test's namespace; afterwards, proof that no canary reached any object or Event in it."""
    yield namespace
    assert_no_canary_in_namespace(cluster, namespace)


# Building blocks.


def rollout_policy(
    make_policy: Callable[[str, dict[str, Any]], Any],
    namespace: str,
    pod_selector: dict[str, str] | None = None,
    **settings: Any,
) -> None:
    rollout = {
        "enabled": True,
        "debounceSeconds": 1,
        "minIntervalSeconds": 0,
        "maxConcurrent": 20,
        "maxRolloutsPerWindow": 100,
        "windowSeconds": 60,
        **settings,
    }
    match: dict[str, Any] = {"namespaces": [namespace]}
    if pod_selector is not None:
        match["podSelector"] = {"matchLabels": pod_selector}
    make_policy(f"rollout-{namespace}", {"match": match, "enforcement": "Audit", "configRollout": rollout})


def config_map(
    cluster: Cluster,
    namespace: str,
    name: str,
    data: dict[str, str],
    annotations: dict[str, str] | None = None,
) -> None:
    cluster.core.create_namespaced_config_map(
        namespace, {"metadata": {"name": name, "annotations": annotations or {}}, "data": data}
    )


# Secrets created with a canary value in this module: the final search asks the controller's log to
# show real work only if there was some.
CANARY_SECRETS: list[str] = []


def secret(cluster: Cluster, namespace: str, name: str, data: dict[str, str]) -> None:
    cluster.core.create_namespaced_secret(namespace, {"metadata": {"name": name}, "stringData": data})
    if any(canary in value for value in data.values() for canary in CANARIES):
        CANARY_SECRETS.append(f"{namespace}/{name}")


def container(**extra: Any) -> dict[str, Any]:
    return {"name": "app", "image": IMAGE, "ports": [{"containerPort": 8080}], **extra}


def env_from_key(kind: str, name: str, key: str) -> dict[str, Any]:
    ref = "configMapKeyRef" if kind == "ConfigMap" else "secretKeyRef"
    return {"env": [{"name": "VALUE", "valueFrom": {ref: {"name": name, "key": key}}}]}


def make_deployment(
    cluster: Cluster,
    namespace: str,
    name: str,
    replicas: int = 1,
    annotations: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    pod_spec: dict[str, Any] | None = None,
    **container_extra: Any,
) -> None:
    manifest = deployment(name, replicas=replicas, containers=[container(**container_extra)])
    manifest["metadata"]["annotations"] = annotations or {}
    manifest["spec"]["template"]["metadata"]["labels"].update(labels or {})
    manifest["spec"]["template"]["spec"].update(pod_spec or {})
    cluster.apps.create_namespaced_deployment(namespace, manifest)


def read(cluster: Cluster, kind: str, namespace: str, name: str) -> Any:
    reader = {
        "Deployment": cluster.apps.read_namespaced_deployment,
        "StatefulSet": cluster.apps.read_namespaced_stateful_set,
        "DaemonSet": cluster.apps.read_namespaced_daemon_set,
    }[kind]
    return reader(name, namespace)


def baseline(cluster: Cluster, namespace: str, name: str, kind: str = "Deployment") -> str | None:
    annotations = read(cluster, kind, namespace, name).metadata.annotations or {}
    return annotations.get(BASELINE)


def wait_baseline(cluster: Cluster, namespace: str, name: str, kind: str = "Deployment") -> dict[str, Any]:
    text = wait_for(lambda: baseline(cluster, namespace, name, kind), 30, what=f"a baseline on {kind} {name}")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def revisions(cluster: Cluster, namespace: str, kind: str, name: str) -> int:
    """How many pod templates the workload has had: ReplicaSets, or ControllerRevisions."""
    if kind == "Deployment":
        return len(replica_sets_of(cluster.apps, namespace, name))
    items = cluster.apps.list_namespaced_controller_revision(namespace).items
    return sum(
        1 for r in items if any(o.name == name and o.kind == kind for o in r.metadata.owner_references or [])
    )


def pods_of(cluster: Cluster, namespace: str, name: str) -> list[Any]:
    pods = cluster.core.list_namespaced_pod(namespace, label_selector=f"app={name}").items
    return [p for p in pods if p.metadata.deletion_timestamp is None]


def rolled_out(cluster: Cluster, namespace: str, kind: str, name: str, expected_revisions: int = 2) -> bool:
    """The workload has ``expected_revisions`` templates, and every pod runs the latest one and is Ready."""
    workload = read(cluster, kind, namespace, name)
    digest = (workload.spec.template.metadata.annotations or {}).get(TEMPLATE_DIGEST)
    pods = cluster.core.list_namespaced_pod(namespace, label_selector=f"app={name}").items
    wanted = workload.spec.replicas if kind != "DaemonSet" else workload.status.desired_number_scheduled
    return (
        digest is not None
        and revisions(cluster, namespace, kind, name) == expected_revisions
        and len(pods) == wanted
        and all(
            pod_ready(p)
            and p.metadata.deletion_timestamp is None
            and (p.metadata.annotations or {}).get(TEMPLATE_DIGEST) == digest
            for p in pods
        )
    )


def wait_rolled(
    cluster: Cluster, namespace: str, name: str, kind: str = "Deployment", revisions_: int = 2
) -> None:
    wait_for(
        lambda: rolled_out(cluster, namespace, kind, name, revisions_),
        60,
        what=f"{kind} {name} rolled to revision {revisions_}, its pods Ready",
    )


def wait_running(cluster: Cluster, namespace: str, kind: str, name: str) -> None:
    """Every pod the workload wants exists and is Ready."""

    def running() -> bool:
        workload = read(cluster, kind, namespace, name)
        wanted = workload.spec.replicas if kind != "DaemonSet" else workload.status.desired_number_scheduled
        pods = pods_of(cluster, namespace, name)
        return bool(wanted) and len(pods) == wanted and all(pod_ready(p) for p in pods)

    wait_for(running, 60, what=f"{kind} {name} running")


def wait_ready(cluster: Cluster, namespace: str, name: str, count: int) -> None:
    wait_for(
        lambda: len([p for p in pods_of(cluster, namespace, name) if pod_ready(p)]) == count,
        60,
        what=f"{count} Ready pod(s) of {name}",
    )


def events(cluster: Cluster, namespace: str, name: str, reason: str | None = None) -> list[Any]:
    found = cluster.core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={name}").items
    return [e for e in found if reason is None or e.reason == reason]


def our_events(cluster: Cluster, namespace: str, name: str) -> list[Any]:
    return [e for e in events(cluster, namespace, name) if (e.reason or "").startswith("ConfigRollout")]


def patch_config_map(cluster: Cluster, namespace: str, name: str, patch: dict[str, Any]) -> None:
    cluster.core.patch_namespaced_config_map(name, namespace, patch)


def managers(obj: Any) -> set[str]:
    return {entry.manager for entry in obj.metadata.managed_fields or []}


def long_lived(cluster: Cluster, namespace: str, count: int) -> None:
    """Deployments ``stay-N``, each on its own ConfigMap ``app-N`` (key LEVEL, "v0"), baselined."""
    for i in range(count):
        config_map(cluster, namespace, f"app-{i}", {"LEVEL": "v0"})
        make_deployment(
            cluster, namespace, f"stay-{i}", replicas=0, **env_from_key("ConfigMap", f"app-{i}", "LEVEL")
        )
    for i in range(count):
        wait_baseline(cluster, namespace, f"stay-{i}")


def still(seconds: float) -> None:
    """Give the controller time to do what it must not do."""
    time.sleep(seconds)


# The canary search.


def _raw(cluster: Cluster, path: str) -> Any:
    response = cluster.api.call_api(path, "GET", _preload_content=False, _request_timeout=30)
    return json.loads(response.data)


NAMESPACED = (
    [("api/v1", r) for r in ("pods", "configmaps", "services", "serviceaccounts", "events")]
    + [
        ("apis/apps/v1", r)
        for r in ("deployments", "replicasets", "statefulsets", "daemonsets", "controllerrevisions")
    ]
    + [("apis/events.k8s.io/v1", "events")]
)


def assert_no_canary_in_namespace(cluster: Cluster, namespace: str) -> None:
    """No canary in any object of the namespace (Secrets: in their metadata), no kopf traces anywhere."""
    texts = {
        f"{group}/{resource}": json.dumps(_raw(cluster, f"/{group}/namespaces/{namespace}/{resource}"))
        for group, resource in NAMESPACED
    }
    secrets = _raw(cluster, f"/api/v1/namespaces/{namespace}/secrets")["items"]
    texts["secrets (metadata)"] = json.dumps([item["metadata"] for item in secrets])
    for what, text in texts.items():
        for canary in CANARIES:
            assert canary not in text, f"a canary value leaked into {what} of {namespace}"
        assert "kopf.zalando.org" not in text, f"kopf left its bookkeeping on {what} of {namespace}"
    for group, resource in NAMESPACED[:-1]:
        for item in _raw(cluster, f"/{group}/namespaces/{namespace}/{resource}")["items"]:
            finalizers = item["metadata"].get("finalizers") or []
            assert not [f for f in finalizers if "kopf" in f or "productionpolicy" in f], (
                resource,
                finalizers,
            )


def assert_no_errors_and_no_policies_left(controller: ControllerProcess) -> None:
    def policies_gone() -> dict[str, float] | None:
        samples = metrics.scrape(controller.metrics_port)
        return samples if samples['production_policy_index_entries{index="policies"}'] == 0 else None

    samples = wait_for(policies_gone, 30, what="the controller to forget the deleted policies")
    assert metrics.total(samples, "production_policy_errors_total", component="rollout") == 0


def assert_no_canary_anywhere(cluster: Cluster, log: str) -> None:
    """No canary in the controller's whole log, in any Event, in any namespace or policy of the cluster."""
    if CANARY_SECRETS:
        assert "rolled: " in log and "baseline recorded" in log, "the log covers real work"
    for canary in CANARIES:
        assert canary not in log, "a canary value leaked into the controller's log"
    all_events = json.dumps(_raw(cluster, "/api/v1/events"))
    for canary in CANARIES:
        assert canary not in all_events, "a canary value leaked into an Event"
    for namespace in cluster.core.list_namespace().items:
        if namespace.status.phase == "Active":
            try:
                assert_no_canary_in_namespace(cluster, namespace.metadata.name)
            except ApiException as exc:
                if exc.status != 404:
                    raise
    policies = json.dumps(
        client.CustomObjectsApi(cluster.api).list_cluster_custom_object(
            "productionpolicy.dev", "v1alpha1", "productionpolicies"
        )
    )
    assert not any(canary in policies for canary in CANARIES)


# The acceptance tests.


def test_a_changed_key_gives_one_new_replicaset_with_ready_pods_and_an_event(
    cluster: Cluster, ns: str, make_policy: Any
) -> None:
    rollout_policy(make_policy, ns)
    config_map(cluster, ns, "app", {"LOG_LEVEL": "info", "unrelated": "1"})
    make_deployment(cluster, ns, "web", replicas=2, **env_from_key("ConfigMap", "app", "LOG_LEVEL"))
    wait_baseline(cluster, ns, "web")
    wait_ready(cluster, ns, "web", 2)
    patch_config_map(cluster, ns, "app", {"data": {"LOG_LEVEL": "debug"}})
    wait_rolled(cluster, ns, "web")
    still(3)
    assert rolled_out(cluster, ns, "Deployment", "web"), "exactly one new ReplicaSet, no second rollout"
    sets = replica_sets_of(cluster.apps, ns, "web")
    assert sorted((rs.status.ready_replicas or 0) for rs in sets) == [0, 2]
    [event] = events(cluster, ns, "web", "ConfigRollout")
    assert event.type == "Normal" and event.involved_object.kind == "Deployment"
    assert "ConfigMap app" in event.message and "LOG_LEVEL" in event.message and "debug" not in event.message
    assert event.reporting_component == "productionpolicy.dev/controller"
    web = read(cluster, "Deployment", ns, "web")
    assert MANAGER in managers(web)
    assert json.loads(web.metadata.annotations[BASELINE])["src"]["ConfigMap/app"]["keys"] == ["LOG_LEVEL"]


def test_an_unreferenced_key_or_a_metadata_change_rolls_nothing(
    cluster: Cluster, ns: str, make_policy: Any
) -> None:
    rollout_policy(make_policy, ns)
    config_map(cluster, ns, "shared", {"used": "1", "unused": "1"})
    make_deployment(cluster, ns, "web", **env_from_key("ConfigMap", "shared", "used"))
    wait_baseline(cluster, ns, "web")
    patch_config_map(cluster, ns, "shared", {"data": {"unused": "2", "added": "3"}})
    patch_config_map(
        cluster, ns, "shared", {"metadata": {"labels": {"team": "x"}, "annotations": {"note": "y"}}}
    )
    still(4)
    assert revisions(cluster, ns, "Deployment", "web") == 1 and our_events(cluster, ns, "web") == []
    # The controller was watching all along: the referenced key still rolls, exactly once.
    patch_config_map(cluster, ns, "shared", {"data": {"used": "2"}})
    wait_rolled(cluster, ns, "web")
    assert len(events(cluster, ns, "web", "ConfigRollout")) == 1


# (name, workload kind, source kind, pod spec fields using the source) — one reference shape each.
SHAPES: list[tuple[str, str, str, dict[str, Any]]] = [
    (
        "env-cm",
        "Deployment",
        "ConfigMap",
        {"containers": [container(**env_from_key("ConfigMap", "settings", "shared"))]},
    ),
    (
        "env-secret",
        "Deployment",
        "Secret",
        {"containers": [container(**env_from_key("Secret", "creds", "password"))]},
    ),
    (
        "envfrom-cm",
        "Deployment",
        "ConfigMap",
        {"containers": [container(envFrom=[{"configMapRef": {"name": "settings"}}])]},
    ),
    (
        "envfrom-secret",
        "Deployment",
        "Secret",
        {"containers": [container(envFrom=[{"secretRef": {"name": "creds"}}])]},
    ),
    (
        "volume-cm",
        "Deployment",
        "ConfigMap",
        {
            "containers": [container(volumeMounts=[{"name": "v", "mountPath": "/etc/app"}])],
            "volumes": [
                {"name": "v", "configMap": {"name": "settings", "items": [{"key": "shared", "path": "s"}]}}
            ],
        },
    ),
    (
        "volume-secret",
        "Deployment",
        "Secret",
        {
            "containers": [container(volumeMounts=[{"name": "v", "mountPath": "/etc/creds"}])],
            "volumes": [{"name": "v", "secret": {"secretName": "creds"}}],
        },
    ),
    (
        "projected",
        "Deployment",
        "Secret",
        {
            "containers": [container(volumeMounts=[{"name": "v", "mountPath": "/etc/all"}])],
            "volumes": [
                {
                    "name": "v",
                    "projected": {
                        "sources": [
                            {"configMap": {"name": "settings", "items": [{"key": "other", "path": "o"}]}},
                            {"secret": {"name": "creds", "items": [{"key": "password", "path": "p"}]}},
                        ]
                    },
                }
            ],
        },
    ),
    (
        "init-cm",
        "Deployment",
        "ConfigMap",
        {
            "initContainers": [
                {"name": "init", "image": "busybox", "envFrom": [{"configMapRef": {"name": "settings"}}]}
            ],
            "containers": [container()],
        },
    ),
    (
        "sts-secret",
        "StatefulSet",
        "Secret",
        {"containers": [container(envFrom=[{"secretRef": {"name": "creds"}}])]},
    ),
    (
        "ds-cm",
        "DaemonSet",
        "ConfigMap",
        {
            "containers": [container(volumeMounts=[{"name": "v", "mountPath": "/etc/app"}])],
            "volumes": [{"name": "v", "configMap": {"name": "settings"}}],
        },
    ),
]


def _workload(kind: str, name: str, pod_spec: dict[str, Any]) -> dict[str, Any]:
    labels = {"app": name}
    spec: dict[str, Any] = {
        "selector": {"matchLabels": labels},
        "template": {"metadata": {"labels": labels}, "spec": pod_spec},
    }
    if kind != "DaemonSet":
        spec["replicas"] = 1
    if kind == "StatefulSet":
        spec["serviceName"] = name
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name}, "spec": spec}


def test_every_reference_shape_and_workload_kind_rolls(cluster: Cluster, ns: str, make_policy: Any) -> None:
    rollout_policy(make_policy, ns)
    config_map(cluster, ns, "settings", {"shared": "a", "other": "b"})
    secret(cluster, ns, "creds", {"password": CANARY, "user": "app"})
    create = {
        "Deployment": cluster.apps.create_namespaced_deployment,
        "StatefulSet": cluster.apps.create_namespaced_stateful_set,
        "DaemonSet": cluster.apps.create_namespaced_daemon_set,
    }
    for name, kind, _, pod_spec in SHAPES:
        create[kind](ns, _workload(kind, name, pod_spec))
    for name, kind, _, _ in SHAPES:
        wait_baseline(cluster, ns, name, kind)
        wait_running(cluster, ns, kind, name)
    # One referenced key of each source changes; the projected volume uses "other" and "password".
    patch_config_map(cluster, ns, "settings", {"data": {"shared": "A", "other": "B"}})
    cluster.core.patch_namespaced_secret("creds", ns, {"stringData": {"password": CANARY_2}})
    for name, kind, source, _ in SHAPES:
        wait_rolled(cluster, ns, name, kind)
        [event] = events(cluster, ns, name, "ConfigRollout")
        expected = "Secret creds" if source == "Secret" else "ConfigMap settings"
        assert expected in event.message, (name, event.message)
    still(2)
    for name, kind, _, _ in SHAPES:
        assert revisions(cluster, ns, kind, name) == 2, f"{kind} {name} rolled more than once"
    assert "password" in events(cluster, ns, "env-secret", "ConfigRollout")[0].message


def test_ten_edits_inside_the_debounce_window_give_one_rollout(
    cluster: Cluster, ns: str, make_policy: Any
) -> None:
    rollout_policy(make_policy, ns, debounceSeconds=3)
    config_map(cluster, ns, "app", {"LOG_LEVEL": "v0"})
    make_deployment(cluster, ns, "web", **env_from_key("ConfigMap", "app", "LOG_LEVEL"))
    wait_baseline(cluster, ns, "web")
    started = time.monotonic()
    for i in range(1, 11):
        patch_config_map(cluster, ns, "app", {"data": {"LOG_LEVEL": f"v{i}"}})
    assert time.monotonic() - started < 3, "the edits must fit in the debounce window"
    wait_rolled(cluster, ns, "web")
    still(5)  # longer than the debounce: a second rollout would have started by now
    assert revisions(cluster, ns, "Deployment", "web") == 2
    assert len(events(cluster, ns, "web", "ConfigRollout")) == 1


def test_a_new_workload_gets_a_baseline_and_no_rollout(cluster: Cluster, ns: str, make_policy: Any) -> None:
    rollout_policy(make_policy, ns)
    config_map(cluster, ns, "app", {"LOG_LEVEL": "info"})
    secret(cluster, ns, "creds", {"password": CANARY})
    make_deployment(
        cluster, ns, "web", envFrom=[{"configMapRef": {"name": "app"}}, {"secretRef": {"name": "creds"}}]
    )
    stored = wait_baseline(cluster, ns, "web")
    assert set(stored["src"]) == {"ConfigMap/app", "Secret/creds"}
    assert set(stored["src"]["Secret/creds"]["d"]) == {"password"}  # key names and digests only
    still(3)
    web = read(cluster, "Deployment", ns, "web")
    assert revisions(cluster, ns, "Deployment", "web") == 1
    assert TEMPLATE_DIGEST not in (web.spec.template.metadata.annotations or {})
    assert our_events(cluster, ns, "web") == []
    # (Deployments count annotation edits as generations; the ReplicaSets are what tell a rollout.)


def test_workloads_created_and_deleted_while_config_maps_change_roll_only_what_changed_under_them(
    cluster: Cluster, ns: str, make_policy: Any
) -> None:
    """Reloader's workload-churn load test (S5), for correctness: each round changes the ConfigMap
    of one long-lived Deployment, creates a Deployment on a ConfigMap changed just before (its
    pods start with the new data: nothing to roll), and deletes one created two rounds before."""
    rounds = 8
    rollout_policy(make_policy, ns, debounceSeconds=0)
    long_lived(cluster, ns, rounds)
    for r in range(rounds):
        patch_config_map(cluster, ns, f"app-{r}", {"data": {"LEVEL": "v1"}})
        make_deployment(cluster, ns, f"new-{r}", replicas=0, **env_from_key("ConfigMap", f"app-{r}", "LEVEL"))
        if r >= 2:
            cluster.apps.delete_namespaced_deployment(f"new-{r - 2}", ns)
    for i in range(rounds):
        wait_rolled(cluster, ns, f"stay-{i}")
    for r in (rounds - 2, rounds - 1):
        wait_baseline(cluster, ns, f"new-{r}")
    still(3)
    for i in range(rounds):
        assert revisions(cluster, ns, "Deployment", f"stay-{i}") == 2, f"stay-{i} rolled more than once"
    for r in (rounds - 2, rounds - 1):
        assert revisions(cluster, ns, "Deployment", f"new-{r}") == 1, (
            f"new-{r} rolled for a change made before it"
        )
        assert our_events(cluster, ns, f"new-{r}") == []
    left = {d.metadata.name for d in cluster.apps.list_namespaced_deployment(ns).items}
    assert left == {f"stay-{i}" for i in range(rounds)} | {f"new-{rounds - 2}", f"new-{rounds - 1}"}


FILLERS = 8
"""ConfigMaps changed at once just before each round's change, none referenced: 8 x 768 KiB."""
FILLER_BYTES = 768 * 1024


def busy_config_map_watch(cluster: Cluster, namespace: str) -> None:
    """Change the filler ConfigMaps at once (each to new data, so each change is one): every
    ConfigMap watch then has megabytes to read before the change that comes next."""

    def change(name: str) -> None:
        filler = base64.b64encode(os.urandom(FILLER_BYTES * 3 // 4)).decode()
        patch_config_map(cluster, namespace, name, {"data": {"filler": filler}})

    with ThreadPoolExecutor(FILLERS) as pool:
        list(pool.map(change, [f"filler-{i}" for i in range(FILLERS)]))


def test_a_workload_created_right_after_its_config_map_changed_never_rolls_for_that_change(
    cluster: Cluster, ns: str, make_policy: Any
) -> None:
    """Twenty rounds of "change a ConfigMap, create a Deployment on it at once", while the
    ConfigMaps' watch is busy with large changes made just before. The newcomer's ADDED event then
    reaches the controller before the change does (two watches, in no order with each other); its
    pods start with the new data, so its baseline must be that data, not the cache's older copy,
    or the change, arriving next, rolls it for nothing. The Deployment that was there before the
    change rolls, once."""
    rounds = 20
    rollout_policy(make_policy, ns, debounceSeconds=0)
    for i in range(FILLERS):
        config_map(cluster, ns, f"filler-{i}", {})
    long_lived(cluster, ns, rounds)
    for r in range(rounds):
        busy_config_map_watch(cluster, ns)
        patch_config_map(cluster, ns, f"app-{r}", {"data": {"LEVEL": "v1"}})
        make_deployment(cluster, ns, f"new-{r}", replicas=0, **env_from_key("ConfigMap", f"app-{r}", "LEVEL"))
    for r in range(rounds):
        wait_rolled(cluster, ns, f"stay-{r}")
        wait_baseline(cluster, ns, f"new-{r}")
    still(3)
    rolled = [f"new-{r}" for r in range(rounds) if revisions(cluster, ns, "Deployment", f"new-{r}") != 1]
    assert rolled == [], "rolled for a change made before they were created"
    assert all(our_events(cluster, ns, f"new-{r}") == [] for r in range(rounds))
    twice = [f"stay-{r}" for r in range(rounds) if revisions(cluster, ns, "Deployment", f"stay-{r}") != 2]
    assert twice == [], "rolled more than once"


def test_changes_while_stopped_roll_once_and_a_restart_without_change_rolls_nothing(
    cluster: Cluster, ns: str, make_policy: Any, controller: ControllerProcess
) -> None:
    rollout_policy(make_policy, ns)
    config_map(cluster, ns, "app", {"LOG_LEVEL": "info"})
    make_deployment(cluster, ns, "web", replicas=2, **env_from_key("ConfigMap", "app", "LOG_LEVEL"))
    wait_baseline(cluster, ns, "web")
    wait_ready(cluster, ns, "web", 2)
    controller.stop()
    try:
        patch_config_map(cluster, ns, "app", {"data": {"LOG_LEVEL": "debug"}})
        still(1)
        assert revisions(cluster, ns, "Deployment", "web") == 1
    finally:
        controller.start()
    wait_rolled(cluster, ns, "web")
    [event] = events(cluster, ns, "web", "ConfigRollout")
    assert "LOG_LEVEL" in event.message
    # Restart with nothing changed: the controller looks at the workload and leaves it alone.
    offset = controller.restart()
    controller.wait_log(f"Deployment {ns}/web: nothing to do", offset)
    still(3)
    assert revisions(cluster, ns, "Deployment", "web") == 2
    assert len(events(cluster, ns, "web", "ConfigRollout")) == 1


def test_opt_outs_are_respected_and_workloads_outside_every_policy_are_never_touched(
    cluster: Cluster, ns: str, make_policy: Any
) -> None:
    rollout_policy(make_policy, ns, pod_selector={"rollouts": "on"})
    on = {"rollouts": "on"}
    for name in ("control", "opted-out", "outside"):
        config_map(cluster, ns, f"{name}-config", {"key": "1"})
    config_map(cluster, ns, "ignored-config", {"key": "1"}, annotations={IGNORE: "true"})
    make_deployment(cluster, ns, "control", labels=on, **env_from_key("ConfigMap", "control-config", "key"))
    make_deployment(
        cluster,
        ns,
        "opted-out",
        labels=on,
        annotations={OPT_OUT: "disabled"},
        **env_from_key("ConfigMap", "opted-out-config", "key"),
    )
    make_deployment(
        cluster, ns, "ignored-source", labels=on, **env_from_key("ConfigMap", "ignored-config", "key")
    )
    make_deployment(cluster, ns, "outside", **env_from_key("ConfigMap", "outside-config", "key"))
    # Namespaces the controller must never touch: labelled, and ignored by its options.
    labelled = f"{ns}-labelled"
    cluster.core.create_namespace({"metadata": {"name": labelled, "labels": {IGNORE: "true"}}})
    cluster.core.create_namespace({"metadata": {"name": IGNORED_BY_OPTION}})
    try:
        for other in (labelled, IGNORED_BY_OPTION):
            rollout_policy(make_policy, other)
            config_map(cluster, other, "app", {"key": "1"})
            make_deployment(cluster, other, "web", **env_from_key("ConfigMap", "app", "key"))
        wait_baseline(cluster, ns, "control")
        assert wait_baseline(cluster, ns, "ignored-source")["src"] == {}, "an ignored source is not tracked"
        for other in (labelled, IGNORED_BY_OPTION):
            wait_ready(cluster, other, "web", 1)
        changes = [
            (ns, "control-config"),
            (ns, "opted-out-config"),
            (ns, "ignored-config"),
            (ns, "outside-config"),
            (labelled, "app"),
            (IGNORED_BY_OPTION, "app"),
        ]
        for namespace, config in changes:
            patch_config_map(cluster, namespace, config, {"data": {"key": "2"}})
        wait_rolled(cluster, ns, "control")
        still(3)
        for namespace, name in (
            (ns, "opted-out"),
            (ns, "outside"),
            (labelled, "web"),
            (IGNORED_BY_OPTION, "web"),
        ):
            workload = read(cluster, "Deployment", namespace, name)
            assert revisions(cluster, namespace, "Deployment", name) == 1, (namespace, name)
            assert BASELINE not in (workload.metadata.annotations or {}), (namespace, name)
            assert MANAGER not in managers(workload), f"{namespace}/{name} was written to"
            assert our_events(cluster, namespace, name) == []
        assert revisions(cluster, ns, "Deployment", "ignored-source") == 1
        assert our_events(cluster, ns, "ignored-source") == []
    finally:
        assert_no_canary_in_namespace(cluster, labelled)
        for other in (labelled, IGNORED_BY_OPTION):
            cluster.core.delete_namespace(other)
        wait_for(
            lambda: IGNORED_BY_OPTION not in {n.metadata.name for n in cluster.core.list_namespace().items},
            60,
            what="the ignored namespace to be gone",
        )


def test_paused_deployments_and_on_delete_strategies_are_reported_not_fought(
    cluster: Cluster, ns: str, make_policy: Any
) -> None:
    rollout_policy(make_policy, ns)
    config_map(cluster, ns, "app", {"key": "1"})
    make_deployment(cluster, ns, "paused", **env_from_key("ConfigMap", "app", "key"))
    sts = _workload(
        "StatefulSet", "ondelete", {"containers": [container(**env_from_key("ConfigMap", "app", "key"))]}
    )
    sts["spec"]["updateStrategy"] = {"type": "OnDelete"}
    cluster.apps.create_namespaced_stateful_set(ns, sts)
    wait_baseline(cluster, ns, "paused")
    wait_baseline(cluster, ns, "ondelete", "StatefulSet")
    cluster.apps.patch_namespaced_deployment("paused", ns, {"spec": {"paused": True}})
    still(1)
    patch_config_map(cluster, ns, "app", {"data": {"key": "2"}})
    for kind, name in (("Deployment", "paused"), ("StatefulSet", "ondelete")):
        [event] = wait_for(
            functools.partial(events, cluster, ns, name, "ConfigRolloutBlocked"),
            30,
            what=f"a ConfigRolloutBlocked Event on {name}",
        )
        assert event.type == "Warning" and "ConfigMap app key key" in event.message
        assert ("paused" if kind == "Deployment" else "OnDelete") in event.message
    still(2)
    assert read(cluster, "Deployment", ns, "paused").spec.paused is True, "not resumed behind the user's back"
    assert revisions(cluster, ns, "Deployment", "paused") == 1
    assert revisions(cluster, ns, "StatefulSet", "ondelete") == 1
    assert len(events(cluster, ns, "paused", "ConfigRolloutBlocked")) == 1, "reported once"
    # Resumed by its owner, the Deployment gets the pending rollout.
    cluster.apps.patch_namespaced_deployment("paused", ns, {"spec": {"paused": False}})
    wait_rolled(cluster, ns, "paused")


def test_a_flapping_source_opens_the_breaker_and_it_closes_when_still(
    cluster: Cluster, ns: str, make_policy: Any, controller: ControllerProcess
) -> None:
    rollout_policy(make_policy, ns, debounceSeconds=0, maxRolloutsPerWindow=2, windowSeconds=10)
    config_map(cluster, ns, "flappy", {"key": "0"})
    make_deployment(cluster, ns, "web", **env_from_key("ConfigMap", "flappy", "key"))
    wait_baseline(cluster, ns, "web")
    before = metrics.scrape(controller.metrics_port)
    for revision in (2, 3):
        patch_config_map(cluster, ns, "flappy", {"data": {"key": str(revision)}})
        wait_rolled(cluster, ns, "web", revisions_=revision)
    patch_config_map(cluster, ns, "flappy", {"data": {"key": "4"}})
    [opened] = wait_for(
        lambda: events(cluster, ns, "web", "ConfigRolloutBreakerOpen"), 30, what="the breaker"
    )
    assert opened.type == "Warning" and "ConfigMap flappy key key" in opened.message
    assert revisions(cluster, ns, "Deployment", "web") == 3
    # Still for a whole window: the latest data is rolled once, and the breaker says it closed.
    wait_rolled(cluster, ns, "web", revisions_=4)
    # The Events of a rollout are posted after its write: the revision can be seen before them.
    wait_for(
        lambda: len(events(cluster, ns, "web", "ConfigRollout")) >= 3, 30, what="the third ConfigRollout"
    )
    assert len(events(cluster, ns, "web", "ConfigRolloutBreakerClosed")) == 1
    assert len(events(cluster, ns, "web", "ConfigRollout")) == 3
    # The same story in the metrics: three rollouts, one trip, the workload and its source indexed.
    after = metrics.scrape(controller.metrics_port)

    def grew(name: str, **labels: str) -> float:
        return metrics.total(after, name, **labels) - metrics.total(before, name, **labels)

    assert grew("production_policy_rollouts_total", reason="config-change") >= 3  # others may end late
    assert grew("production_policy_rollout_breaker_trips_total") == 1
    assert metrics.total(after, "production_policy_index_entries", index="workloads") >= 1
    assert metrics.total(after, "production_policy_index_entries", index="sources") >= 1


def test_the_concurrency_cap_holds_rollouts_until_running_ones_finish(
    cluster: Cluster, ns: str, make_policy: Any
) -> None:
    rollout_policy(make_policy, ns, debounceSeconds=0, maxConcurrent=1)
    # One ConfigMap each, changed in turn: which of two workloads changed at once goes first is
    # not promised (a write that fails, on a conflict say, gives its place to the next in line).
    config_map(cluster, ns, "app-a", {"key": "1"})
    config_map(cluster, ns, "app-b", {"key": "1"})
    # "a-stuck" never gets a Ready pod (no node matches), so its rollout never finishes.
    make_deployment(
        cluster,
        ns,
        "a-stuck",
        pod_spec={"nodeSelector": {"no-such": "node"}},
        **env_from_key("ConfigMap", "app-a", "key"),
    )
    make_deployment(cluster, ns, "b-next", **env_from_key("ConfigMap", "app-b", "key"))
    wait_baseline(cluster, ns, "a-stuck")
    wait_baseline(cluster, ns, "b-next")
    wait_ready(cluster, ns, "b-next", 1)
    patch_config_map(cluster, ns, "app-a", {"data": {"key": "2"}})
    wait_for(lambda: revisions(cluster, ns, "Deployment", "a-stuck") == 2, 30, what="a-stuck to roll")
    patch_config_map(cluster, ns, "app-b", {"data": {"key": "2"}})
    still(4)
    assert revisions(cluster, ns, "Deployment", "b-next") == 1, "the cap of 1 holds the second rollout"
    # The stuck rollout ends (scaled to zero): the queued one goes.
    cluster.apps.patch_namespaced_deployment_scale("a-stuck", ns, {"spec": {"replicas": 0}})
    wait_rolled(cluster, ns, "b-next")
