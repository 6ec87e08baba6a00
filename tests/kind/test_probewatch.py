"""Injected probes that fail are caught: real kubelets run the probes the installed chart injects.

One release for the module, installed as the README says (devtools/kind/release.py) with shorter
probe-watch thresholds (2 restarts, 45 s unready) so a test waits a minute, not five. Each test has
its own namespace and its own policy matching only it. The last two withdraw a failing default
(``onInjectedFailure: Withdraw``: liveness, then startup) through the admission engines the chart
runs. On KWOK none of this could fail: no probe runs there, nothing restarts, and every pod is Ready.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client

from devtools.kind.release import Release, install
from tests.support.cluster import KindNodes
from tests.support.helm import kubectl, removed_after
from tests.support.kube import deployment, wait_for
from tests.support.pods import web_server

# The first test also pays for the module's install (image build, kind load, helm install --wait:
# 5 minutes on a loaded machine) and, run alone, for the session's cluster: 600 s is not enough.
pytestmark = [pytest.mark.kind, pytest.mark.timeout(1500)]

GROUP, VERSION, PLURAL = "productionpolicy.dev", "v1alpha1", "productionpolicies"
RESTARTS, UNREADY_SECONDS = 2, 45
VALUES = (
    f"controller.probeWatch.restarts={RESTARTS}",
    f"controller.probeWatch.unreadySeconds={UNREADY_SECONDS}",
)
DETECTED = 240  # 2 restarts take ~40 s with the kubelet's back-off; the watch ticks every 15 s
# Quick, but not so quick that a healthy app fails on a loaded machine (a probe times out after 5 s).
QUICK = {"initialDelaySeconds": 1, "periodSeconds": 3, "failureThreshold": 2, "timeoutSeconds": 5}
HEALTHZ = {"httpGet": {"path": "/healthz", "port": "auto"}, **QUICK}
TCP = {"tcpSocket": {"port": "auto"}, **QUICK}


@pytest.fixture(scope="module")
def release(kind_cluster: KindNodes, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Release]:
    installed = install(kind_cluster.run, tmp_path_factory.mktemp("helm"), VALUES)
    with removed_after(installed, kind_cluster.cluster):
        yield installed


def _deployment(name: str, image: str, command: str, **container: Any) -> dict[str, Any]:
    """One replica of busybox running ``command``, declaring port 8080 (so ``auto`` resolves)."""
    app = {
        "name": "app",
        "image": image,
        "imagePullPolicy": "Never",
        "command": ["/bin/sh", "-c", command],
        "ports": [{"containerPort": 8080}],
        **container,
    }
    manifest = deployment(name, containers=[app])
    manifest["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 1
    return manifest


def _users(image: str) -> dict[str, Any]:
    """Serves only /, with the user's own liveness probe on /healthz: it fails as the injected one would."""
    liveness = {**HEALTHZ, "httpGet": {"path": "/healthz", "port": 8080}}
    return _deployment("users", image, web_server("only /"), livenessProbe=liveness)


def _status(kind_cluster: KindNodes, name: str) -> dict[str, Any]:
    policy = client.CustomObjectsApi(kind_cluster.cluster.api).get_cluster_custom_object(
        GROUP, VERSION, PLURAL, name
    )
    status: dict[str, Any] = policy.get("status", {})
    return status


def _wait_status(
    kind_cluster: KindNodes, release: Release, name: str, check: Callable[[dict[str, Any]], bool], what: str
) -> dict[str, Any]:
    last: dict[str, Any] = {}

    def reached() -> dict[str, Any] | None:
        nonlocal last
        last = _status(kind_cluster, name)
        return last if check(last) else None

    try:
        return wait_for(reached, DETECTED, 2, what)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nstatus: {last}\n{release.describe()}") from None


def _failing(workload: str, probe: str) -> Callable[[dict[str, Any]], bool]:
    def check(status: dict[str, Any]) -> bool:
        return any((f["name"], f["probe"]) == (workload, probe) for f in status.get("probeFailures") or [])

    return check


def _events(kind_cluster: KindNodes, namespace: str, reason: str) -> list[Any]:
    return [e for e in kind_cluster.cluster.core.list_namespaced_event(namespace).items if e.reason == reason]


def _restarts(kind_cluster: KindNodes, namespace: str, app: str) -> int:
    pods = kind_cluster.cluster.core.list_namespaced_pod(namespace, label_selector=f"app={app}").items
    return sum(s.restart_count for p in pods for s in (p.status.container_statuses or []))


