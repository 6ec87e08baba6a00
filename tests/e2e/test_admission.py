"""Admission-time enforcement, proven through the real API server: it calls our webhooks over TLS,
applies our JSON patches, and kube-controller-manager turns Deployments into pods that KWOK runs.
"""

from __future__ import annotations

import functools
import json
import signal
import time
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from production_policy.kube.admissionpolicies import Answer
from tests.support.apiserver import dry_run_create
from tests.support.cluster import EXCLUDED_NAMESPACE, OPERATOR_NAMESPACE, Cluster, DevOperator
from tests.support.helm import kubectl
from tests.support.kube import deployment, ready_pods, wait_for

pytestmark = pytest.mark.e2e

INJECTED = "productionpolicy.dev/injected"

WEB_DEFAULTS: dict[str, Any] = {
    "enforcement": "Enforce",
    "probes": {
        "readiness": {"required": True, "default": {"tcpSocket": {"port": "auto"}, "periodSeconds": 10}},
        "liveness": {
            "required": True,
            "default": {"httpGet": {"path": "/healthz", "port": "auto"}, "initialDelaySeconds": 15},
        },
    },
    "resources": {
        "defaultRequest": {"cpu": "100m", "memory": "128Mi"},
        "default": {"memory": "256Mi"},
        "require": {"requests": ["cpu", "memory"], "limits": ["memory"]},
        "max": {"memory": "8Gi"},
    },
}


def _spec(namespace: str, **changes: Any) -> dict[str, Any]:
    return {**json.loads(json.dumps(WEB_DEFAULTS)), "match": {"namespaces": [namespace]}, **changes}


def _pod(name: str, container: dict[str, Any] | None = None) -> dict[str, Any]:
    container = container or {"name": "app", "image": "nginx:1.27", "ports": [{"containerPort": 8080}]}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [container]},
    }


def _wait_enforced(cluster: Cluster, namespace: str) -> None:
    """The webhook sees a new policy through a watch; wait until a dry-run pod shows it."""

    def injected() -> bool:
        try:
            pod = cluster.core.create_namespaced_pod(namespace, _pod("probe-check"), dry_run="All")
        except ApiException as exc:
            return "production policy" in str(exc.body)  # a strict policy may refuse even with defaults
        return bool((pod.metadata.annotations or {}).get(INJECTED))

    wait_for(injected, 30, what="the policy to be enforced")


def _denial(call: Any) -> str:
    with pytest.raises(ApiException) as refused:
        call()
    return str(json.loads(refused.value.body)["message"])


def test_pods_of_a_deployment_get_defaults_and_the_deployment_is_unchanged(
    cluster: Cluster, namespace: str, dev_operator: DevOperator, make_policy: Any
) -> None:
    make_policy(f"web-{namespace}", _spec(namespace))
    _wait_enforced(cluster, namespace)
    created = cluster.apps.create_namespaced_deployment(namespace, deployment("web", replicas=2))
    pods = wait_for(
        lambda: (
            len(ready_pods(cluster.core, namespace, "app=web")) == 2
            and ready_pods(cluster.core, namespace, "app=web")
        ),
        60,
        what="2 Ready pods",
    )
    for pod in pods:
        app = pod.spec.containers[0]
        assert app.readiness_probe.tcp_socket.port == 8080
        assert app.liveness_probe.http_get.path == "/healthz" and app.liveness_probe.http_get.port == 8080
        assert app.resources.requests == {"cpu": "100m", "memory": "128Mi"}
        assert app.resources.limits == {"memory": "256Mi"}
        injected = set(pod.metadata.annotations[INJECTED].split(","))
        assert {
            "app:readiness",
            "app:liveness",
            "app:resources.requests.cpu",
            "app:resources.limits.memory",
        } <= injected
    stored = cluster.apps.read_namespaced_deployment("web", namespace)
    template = stored.spec.template.spec.containers[0]
    assert template.readiness_probe is None and template.liveness_probe is None
    assert not template.resources.requests and not template.resources.limits
    assert stored.metadata.generation == created.metadata.generation == 1


