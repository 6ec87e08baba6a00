"""The probe watch's API side, on the real API server: its watches, its status fields, its column.

No kubelet runs here, so what a kubelet would write is written by the test: the pods are held by
a scheduling gate (no node, no KWOK: nothing else writes their status), their container statuses
are set through the status subresource and the kubelet's Events are created as it would create
them. What this proves is what the API server decides: that it serves the Event watches with
their field selectors, that it accepts the failure in the policy's status, that ``kubectl get
prodpol`` prints the column, and that the Events reach the workload. That a real kubelet's probes
and restarts are caught is for kind (``tests/kind/``), where a kubelet runs them.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from kubernetes import client

from tests.support.cluster import Cluster, DevOperator
from tests.support.helm import kubectl
from tests.support.kube import wait_for

pytestmark = pytest.mark.e2e

GROUP, VERSION, PLURAL = "productionpolicy.dev", "v1alpha1", "productionpolicies"
TIMEOUT = 60
HEALTHZ = {"httpGet": {"path": "/healthz", "port": "auto"}, "periodSeconds": 10}


def _when(seconds_ago: float) -> str:
    moment = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=seconds_ago)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _held_pod(name: str, **container: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "schedulingGates": [{"name": "productionpolicy.dev/test-hold"}],
            "containers": [
                {"name": "app", "image": "nginx:1.27", "ports": [{"containerPort": 8080}], **container}
            ],
        },
    }


def _restarting(cluster: Cluster, namespace: str, pod: Any, restarts: int) -> None:
    """Write what a kubelet writes of a container its liveness probe restarted ``restarts`` times."""
    status = {
        "status": {
            "phase": "Running",
            "startTime": _when(240),
            "containerStatuses": [
                {
                    "name": "app",
                    "image": "nginx:1.27",
                    "imageID": "",
                    "ready": False,
                    "started": False,
                    "restartCount": restarts,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "lastState": {
                        "terminated": {
                            "exitCode": 137,
                            "reason": "Error",
                            "finishedAt": _when(5),
                            "startedAt": _when(40),
                        }
                    },
                }
            ],
        }
    }
    cluster.core.patch_namespaced_pod_status(pod.metadata.name, namespace, status)
    for reason, kind, message in (
        ("Unhealthy", "Warning", "Liveness probe failed: HTTP probe failed with statuscode: 404"),
        ("Killing", "Normal", "Container app failed liveness probe, will be restarted"),
    ):
        cluster.core.create_namespaced_event(
            namespace,
            {
                "metadata": {"generateName": f"{pod.metadata.name}."},
                "involvedObject": {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "name": pod.metadata.name,
                    "namespace": namespace,
                    "uid": pod.metadata.uid,
                    "fieldPath": "spec.containers{app}",
                },
                "reason": reason,
                "message": message,
                "type": kind,
                "count": restarts,
                "firstTimestamp": _when(200),
                "lastTimestamp": _when(6),
                "source": {"component": "kubelet", "host": "node"},
            },
        )


def _policy(cluster: Cluster, name: str) -> dict[str, Any]:
    found: dict[str, Any] = client.CustomObjectsApi(cluster.api).get_cluster_custom_object(
        GROUP, VERSION, PLURAL, name
    )
    return found


def _wait_failing(cluster: Cluster, operator: DevOperator, name: str, count: int) -> dict[str, Any]:
    last: dict[str, Any] = {}

    def reached() -> dict[str, Any] | None:
        nonlocal last
        last = _policy(cluster, name).get("status", {})
        return last if last.get("probeFailingWorkloads") == count else None

    try:
        return wait_for(reached, TIMEOUT, 0.5, f"probeFailingWorkloads {count}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nstatus: {last}\noperator log:\n{operator.log()[-4000:]}") from None


def test_a_restarting_injected_liveness_probe_is_in_the_status_the_column_events_and_metric(
    cluster: Cluster, namespace: str, dev_operator: DevOperator, make_policy: Any
) -> None:
    name = f"live-{namespace}"
    make_policy(name, {"match": {"namespaces": [namespace]}, "probes": {"liveness": {"default": HEALTHZ}}})
    wait_for(lambda: "status" in _policy(cluster, name), TIMEOUT, 0.5, "the policy's first status")
    ours = cluster.core.create_namespaced_pod(namespace, _held_pod("ours"))
    assert ours.metadata.annotations["productionpolicy.dev/injected"] == "app:liveness"
    users = cluster.core.create_namespaced_pod(
        namespace, _held_pod("users", livenessProbe={"tcpSocket": {"port": 8080}})
    )
    assert "productionpolicy.dev/injected" not in (users.metadata.annotations or {})

    _restarting(cluster, namespace, users, 5)  # the user's probe: never reported
    _restarting(cluster, namespace, ours, 3)
    status = _wait_failing(cluster, dev_operator, name, 1)
    (entry,) = status["probeFailures"]
    assert (entry["namespace"], entry["kind"], entry["name"], entry["container"], entry["probe"]) == (
        namespace,
        "Pod",
        "ours",
        "app",
        "liveness",
    )
    assert "httpGet /healthz on port 8080" in entry["message"] and "statuscode: 404" in entry["message"]

    printed = kubectl(cluster.kubeconfig, "get", "prodpol", name)
    header, row = printed.stdout.splitlines()[:2]
    assert row.split()[header.split().index("PROBE-FAILING")] == "1"

    def failing_events() -> list[Any]:
        events = cluster.core.list_namespaced_event(namespace).items
        return [e for e in events if e.reason == "InjectedProbeFailing"]

    (event,) = wait_for(failing_events, TIMEOUT, 0.5, "an InjectedProbeFailing Event about the pod")
    assert (event.involved_object.kind, event.involved_object.name) == ("Pod", "ours")
    assert event.type == "Warning" and "Liveness probe failed" in event.message
    policy_events = [
        e for e in cluster.core.list_namespaced_event("default").items if e.involved_object.name == name
    ]
    assert "InjectedProbeFailing" in {e.reason for e in policy_events}
    assert dev_operator.metrics()['production_policy_injected_probe_failures{probe="liveness"}'] >= 1

    cluster.core.delete_namespaced_pod("ours", namespace, grace_period_seconds=0)
    status = _wait_failing(cluster, dev_operator, name, 0)
    assert status["probeFailures"] == []
    assert "InjectedProbeRecovered" in {e.reason for e in cluster.core.list_namespaced_event(namespace).items}


WITHDRAW = {"default": HEALTHZ, "onInjectedFailure": "Withdraw"}


def test_withdraw_records_the_withdrawal_and_lifts_it_when_the_pod_is_gone(
    cluster: Cluster, namespace: str, dev_operator: DevOperator, make_policy: Any
) -> None:
    name = f"withdraw-{namespace}"
    make_policy(name, {"match": {"namespaces": [namespace]}, "probes": {"liveness": WITHDRAW}})
    wait_for(lambda: "status" in _policy(cluster, name), TIMEOUT, 0.5, "the policy's first status")
    ours = cluster.core.create_namespaced_pod(namespace, _held_pod("ours"))
    _restarting(cluster, namespace, ours, 3)
    _wait_failing(cluster, dev_operator, name, 1)

    def withdrawn() -> list[dict[str, Any]] | None:
        return _policy(cluster, name).get("status", {}).get("withdrawnProbes") or None

    (entry,) = wait_for(withdrawn, TIMEOUT, 0.5, "the withdrawal in the policy's status")
    assert entry["workload"] == {"kind": "Pod", "namespace": namespace, "name": "ours"}
    assert (entry["container"], entry["probe"]) == ("app", "liveness")
    assert "statuscode: 404" in entry["lastFailure"] and len(entry["defaultDigest"]) == 16
    reasons = {e.reason for e in cluster.core.list_namespaced_event(namespace).items}
    assert "InjectedProbeWithdrawn" in reasons
    assert dev_operator.metrics()['production_policy_withdrawn_probes{probe="liveness"}'] >= 1

    cluster.core.delete_namespaced_pod("ours", namespace, grace_period_seconds=0)
    wait_for(lambda: withdrawn() is None, TIMEOUT, 0.5, "the withdrawal lifted once the pod is gone")

    def restored() -> list[Any]:
        events = cluster.core.list_namespaced_event(namespace).items
        return [e for e in events if e.reason == "InjectedProbeRestored"]

    (event,) = wait_for(restored, TIMEOUT, 0.5, "an InjectedProbeRestored Event")
    assert "the workload is gone" in event.message


def test_withdraw_does_not_withdraw_a_probe_a_matching_policy_requires_and_says_why(
    cluster: Cluster, namespace: str, dev_operator: DevOperator, make_policy: Any
) -> None:
    name, strict = f"withdraw-{namespace}", f"strict-{namespace}"
    make_policy(name, {"match": {"namespaces": [namespace]}, "probes": {"liveness": WITHDRAW}})
    make_policy(
        strict,
        {
            "match": {"namespaces": [namespace]},
            "enforcement": "Audit",
            "probes": {"liveness": {"required": True}},
        },
    )
    wait_for(lambda: "status" in _policy(cluster, name), TIMEOUT, 0.5, "the policy's first status")
    ours = cluster.core.create_namespaced_pod(namespace, _held_pod("ours"))
    assert ours.metadata.annotations["productionpolicy.dev/injected"] == "app:liveness"
    _restarting(cluster, namespace, ours, 3)
    status = _wait_failing(cluster, dev_operator, name, 1)
    (entry,) = status["probeFailures"]
    why = f'not withdrawn: policy {strict} requires liveness: write a livenessProbe for container "app"'
    assert why in entry["message"]
    assert not status.get("withdrawnProbes")

    def failing_events() -> list[Any]:
        events = cluster.core.list_namespaced_event(namespace).items
        return [e for e in events if e.reason == "InjectedProbeFailing"]

    (event,) = wait_for(failing_events, TIMEOUT, 0.5, "an InjectedProbeFailing Event about the pod")
    assert why in event.message
    assert not _policy(cluster, name).get("status", {}).get("withdrawnProbes")
    assert "InjectedProbeWithdrawn" not in {
        e.reason for e in cluster.core.list_namespaced_event(namespace).items
    }


def test_withdraw_on_readiness_is_refused_when_the_policy_is_applied(
    cluster: Cluster, make_policy: Any
) -> None:
    with pytest.raises(client.ApiException) as refused:
        make_policy(
            "readiness-withdraw",
            {"probes": {"readiness": {"default": HEALTHZ, "onInjectedFailure": "Withdraw"}}},
        )
    assert refused.value.status == 422
    assert "spec.probes.readiness.onInjectedFailure" in str(refused.value.body)
    assert "a readiness probe is never withdrawn" in str(refused.value.body)