def _leader_metrics(kind_cluster: KindNodes, release: Release) -> str:
    """/metrics of the controller replica that holds the Lease (the standby watches nothing)."""
    core = kind_cluster.cluster.core
    selector = f"app.kubernetes.io/instance={release.name},app.kubernetes.io/component=controller"
    for pod in core.list_namespaced_pod(release.namespace, label_selector=selector).items:
        response = core.connect_get_namespaced_pod_proxy_with_path(
            f"{pod.metadata.name}:9090", release.namespace, "metrics", _preload_content=False
        )
        text = response.data.decode()
        if "production_policy_leader 1.0" in text.splitlines():
            return str(text)
    raise AssertionError("no controller replica holds the Lease")


def _gauge(text: str, probe: str) -> float:
    prefix = f'production_policy_injected_probe_failures{{probe="{probe}"}} '
    return next(float(line[len(prefix) :]) for line in text.splitlines() if line.startswith(prefix))


def test_an_injected_liveness_default_the_app_does_not_answer_is_caught_and_a_user_probe_never(
    kind_cluster: KindNodes, release: Release, namespace: str, make_policy: Any
) -> None:
    apps = client.AppsV1Api(kind_cluster.cluster.api)
    policy = f"healthz-{namespace}"
    make_policy(policy, {"match": {"namespaces": [namespace]}, "probes": {"liveness": {"default": HEALTHZ}}})
    busybox = kind_cluster.busybox
    # Serves only /: the injected GET /healthz gets 404 and the kubelet restarts it.
    apps.create_namespaced_deployment(namespace, _deployment("web", busybox, web_server("only /")))
    # The same failing probe, written by the user: the webhook leaves it alone, so it is not ours.
    apps.create_namespaced_deployment(namespace, _users(busybox))
    # Healthy under the same policy: it serves /healthz too.
    healthy = "mkdir -p /tmp/www && echo ok > /tmp/www/healthz && " + web_server("ok")
    apps.create_namespaced_deployment(namespace, _deployment("healthy", busybox, healthy))

    status = _wait_status(
        kind_cluster, release, policy, _failing("web", "liveness"), "web's liveness failing"
    )
    assert [(f["kind"], f["name"], f["container"]) for f in status["probeFailures"]] == [
        ("Deployment", "web", "app")
    ]
    (entry,) = status["probeFailures"]
    assert "httpGet /healthz on port 8080" in entry["message"] and "404" in entry["message"]
    assert status["probeFailingWorkloads"] == 1  # not users, not healthy

    (event,) = wait_for(lambda: _events(kind_cluster, namespace, "InjectedProbeFailing"), 60, 1, "the Event")
    assert (event.involved_object.kind, event.involved_object.name, event.type) == (
        "Deployment",
        "web",
        "Warning",
    )
    assert "Liveness probe failed" in event.message and "onInjectedFailure: Withdraw" in event.message
    described = kubectl(release.kubeconfig, "describe", "deployments", "web", "-n", namespace)
    assert "InjectedProbeFailing" in described.stdout, described.stdout + described.stderr
    printed = kubectl(release.kubeconfig, "get", "prodpol", policy)
    header, row = printed.stdout.splitlines()[:2]
    assert row.split()[header.split().index("PROBE-FAILING")] == "1"
    assert _gauge(_leader_metrics(kind_cluster, release), "liveness") >= 1

    # The user's probe failed as often (the kubelet restarted it), and was never reported.
    wait_for(lambda: _restarts(kind_cluster, namespace, "users") >= RESTARTS, 120, 2, "users restarted")
    assert {e.involved_object.name for e in _events(kind_cluster, namespace, "InjectedProbeFailing")} == {
        "web"
    }
    assert [f["name"] for f in _status(kind_cluster, policy)["probeFailures"]] == ["web"]

    # A default the app answers, and a rollout: the new pods pass, and the report clears.
    custom = client.CustomObjectsApi(kind_cluster.cluster.api)
    answered = {**TCP, "httpGet": None}  # a merge patch: null drops the httpGet
    custom.patch_cluster_custom_object(
        GROUP, VERSION, PLURAL, policy, {"spec": {"probes": {"liveness": {"default": answered}}}}
    )
    kubectl(release.kubeconfig, "rollout", "restart", "deployments/web", "-n", namespace)
    status = _wait_status(
        kind_cluster, release, policy, lambda s: s.get("probeFailingWorkloads") == 0, "web recovered"
    )
    assert status["probeFailures"] == []
    wait_for(lambda: _events(kind_cluster, namespace, "InjectedProbeRecovered"), 60, 1, "the recovery Event")