@pytest.mark.parametrize(
    ("container", "expected"),
    [
        ({"name": "app", "image": "nginx:1.27"}, ['container "app"', "readinessProbe", "containerPort"]),
        (
            {
                "name": "app",
                "image": "nginx:1.27",
                "ports": [{"containerPort": 80}],
                "resources": {"limits": {"memory": "16Gi"}},
            },
            ['container "app"', "limits.memory", "8Gi"],
        ),
        (
            {
                "name": "app",
                "image": "nginx:1.27",
                "ports": [{"containerPort": 80}],
                "resources": {"requests": {"cpu": "100m", "memory": "1Gi"}},
            },
            [
                'container "app": no resources.limits.memory and the default limit 256Mi was not injected, as'
                " it is below resources.requests.memory 1Gi — add resources.limits.memory of at least 1Gi and"
                " at most 8Gi"
            ],
        ),
    ],
    ids=["no-port-no-probe", "memory-limit-above-max", "memory-request-above-the-default-limit"],
)
def test_what_no_default_can_fix_is_rejected_for_deployments_and_pods(
    cluster: Cluster,
    namespace: str,
    dev_operator: DevOperator,
    make_policy: Any,
    container: dict[str, Any],
    expected: list[str],
) -> None:
    make_policy(f"strict-{namespace}", _spec(namespace))
    _wait_enforced(cluster, namespace)
    for message in (
        _denial(
            lambda: cluster.apps.create_namespaced_deployment(
                namespace, deployment("bad", containers=[container])
            )
        ),
        _denial(lambda: cluster.core.create_namespaced_pod(namespace, _pod("bad", container))),
    ):
        for part in expected:
            assert part in message, message
        assert f"strict-{namespace}" in message
    assert cluster.apps.list_namespaced_deployment(namespace).items == []


def test_qos_below_the_minimum_is_rejected(
    cluster: Cluster, namespace: str, dev_operator: DevOperator, make_policy: Any
) -> None:
    spec = _spec(namespace)
    spec["resources"]["minQoSClass"] = "Guaranteed"
    make_policy(f"qos-{namespace}", spec)
    _wait_enforced(cluster, namespace)
    burstable = {
        "name": "app",
        "image": "nginx:1.27",
        "ports": [{"containerPort": 80}],
        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
    }
    message = _denial(
        lambda: cluster.apps.create_namespaced_deployment(
            namespace, deployment("burst", containers=[burstable])
        )
    )
    assert "Guaranteed" in message and "Burstable" in message


def test_warn_admits_with_warnings_and_audit_admits_silently(
    cluster: Cluster, namespace: str, dev_operator: DevOperator, make_policy: Any
) -> None:
    policy = make_policy(f"warn-{namespace}", _spec(namespace, enforcement="Warn"))
    _wait_enforced(cluster, namespace)
    manifest = yaml.safe_dump(deployment("portless", containers=[{"name": "app", "image": "nginx:1.27"}]))
    warned = kubectl(cluster.kubeconfig, "-n", namespace, "create", "-f", "-", stdin=manifest)
    assert "Warning:" in warned.stderr and "readinessProbe" in warned.stderr

    # A patch, not a replace: the controller keeps writing the policy's status meanwhile.
    client.CustomObjectsApi(cluster.api).patch_cluster_custom_object(
        "productionpolicy.dev",
        "v1alpha1",
        "productionpolicies",
        policy["metadata"]["name"],
        {"spec": {"enforcement": "Audit"}},
    )
    manifest = manifest.replace("name: portless", "name: portless-audit")

    def silent() -> bool:
        result = kubectl(
            cluster.kubeconfig,
            *("-n", namespace, "create", "--dry-run=server", "-f", "-"),
            stdin=manifest,
            check=False,
        )
        return result.returncode == 0 and "Warning:" not in result.stderr

    wait_for(silent, 10, what="Audit to admit without warnings")
    audited = kubectl(cluster.kubeconfig, "-n", namespace, "create", "-f", "-", stdin=manifest)
    assert "Warning:" not in audited.stderr, audited.stderr


def test_a_refusal_names_the_enforce_violations_and_warns_of_the_warn_ones(
    cluster: Cluster, namespace: str, dev_operator: DevOperator, make_policy: Any
) -> None:
    make_policy(f"enforce-{namespace}", _spec(namespace))
    make_policy(
        f"warn-{namespace}",
        _spec(namespace, enforcement="Warn", probes={"startup": {"required": True}}, resources={}),
    )
    _wait_enforced(cluster, namespace)
    portless = deployment("portless", containers=[{"name": "app", "image": "nginx:1.27"}])

    def refused_and_warned() -> Answer | None:
        answer = dry_run_create(cluster.api, namespace, portless)
        return answer if answer.status == 403 and answer.warnings else None

    # The API server passes the webhook's warnings on with its refusal.
    answer = wait_for(refused_and_warned, 10, what="the Warn policy to be enforced too")
    assert answer.message.startswith(
        'admission webhook "workloads.validate.productionpolicy.dev" denied the request: '
        f'production policy "enforce-{namespace}" (Enforce): container "app": no readinessProbe'
    ), answer.message
    assert "(Warn)" not in answer.message
    assert answer.warnings == [
        f'production policy "warn-{namespace}" (Warn): container "app": no startupProbe — add a startupProbe'
    ]


