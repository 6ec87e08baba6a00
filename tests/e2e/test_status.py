"""Policy status and audit, proven on the real API server: the controller of ``run --dev`` watches the
workloads, judges them as admission would, and keeps each policy's status subresource current —
counts, top violations, Ready with its reason — in batched writes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from tests.support.cluster import Cluster, DevOperator
from tests.support.helm import kubectl
from tests.support.kube import deployment, wait_for

pytestmark = pytest.mark.e2e

GROUP, VERSION, PLURAL = "productionpolicy.dev", "v1alpha1", "productionpolicies"
STATUS_TIMEOUT = 60  # "within a few seconds" — but this machine is shared with other e2e sessions

COMPLIANT_APP = {
    "name": "app",
    "image": "nginx:1.27",
    "ports": [{"containerPort": 8080}],
    "readinessProbe": {"tcpSocket": {"port": 8080}},
    "resources": {"requests": {"cpu": "100m"}},
}
BARE_APP = {"name": "app", "image": "nginx:1.27", "ports": [{"containerPort": 8080}]}


def _audit_spec(namespace: str, **changes: Any) -> dict[str, Any]:
    """Readiness probes and CPU requests required, no defaults: a bare container breaks two rules."""
    return {
        "match": {"namespaces": [namespace]},
        "enforcement": "Audit",
        "probes": {"readiness": {"required": True}},
        "resources": {"require": {"requests": ["cpu"]}},
        **changes,
    }


def _cron_job(name: str, container: dict[str, Any]) -> dict[str, Any]:
    """A suspended CronJob: a workload nothing else in the cluster acts on, so it costs no pods."""
    template = {
        "metadata": {"labels": {"job": name}},
        "spec": {"restartPolicy": "Never", "containers": [container]},
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name},
        "spec": {"schedule": "0 0 1 1 *", "suspend": True, "jobTemplate": {"spec": {"template": template}}},
    }


def _policy(cluster: Cluster, name: str) -> dict[str, Any]:
    result: dict[str, Any] = client.CustomObjectsApi(cluster.api).get_cluster_custom_object(
        GROUP, VERSION, PLURAL, name
    )
    return result


def _ready(policy: dict[str, Any]) -> dict[str, Any]:
    conditions = policy.get("status", {}).get("conditions", [])
    return next((c for c in conditions if c.get("type") == "Ready"), {})


def _wait_status(
    cluster: Cluster,
    operator: DevOperator,
    name: str,
    check: Callable[[dict[str, Any]], bool],
    what: str,
    timeout: float = STATUS_TIMEOUT,
) -> dict[str, Any]:
    """Poll the policy until ``check(policy)``; on timeout, fail showing its status and the operator's log."""
    last: dict[str, Any] = {}

    def reached() -> dict[str, Any] | None:
        nonlocal last
        last = _policy(cluster, name)
        return last if check(last) else None

    try:
        return wait_for(reached, timeout, interval=0.5, what=what)
    except AssertionError as exc:
        raise AssertionError(
            f"{exc}\nstatus: {last.get('status')}\noperator log:\n{operator.log()[-4000:]}"
        ) from None


def _counts(matched: int, non_compliant: int) -> Callable[[dict[str, Any]], bool]:
    def check(policy: dict[str, Any]) -> bool:
        status = policy.get("status", {})
        return (status.get("matchedWorkloads"), status.get("nonCompliantWorkloads")) == (
            matched,
            non_compliant,
        )

    return check


def _events_about(cluster: Cluster, namespace: str, kind: str, name: str) -> list[Any]:
    # The core/v1 view of Events: events.k8s.io's client model chokes on other components' old-style Events.
    events = cluster.core.list_namespaced_event(namespace).items
    return [e for e in events if e.involved_object.kind == kind and e.involved_object.name == name]