def test_a_slow_starter_killed_by_an_injected_liveness_default_is_caught(
    kind_cluster: KindNodes, release: Release, namespace: str, make_policy: Any
) -> None:
    apps = client.AppsV1Api(kind_cluster.cluster.api)
    policy = f"slow-{namespace}"
    make_policy(policy, {"match": {"namespaces": [namespace]}, "probes": {"liveness": {"default": TCP}}})
    # Listens only after 30 s: the injected tcpSocket liveness kills it after 1 + 2 x 3 s, every time.
    apps.create_namespaced_deployment(
        namespace, _deployment("slow", kind_cluster.busybox, "sleep 30 && " + web_server("late"))
    )
    status = _wait_status(
        kind_cluster, release, policy, _failing("slow", "liveness"), "slow's liveness failing"
    )
    assert [f["name"] for f in status["probeFailures"]] == ["slow"]
    (entry,) = status["probeFailures"]
    assert "tcpSocket on port 8080" in entry["message"] and f"restarted {RESTARTS} times" in entry["message"]


def test_an_injected_readiness_default_on_a_port_nothing_listens_on_is_caught(
    kind_cluster: KindNodes, release: Release, namespace: str, make_policy: Any
) -> None:
    apps = client.AppsV1Api(kind_cluster.cluster.api)
    policy = f"ready-{namespace}"
    make_policy(policy, {"match": {"namespaces": [namespace]}, "probes": {"readiness": {"default": TCP}}})
    # Declares 8080, listens on 9090: running, never ready; readiness never restarts it.
    apps.create_namespaced_deployment(
        namespace, _deployment("deaf", kind_cluster.busybox, web_server("x", 9090))
    )
    status = _wait_status(
        kind_cluster, release, policy, _failing("deaf", "readiness"), "deaf's readiness failing"
    )
    assert [f["name"] for f in status["probeFailures"]] == ["deaf"]
    (entry,) = status["probeFailures"]
    assert (
        f"unready for over {UNREADY_SECONDS}s" in entry["message"]
        and "connection refused" in entry["message"]
    )
    assert _restarts(kind_cluster, namespace, "deaf") == 0


def _pods(kind_cluster: KindNodes, namespace: str, app: str) -> list[Any]:
    pods = kind_cluster.cluster.core.list_namespaced_pod(namespace, label_selector=f"app={app}").items
    return [p for p in pods if p.metadata.deletion_timestamp is None]


def _withdrawn(name: str) -> Callable[[dict[str, Any]], bool]:
    def check(status: dict[str, Any]) -> bool:
        return any(e["workload"]["name"] == name for e in status.get("withdrawnProbes") or [])

    return check


def _rolled_once_without(kind_cluster: KindNodes, namespace: str, name: str, probe: str) -> Any:
    """Wait until the one-replica Deployment ``name`` is rolled for its withdrawn ``probe`` (its
    template says so) and its one new pod is ready, without that injected probe; then watch that
    pod stay unrestarted over 30 s, several times what the withdrawn probe (1 s delay + 2 failures
    x 3 s) took to have it killed. Returns the Deployment as rolled."""
    apps = client.AppsV1Api(kind_cluster.cluster.api)

    def rolled() -> Any:
        deployment = apps.read_namespaced_deployment(name, namespace)
        annotations = deployment.spec.template.metadata.annotations or {}
        done = (deployment.status.updated_replicas or 0) == 1 and (deployment.status.ready_replicas or 0) == 1
        settled = done and len(_pods(kind_cluster, namespace, name)) == 1
        return (
            deployment
            if annotations.get("productionpolicy.dev/withdrawn") == f"app:{probe}" and settled
            else None
        )

    deployment = wait_for(rolled, DETECTED, 2, f"{name} rolled once, its new pod ready")
    (pod,) = _pods(kind_cluster, namespace, name)
    assert f"app:{probe}" not in pod.metadata.annotations.get("productionpolicy.dev/injected", "")
    for _ in range(10):
        (pod,) = _pods(kind_cluster, namespace, name)
        assert [s.restart_count for s in pod.status.container_statuses] == [0]
        time.sleep(3)
    return deployment