def test_legacy_workloads_ratchet(
    cluster: Cluster, namespace: str, dev_operator: DevOperator, make_policy: Any
) -> None:
    legacy = deployment("legacy", containers=[{"name": "app", "image": "nginx:1.27"}])
    cluster.apps.create_namespaced_deployment(namespace, legacy)
    make_policy(f"ratchet-{namespace}", _spec(namespace))
    _wait_enforced(cluster, namespace)
    cluster.apps.patch_namespaced_deployment_scale("legacy", namespace, {"spec": {"replicas": 3}})
    cluster.apps.patch_namespaced_deployment("legacy", namespace, {"metadata": {"labels": {"team": "shop"}}})
    worse = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "app", "image": "nginx:1.27", "resources": {"limits": {"memory": "16Gi"}}}
                    ]
                }
            }
        }
    }
    message = _denial(lambda: cluster.apps.patch_namespaced_deployment("legacy", namespace, worse))
    assert "limits.memory" in message and "readinessProbe" not in message
    assert cluster.apps.read_namespaced_deployment("legacy", namespace).spec.replicas == 3
    # A rollout of the legacy template (kcm creates a new ReplicaSet and pods) is not blocked:
    # the owner was validated, with ratcheting, when its template changed.
    restart = {"spec": {"template": {"metadata": {"annotations": {"restarted": "1"}}}}}
    cluster.apps.patch_namespaced_deployment("legacy", namespace, restart)

    def rolled() -> bool:
        status = cluster.apps.read_namespaced_deployment("legacy", namespace).status
        return (status.updated_replicas, status.ready_replicas, status.replicas) == (3, 3, 3)

    wait_for(rolled, 90, what="the legacy Deployment to roll out")


def test_exempt_namespaces_are_untouched(
    cluster: Cluster, namespace: str, dev_operator: DevOperator, make_policy: Any
) -> None:
    everywhere = json.loads(json.dumps(WEB_DEFAULTS))  # empty match: every namespace
    make_policy(f"everywhere-{namespace}", everywhere)
    _wait_enforced(cluster, namespace)
    cluster.core.patch_namespace(namespace, {"metadata": {"labels": {"productionpolicy.dev/ignore": "true"}}})
    portless = {"name": "app", "image": "nginx:1.27"}
    for exempt in ("kube-system", OPERATOR_NAMESPACE, EXCLUDED_NAMESPACE, namespace):
        name = f"exempt-{int(time.time() * 1000)}"
        pod = wait_for(
            functools.partial(_create_or_none, cluster, exempt, _pod(name, portless)),
            20,
            what=f"a pod in {exempt}",
        )
        try:
            assert INJECTED not in (pod.metadata.annotations or {}), exempt
            assert pod.spec.containers[0].readiness_probe is None, exempt
        finally:
            cluster.core.delete_namespaced_pod(name, exempt, grace_period_seconds=0)


def _create_or_none(cluster: Cluster, namespace: str, pod: dict[str, Any]) -> Any:
    try:
        return cluster.core.create_namespaced_pod(namespace, pod)
    except ApiException:
        return None  # the ignore label may not have reached the API server's namespace cache yet