def test_an_invalid_policy_that_slipped_in_says_why_until_fixed(
    cluster: Cluster, namespace: str, dev_operator: DevOperator, make_policy: Any
) -> None:
    # "a--b" passes the CRD's pattern but not the engine's port-name rule; the validating webhook
    # refuses it, so it is created while that webhook is away — as before the operator's install.
    name = f"broken-{namespace}"
    broken = _audit_spec(
        namespace, probes={"readiness": {"required": True, "default": {"tcpSocket": {"port": "a--b"}}}}
    )
    with _validating_webhook_away(cluster):
        make_policy(name, broken)
    policy = _wait_status(
        cluster,
        dev_operator,
        name,
        lambda p: _ready(p).get("status") == "False",
        "Ready=False on the broken policy",
    )
    ready = _ready(policy)
    assert ready["reason"] == "InvalidSpec"
    assert "spec.probes.readiness.default.tcpSocket.port" in ready["message"] and "a--b" in ready["message"]
    assert policy["status"]["matchedWorkloads"] == 0  # an unusable policy applies to nothing
    assert policy["status"]["observedGeneration"] == policy["metadata"]["generation"]
    wait_for(
        lambda: _events_about(cluster, "default", "ProductionPolicy", name), 30, what="a PolicyInvalid Event"
    )
    assert [e.reason for e in _events_about(cluster, "default", "ProductionPolicy", name)] == [
        "PolicyInvalid"
    ]

    fixed = {"readiness": {"required": True, "default": {"tcpSocket": {"port": "auto"}}}}
    client.CustomObjectsApi(cluster.api).patch_cluster_custom_object(
        GROUP, VERSION, PLURAL, name, {"spec": {"probes": fixed}}
    )
    policy = _wait_status(
        cluster, dev_operator, name, lambda p: _ready(p).get("status") == "True", "Ready=True once fixed"
    )
    assert _ready(policy)["reason"] == "Active"
    assert policy["status"]["observedGeneration"] == policy["metadata"]["generation"] == 2
    wait_for(
        lambda: (
            "PolicyReady" in {e.reason for e in _events_about(cluster, "default", "ProductionPolicy", name)}
        ),
        30,
        what="a PolicyReady Event",
    )


def test_pre_existing_workloads_are_audited_and_kept_current(
    cluster: Cluster, namespace: str, dev_operator: DevOperator, make_policy: Any
) -> None:
    cluster.apps.create_namespaced_deployment(namespace, deployment("good", containers=[COMPLIANT_APP]))
    cluster.apps.create_namespaced_deployment(namespace, deployment("bad-web", containers=[BARE_APP]))
    batch = client.BatchV1Api(cluster.api)
    batch.create_namespaced_cron_job(namespace, _cron_job("bad-cron", BARE_APP))
    # Pods of the Deployments (owned by ReplicaSets) must not count: give them time to exist.
    wait_for(lambda: len(cluster.core.list_namespaced_pod(namespace).items) == 2, 60, what="the pods")

    name = f"audit-{namespace}"
    make_policy(name, _audit_spec(namespace))
    policy = _wait_status(cluster, dev_operator, name, _counts(3, 2), "matched 3, non-compliant 2")
    status = policy["status"]
    assert {(v["namespace"], v["kind"], v["name"]) for v in status["violations"]} == {
        (namespace, "Deployment", "bad-web"),
        (namespace, "CronJob", "bad-cron"),
    }
    for violation in status["violations"]:
        assert 'container "app": no readinessProbe' in violation["message"]
        assert "resources.requests.cpu" in violation["message"]
    assert _ready(policy)["status"] == "True" and _ready(policy)["reason"] == "Active"
    assert status["observedGeneration"] == policy["metadata"]["generation"]

    fixed = {"spec": {"template": {"spec": {"containers": [COMPLIANT_APP]}}}}
    cluster.apps.patch_namespaced_deployment("bad-web", namespace, fixed)
    policy = _wait_status(cluster, dev_operator, name, _counts(3, 1), "non-compliant 1 after the fix")
    assert [v["name"] for v in policy["status"]["violations"]] == ["bad-cron"]

    batch.delete_namespaced_cron_job("bad-cron", namespace)
    policy = _wait_status(
        cluster, dev_operator, name, _counts(2, 0), "matched 2, non-compliant 0 after the delete"
    )
    assert policy["status"]["violations"] == []


def test_a_bare_pod_is_audited_and_the_pods_of_a_workload_are_not(
    cluster: Cluster, namespace: str, dev_operator: DevOperator, make_policy: Any
) -> None:
    # A bare Pod is a workload of its own; a ReplicaSet's pods were judged through their Deployment.
    cluster.apps.create_namespaced_deployment(namespace, deployment("web", containers=[BARE_APP]))
    bare = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "bare"},
        "spec": {"containers": [BARE_APP]},
    }
    cluster.core.create_namespaced_pod(namespace, bare)
    wait_for(lambda: len(cluster.core.list_namespaced_pod(namespace).items) == 2, 60, what="the pods")

    name = f"bare-{namespace}"
    make_policy(name, _audit_spec(namespace))
    policy = _wait_status(cluster, dev_operator, name, _counts(2, 2), "matched 2, non-compliant 2")
    assert {(v["namespace"], v["kind"], v["name"]) for v in policy["status"]["violations"]} == {
        (namespace, "Deployment", "web"),
        (namespace, "Pod", "bare"),
    }

    cluster.core.delete_namespaced_pod("bare", namespace, grace_period_seconds=0)
    policy = _wait_status(cluster, dev_operator, name, _counts(1, 1), "matched 1 after the Pod is gone")
    assert [v["kind"] for v in policy["status"]["violations"]] == ["Deployment"]