def test_withdraw_takes_a_failing_liveness_default_out_of_the_deployment_once_and_back_when_fixed(
    kind_cluster: KindNodes, release: Release, namespace: str, make_policy: Any
) -> None:
    apps = client.AppsV1Api(kind_cluster.cluster.api)
    policy = f"withdraw-{namespace}"
    liveness = {"default": HEALTHZ, "onInjectedFailure": "Withdraw"}
    make_policy(policy, {"match": {"namespaces": [namespace]}, "probes": {"liveness": liveness}})
    busybox = kind_cluster.busybox
    apps.create_namespaced_deployment(namespace, _deployment("web", busybox, web_server("only /")))
    # The same failing probe, written by the user: never reported as ours, so never withdrawn.
    apps.create_namespaced_deployment(namespace, _users(busybox))

    status = _wait_status(kind_cluster, release, policy, _withdrawn("web"), "web's liveness withdrawn")
    (entry,) = status["withdrawnProbes"]
    assert entry["workload"] == {"kind": "Deployment", "namespace": namespace, "name": "web"}
    assert (entry["container"], entry["probe"]) == ("app", "liveness")
    assert "httpGet /healthz on port 8080" in entry["lastFailure"] and "404" in entry["lastFailure"]
    (event,) = wait_for(
        lambda: _events(kind_cluster, namespace, "InjectedProbeWithdrawn"), 60, 1, "the Event"
    )
    assert (event.involved_object.kind, event.involved_object.name) == ("Deployment", "web")
    assert "rolled once" in event.message

    # Rolled once: the new pod runs without that probe, and stops restarting.
    generation = _rolled_once_without(kind_cluster, namespace, "web", "liveness").metadata.generation
    (app,) = _pods(kind_cluster, namespace, "web")[0].spec.containers
    assert app.liveness_probe is None
    assert (
        apps.read_namespaced_deployment("web", namespace).metadata.generation == generation
    )  # no second roll

    # The user's probe failed as often, and was neither reported nor withdrawn.
    assert _restarts(kind_cluster, namespace, "users") >= RESTARTS
    status = _status(kind_cluster, policy)
    assert [e["workload"]["name"] for e in status["withdrawnProbes"]] == ["web"]
    assert "users" not in [f["name"] for f in status.get("probeFailures") or []]
    assert all(
        p.spec.containers[0].liveness_probe is not None for p in _pods(kind_cluster, namespace, "users")
    )

    # A default the app answers: the withdrawal is lifted, and an Event says why.
    custom = client.CustomObjectsApi(kind_cluster.cluster.api)
    answered = {**TCP, "httpGet": None}  # a merge patch: null drops the httpGet
    custom.patch_cluster_custom_object(
        GROUP, VERSION, PLURAL, policy, {"spec": {"probes": {"liveness": {"default": answered}}}}
    )
    _wait_status(
        kind_cluster, release, policy, lambda s: not s.get("withdrawnProbes"), "the withdrawal lifted"
    )
    (restored,) = wait_for(
        lambda: [
            e
            for e in _events(kind_cluster, namespace, "InjectedProbeRestored")
            if e.involved_object.name == "web"
        ],
        60,
        1,
        "the InjectedProbeRestored Event",
    )
    assert "changed its liveness default" in restored.message


def test_withdraw_takes_a_failing_startup_default_out_of_a_slow_starter_once(
    kind_cluster: KindNodes, release: Release, namespace: str, make_policy: Any
) -> None:
    apps = client.AppsV1Api(kind_cluster.cluster.api)
    policy = f"startup-{namespace}"
    startup = {"default": TCP, "onInjectedFailure": "Withdraw"}
    make_policy(policy, {"match": {"namespaces": [namespace]}, "probes": {"startup": startup}})
    # Listens only after 30 s: the injected tcpSocket startup probe gives it 1 + 2 x 3 s, every time.
    apps.create_namespaced_deployment(
        namespace, _deployment("slow", kind_cluster.busybox, "sleep 30 && " + web_server("late"))
    )

    status = _wait_status(kind_cluster, release, policy, _withdrawn("slow"), "slow's startup withdrawn")
    (entry,) = status["withdrawnProbes"]
    assert entry["workload"] == {"kind": "Deployment", "namespace": namespace, "name": "slow"}
    assert (entry["container"], entry["probe"]) == ("app", "startup")
    assert entry["lastFailure"].startswith("injected startup probe (tcpSocket on port 8080, ")
    assert (
        f"restarted {RESTARTS} times" in entry["lastFailure"] or "restarted 3 times" in entry["lastFailure"]
    )
    # The kubelet's word: its last Unhealthy Event ("Startup probe failed: ..."), else its Killing one.
    assert any(word in entry["lastFailure"] for word in ("Startup probe failed", "failed startup probe"))
    (event,) = wait_for(
        lambda: _events(kind_cluster, namespace, "InjectedProbeWithdrawn"), 60, 1, "the Event"
    )
    assert (event.involved_object.kind, event.involved_object.name) == ("Deployment", "slow")
    assert "probes.startup.onInjectedFailure: Withdraw" in event.message and "rolled once" in event.message

    # Rolled once: the new pod starts as slowly as ever, is not killed for it, and stops restarting.
    generation = _rolled_once_without(kind_cluster, namespace, "slow", "startup").metadata.generation
    (pod,) = _pods(kind_cluster, namespace, "slow")
    (app,) = pod.spec.containers
    assert app.startup_probe is None
    assert (
        apps.read_namespaced_deployment("slow", namespace).metadata.generation == generation
    )  # no second roll
    status = _status(kind_cluster, policy)
    assert [(e["workload"]["name"], e["probe"]) for e in status["withdrawnProbes"]] == [("slow", "startup")]