def test_a_policy_change_is_enforced_within_a_second(
    cluster: Cluster, namespace: str, dev_operator: DevOperator, make_policy: Any
) -> None:
    policy = make_policy(f"change-{namespace}", _spec(namespace))
    _wait_enforced(cluster, namespace)
    client.CustomObjectsApi(cluster.api).patch_cluster_custom_object(
        "productionpolicy.dev",
        "v1alpha1",
        "productionpolicies",
        policy["metadata"]["name"],
        {"spec": {"resources": {"defaultRequest": {"cpu": "250m"}}}},
    )
    changed = time.monotonic()

    def new_default() -> bool:
        pod = cluster.core.create_namespaced_pod(namespace, _pod("next"), dry_run="All")
        return bool(pod.spec.containers[0].resources.requests["cpu"] == "250m")

    wait_for(new_default, 10, interval=0.05, what="the changed default")
    assert time.monotonic() - changed < 1.0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"resources": {"min": {"memory": "1Gi"}, "max": {"memory": "512Mi"}}}, "min"),
        (
            {"probes": {"readiness": {"default": {"tcpSocket": {"port": "auto"}, "timeoutSeconds": -1}}}},
            "timeoutSeconds",
        ),
        ({"enforcement": "Sometimes"}, "enforcement"),
    ],
    ids=["min-above-max", "negative-timeout", "unknown-enforcement"],
)
def test_an_invalid_policy_is_refused_naming_the_field(
    cluster: Cluster, dev_operator: DevOperator, make_policy: Any, change: dict[str, Any], field: str
) -> None:
    message = _denial(lambda: make_policy("invalid", {**WEB_DEFAULTS, **change}))
    assert field in message, message


def test_dry_run_behaves_like_a_real_create_and_leaves_nothing(
    cluster: Cluster, namespace: str, dev_operator: DevOperator, make_policy: Any
) -> None:
    make_policy(f"dry-{namespace}", _spec(namespace))
    _wait_enforced(cluster, namespace)
    pod = cluster.core.create_namespaced_pod(namespace, _pod("dry"), dry_run="All")
    assert pod.spec.containers[0].readiness_probe.tcp_socket.port == 8080
    bad = deployment("dry-bad", containers=[{"name": "app", "image": "nginx:1.27"}])
    assert "readinessProbe" in _denial(
        lambda: cluster.apps.create_namespaced_deployment(namespace, bad, dry_run="All")
    )
    assert cluster.core.list_namespaced_pod(namespace).items == []
    assert cluster.apps.list_namespaced_deployment(namespace).items == []


def test_z_metrics_report_what_the_scenarios_did(dev_operator: DevOperator) -> None:
    """After the scenarios above: counts, latencies, index sizes and certificate expiry are plausible."""
    samples = dev_operator.metrics()

    def total(prefix: str, **labels: str) -> float:
        wanted = [f'{k}="{v}"' for k, v in labels.items()]
        return sum(
            v for k, v in samples.items() if k.startswith(prefix + "{") and all(w in k for w in wanted)
        )

    requests = "production_policy_admission_requests_total"
    assert total(requests, webhook="/mutate-pods", kind="Pod", operation="CREATE", decision="admitted") >= 5
    assert total(requests, webhook="/validate-workloads", kind="Deployment", decision="denied") >= 3
    assert total(requests, webhook="/validate-workloads", decision="warned") >= 1
    assert total(requests, webhook="/validate-pods", kind="Pod", decision="denied") >= 2
    assert total(requests, webhook="/validate-policies", decision="admitted") >= 5
    answered = total(requests)
    observed = total("production_policy_admission_duration_seconds_count")
    assert observed == answered > 0
    assert 0 < total("production_policy_admission_duration_seconds_sum") / observed < 0.5
    assert total("production_policy_index_entries", index="namespaces") >= 4
    assert total("production_policy_index_entries", index="policies") >= 0
    expiry_days = total("production_policy_serving_certificate_expiry_seconds") / 86400
    assert 364 < expiry_days <= 365
    assert total("production_policy_errors_total", component="admission") == 0


def test_zz_with_the_webhook_down_failure_policies_apply(
    cluster: Cluster, namespace: str, dev_operator: DevOperator, make_policy: Any
) -> None:
    """Runs last in this module: it kills the operator (SIGKILL leaves its configurations behind)."""
    make_policy(f"down-{namespace}", _spec(namespace))
    _wait_enforced(cluster, namespace)
    dev_operator.process.send_signal(signal.SIGKILL)
    dev_operator.process.wait(10)
    name = f"down-{int(time.time())}"
    system_pod = cluster.core.create_namespaced_pod("kube-system", _pod(name))
    cluster.core.delete_namespaced_pod(system_pod.metadata.name, "kube-system", grace_period_seconds=0)
    # Mutation fails open (Ignore), validation fails closed (Fail): the pod is refused.
    message = _denial(lambda: cluster.core.create_namespaced_pod(namespace, _pod(name)))
    assert "failed calling webhook" in message and "pods.validate.productionpolicy.dev" in message