def test_a_burst_of_workload_changes_costs_a_bounded_number_of_status_writes(
    cluster: Cluster,
    namespace: str,
    dev_operator: DevOperator,
    make_policy: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    name = f"burst-{namespace}"
    make_policy(name, _audit_spec(namespace))
    policy = _wait_status(cluster, dev_operator, name, _counts(0, 0), "the first status")
    batch = client.BatchV1Api(cluster.api)
    fixed = {"spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [COMPLIANT_APP]}}}}}}
    with _status_writes(cluster, name, policy["metadata"]["resourceVersion"]) as writes:
        started = time.monotonic()
        for index in range(100):  # 100 creations of non-compliant workloads...
            batch.create_namespaced_cron_job(namespace, _cron_job(f"job-{index:03d}", BARE_APP))
        for index in range(100):  # ...and 100 fixes: 200 changes, each one changing the tally
            batch.patch_namespaced_cron_job(f"job-{index:03d}", namespace, fixed)
        burst = time.monotonic() - started
        _wait_status(
            cluster, dev_operator, name, _counts(100, 0), "matched 100, non-compliant 0", timeout=120
        )
        time.sleep(3)  # a write still coming would be counted too
    with capsys.disabled():
        print(f"\n[status writes] 200 workload changes in {burst:.1f}s -> {len(writes)} status writes")
    # Unbatched, that would be up to 200 writes; batched, about one per 5 s of burst, plus the last.
    assert 1 <= len(writes) <= max(10, int(burst / 5) + 5), writes


def test_kubectl_shows_enforcement_counts_and_age_and_injected_defaults_are_reported(
    cluster: Cluster, namespace: str, dev_operator: DevOperator, make_policy: Any
) -> None:
    name = f"shown-{namespace}"
    defaults = {"readiness": {"required": True, "default": {"tcpSocket": {"port": "auto"}}}}
    make_policy(name, _audit_spec(namespace, enforcement="Warn", probes=defaults))
    _wait_status(cluster, dev_operator, name, _counts(0, 0), "the first status")
    cluster.apps.create_namespaced_deployment(namespace, deployment("web", replicas=0))  # no cpu request
    _wait_status(cluster, dev_operator, name, _counts(1, 1), "matched 1, non-compliant 1")

    result = kubectl(cluster.kubeconfig, "get", "prodpol", name)
    header, row = result.stdout.splitlines()
    assert header.split() == ["NAME", "ENFORCEMENT", "MATCHED", "NON-COMPLIANT", "PROBE-FAILING", "AGE"]
    assert row.split()[:4] == [name, "Warn", "1", "1"]

    # The readiness probe comes from the policy's default: the Deployment is told so.
    def injected_event() -> list[Any]:
        return [
            e
            for e in _events_about(cluster, namespace, "Deployment", "web")
            if e.reason == "DefaultsInjected"
        ]

    events = wait_for(injected_event, 30, what="a DefaultsInjected Event on the Deployment")
    assert "app:readiness" in events[0].message


class _validating_webhook_away:
    """Remove the validating webhook configuration for the block, then put it back as it was."""

    def __init__(self, cluster: Cluster) -> None:
        self.admission = client.AdmissionregistrationV1Api(cluster.api)
        self.api = cluster.api
        self.saved: dict[str, Any] | None = None

    def __enter__(self) -> None:
        try:
            current = self.admission.read_validating_webhook_configuration("production-policy")
        except ApiException as exc:
            if exc.status != 404:
                raise
            return
        self.saved = self.api.sanitize_for_serialization(current)
        for field in ("resourceVersion", "uid", "creationTimestamp", "managedFields", "generation"):
            self.saved["metadata"].pop(field, None)
        self.admission.delete_validating_webhook_configuration("production-policy")

    def __exit__(self, *_: object) -> None:
        if self.saved is not None:
            self.admission.create_validating_webhook_configuration(self.saved)


class _status_writes:
    """Count the writes to one policy (each MODIFIED event is a new resourceVersion) during the block."""

    def __init__(self, cluster: Cluster, name: str, since: str) -> None:
        self.api, self.name, self.since = cluster.api, name, since
        self.seen: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> list[str]:
        self.thread.start()
        return self.seen

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(15)

    def _watch(self) -> None:
        custom = client.CustomObjectsApi(self.api)
        stream = watch.Watch()
        for event in self._events(stream, custom):
            if self.stop.is_set():
                stream.stop()
                return
            if event["type"] == "MODIFIED":
                self.seen.append(event["object"]["metadata"]["resourceVersion"])

    def _events(self, stream: watch.Watch, custom: client.CustomObjectsApi) -> Iterator[dict[str, Any]]:
        # Short server timeouts, so the loop notices `stop` soon after the block ends.
        while not self.stop.is_set():
            for event in stream.stream(
                custom.list_cluster_custom_object,
                GROUP,
                VERSION,
                PLURAL,
                field_selector=f"metadata.name={self.name}",
                resource_version=self.since,
                timeout_seconds=2,
            ):
                self.since = event["object"]["metadata"]["resourceVersion"]
                yield event
