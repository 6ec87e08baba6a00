"""The chart installed on kind from its own image, as the README says, and used as a user would.

One release for the module (the ``chart_release`` fixture, tests/kind/conftest.py): `make image`,
`kind load docker-image`, the README's `helm install --wait`. Here real kubelets run the image, so
Ready means the pods' own probes passed (tests/e2e/test_chart.py has the same chart on KWOK, where it
means nothing). The upgrade and uninstall tests come last: they change or end the release.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from devtools.kind.release import Release
from production_policy.engine.apiserver import POLICY_NAMES
from tests.support.cluster import KindNodes, ca_bundles, webhook_configurations
from tests.support.helm import assert_uninstalled, kubectl, release_objects
from tests.support.kube import deployment, pod_ready, wait_for
from tests.support.operator_identity import service_accounts
from tests.support.pods import pod, wait_finished

pytestmark = pytest.mark.kind

COMPONENTS = {"webhook": 2, "controller": 2}  # replicas by component, the chart's defaults
INJECTED = "productionpolicy.dev/injected"
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


def _pods(kind_cluster: KindNodes, release: Release, component: str) -> list[Any]:
    selector = f"app.kubernetes.io/instance={release.name},app.kubernetes.io/component={component}"
    found = kind_cluster.cluster.core.list_namespaced_pod(release.namespace, label_selector=selector).items
    return [p for p in found if p.metadata.deletion_timestamp is None]


def _ca(kind_cluster: KindNodes, release: Release) -> str:
    """The CA the chart keeps in the webhook's TLS Secret (base64, as caBundle holds it)."""
    secret = kind_cluster.cluster.core.read_namespaced_secret(
        f"{release.name}-webhook-tls", release.namespace
    )
    return str(secret.data["ca.crt"])


def _in_pod(kind_cluster: KindNodes, release: Release, pod_name: str, script: str, *args: str) -> str:
    """Run ``script`` with the image's own Python in the pod's container (``kubectl exec``)."""
    done = kubectl(
        release.kubeconfig,
        "exec",
        "-n",
        release.namespace,
        pod_name,
        "--",
        "python",
        "-c",
        script,
        *args,
    )
    return done.stdout


# An HTTP call to the API server with the pod's own mounted ServiceAccount token, as its process
# makes them: argv[1] is {label: [method, path, body or null]}, the answer {label: status}.
AS_THE_POD = f"""
import json, os, ssl, sys, urllib.error, urllib.request
token = open("{SERVICE_ACCOUNT_DIR}/token").read()
context = ssl.create_default_context(cafile="{SERVICE_ACCOUNT_DIR}/ca.crt")
server = "https://%s:%s" % (os.environ["KUBERNETES_SERVICE_HOST"], os.environ["KUBERNETES_SERVICE_PORT"])
def call(method, path, body):
    data = json.dumps(body).encode() if body is not None else None
    headers = {{"Authorization": "Bearer " + token, "Content-Type": "application/json"}}
    request = urllib.request.Request(server + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, None
calls = json.loads(sys.argv[1])
print(json.dumps({{label: call(*spec) for label, spec in calls.items()}}))
"""


def _as_the_pod(
    kind_cluster: KindNodes, release: Release, pod_name: str, calls: dict[str, tuple[str, str, Any]]
) -> dict[str, tuple[int, Any]]:
    out = _in_pod(kind_cluster, release, pod_name, AS_THE_POD, json.dumps(calls))
    return {label: (status, body) for label, (status, body) in json.loads(out).items()}


# ---- install: every pod Ready by its own probes -----------------------------------------------


@pytest.mark.parametrize("component", COMPONENTS)
def test_every_pod_is_ready_by_its_own_probes_and_never_restarted(
    kind_cluster: KindNodes, chart_release: Release, component: str
) -> None:
    print(
        f"image built {chart_release.build_seconds:.0f}s, loaded {chart_release.load_seconds:.0f}s, "
        f"helm install --wait {chart_release.install_seconds:.0f}s"
    )
    pods = _pods(kind_cluster, chart_release, component)
    assert len(pods) == COMPONENTS[component]
    for found in pods:
        (container,) = found.spec.containers
        # The chart's probes, run by the kubelet: no probe, no proof.
        for probe in ("readiness_probe", "liveness_probe", "startup_probe"):
            assert getattr(container, probe) is not None, f"{found.metadata.name} has no {probe}"
        assert container.image == chart_release.image
        (status,) = found.status.container_statuses
        assert pod_ready(found) and status.ready and status.started
        assert status.restart_count == 0, f"{found.metadata.name} restarted: {status.last_state}"
        # Ready came after the container started, from the kubelet's probes, not from a stand-in.
        ready = next(c for c in found.status.conditions if c.type == "Ready")
        assert ready.last_transition_time >= status.state.running.started_at


def test_the_pods_run_as_the_chart_says_non_root_on_a_read_only_root_filesystem(
    kind_cluster: KindNodes, chart_release: Release
) -> None:
    script = (
        "import os, pathlib\n"
        "print(os.getuid(), os.getgid())\n"
        "pathlib.Path('/tmp/ok').write_text('tmp is writable')\n"
        "try:\n    open('/opt/venv/x', 'w')\nexcept OSError as e:\n    print(e.strerror)\n"
    )
    for component in COMPONENTS:
        name = _pods(kind_cluster, chart_release, component)[0].metadata.name
        assert _in_pod(kind_cluster, chart_release, name, script).splitlines() == [
            "65532 65532",
            "Read-only file system",
        ]


def test_helm_test_runs_its_pod_and_it_passes(chart_release: Release) -> None:
    # The pod exits 0 only if the webhook Service answered /readyz with 200 over TLS, its
    # certificate verified against the chart's CA for the Service's DNS name.
    out = chart_release.test()
    assert "Phase:          Succeeded" in out, out


def test_both_webhook_configurations_trust_the_installed_ca(
    kind_cluster: KindNodes, chart_release: Release
) -> None:
    configurations = webhook_configurations(kind_cluster.cluster)
    assert set(configurations) == {"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"}
    assert ca_bundles(kind_cluster.cluster) == {_ca(kind_cluster, chart_release)}
    for configuration in configurations.values():
        for webhook in configuration.webhooks:
            assert webhook.client_config.service.namespace == chart_release.namespace
            assert webhook.client_config.service.name == f"{chart_release.name}-webhook"


# ---- used as a user would ----------------------------------------------------------------------

POLICY: dict[str, Any] = {
    "enforcement": "Enforce",
    "probes": {"readiness": {"required": True, "default": {"tcpSocket": {"port": "auto"}}}},
    "resources": {
        "defaultRequest": {"cpu": "50m", "memory": "32Mi"},
        "require": {"requests": ["cpu", "memory"]},
        "max": {"memory": "1Gi"},
    },
}


@pytest.fixture
def enforced(kind_cluster: KindNodes, chart_release: Release, namespace: str, make_policy: Any) -> str:
    """A policy of ours on ``namespace``, once the installed operator enforces it; its name."""
    name = f"helm-{namespace}"
    make_policy(name, {**POLICY, "match": {"namespaces": [namespace]}})
    core = kind_cluster.cluster.core
    probe = pod("enforced-yet", kind_cluster.busybox, "sleep 1", ports=[{"containerPort": 8080}])
    wait_for(
        lambda: (
            INJECTED
            in (core.create_namespaced_pod(namespace, probe, dry_run="All").metadata.annotations or {})
        ),
        60,
        0.5,
        "the installed webhook to enforce the new policy",
    )
    return name


def test_a_non_conforming_deployment_is_refused_with_our_message(
    kind_cluster: KindNodes, namespace: str, enforced: str
) -> None:
    too_big = {
        "name": "app",
        "image": kind_cluster.busybox,
        "ports": [{"containerPort": 8080}],
        "resources": {"limits": {"memory": "4Gi"}},
    }
    with pytest.raises(ApiException) as refused:
        kind_cluster.cluster.apps.create_namespaced_deployment(
            namespace, deployment("too-big", containers=[too_big])
        )
    message = json.loads(refused.value.body)["message"]
    assert f'production policy "{enforced}" (Enforce)' in message, message
    assert "app" in message and "memory" in message, message
    # Our refusal: the installed webhook's, or (admission.engine both, the default on 1.36+) the
    # admission policy the installed controller compiled from the same policy, with the same message.
    assert (
        'admission webhook "' in message and '.productionpolicy.dev" denied the request' in message
    ) or "ValidatingAdmissionPolicy 'productionpolicy.dev-enforce'" in message, message
    print(f"refused by: {message.split(':', 1)[0]}")


# ---- RBAC: the installed pods, with their own tokens ---------------------------------------------


def test_the_pods_run_as_the_charts_service_accounts(kind_cluster: KindNodes, chart_release: Release) -> None:
    accounts = service_accounts(release_objects(chart_release))
    for component in COMPONENTS:
        for found in _pods(kind_cluster, chart_release, component):
            assert found.spec.service_account_name == accounts[component].name
            review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
            answer = _as_the_pod(
                kind_cluster,
                chart_release,
                found.metadata.name,
                {"whoami": ("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", review)},
            )
            status, body = answer["whoami"]
            assert status == 201 and body["status"]["userInfo"]["username"] == accounts[component].username


def _secret(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": {"k": "v"}}


@pytest.mark.parametrize("component", COMPONENTS)
def test_each_pod_can_do_its_job_but_cannot_write_secrets_elsewhere_or_create_pods(
    kind_cluster: KindNodes, chart_release: Release, namespace: str, component: str
) -> None:
    ours = chart_release.namespace
    name = _pods(kind_cluster, chart_release, component)[0].metadata.name
    bare = pod("not-allowed", kind_cluster.busybox, "sleep 1")
    # dryRun: were RBAC wrong, nothing would be written; authorization is decided before it.
    forbidden = {
        "create a Secret elsewhere": (
            "POST",
            f"/api/v1/namespaces/{namespace}/secrets?dryRun=All",
            _secret("x"),
        ),
        "delete a Secret elsewhere": ("DELETE", f"/api/v1/namespaces/{namespace}/secrets/x?dryRun=All", None),
        "create a pod elsewhere": ("POST", f"/api/v1/namespaces/{namespace}/pods?dryRun=All", bare),
        "create a pod at home": ("POST", f"/api/v1/namespaces/{ours}/pods?dryRun=All", bare),
    }
    job = {
        "webhook": {
            "list policies": ("GET", "/apis/productionpolicy.dev/v1alpha1/productionpolicies", None),
            "list namespaces": ("GET", "/api/v1/namespaces", None),
        },
        "controller": {
            "list policies": ("GET", "/apis/productionpolicy.dev/v1alpha1/productionpolicies", None),
            "read its digest key": (
                "GET",
                f"/api/v1/namespaces/{ours}/secrets/production-policy-digest-key",
                None,
            ),
            "list ConfigMaps elsewhere": ("GET", f"/api/v1/namespaces/{namespace}/configmaps", None),
            "list Deployments elsewhere": ("GET", f"/apis/apps/v1/namespaces/{namespace}/deployments", None),
        },
    }[component]
    answers = _as_the_pod(kind_cluster, chart_release, name, {**forbidden, **job})
    assert {label: answers[label][0] for label in forbidden} == dict.fromkeys(forbidden, 403)
    assert {label: answers[label][0] for label in job} == dict.fromkeys(job, 200)
    # The same, asked the way an administrator checks a ServiceAccount.
    account = service_accounts(release_objects(chart_release))[component].username
    for verb, resource, where in (
        ("create", "pods", namespace),
        ("create", "pods", ours),
        ("update", "secrets", namespace),
    ):
        done = kubectl(
            chart_release.kubeconfig,
            *("auth", "can-i", verb, resource, "-n", where, f"--as={account}"),
            check=False,  # it exits 1 for "no"
        )
        assert done.stdout.strip() == "no", (verb, resource, where, done.stdout, done.stderr)


# ---- upgrade, then uninstall (last: they change and end the release) -----------------------------


@pytest.fixture
def pod_creator(kind_cluster: KindNodes, namespace: str) -> Iterator[dict[str, Any]]:
    """Pods created (dry run: admitted exactly like real ones, nothing to schedule) one after another
    until told to stop; the failures and how many were admitted with our defaults."""
    core = kind_cluster.cluster.core
    counts: dict[str, Any] = {"created": 0, "injected": 0, "failures": []}
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            manifest = pod(
                f"loop-{uuid.uuid4().hex[:8]}",
                kind_cluster.busybox,
                "sleep 1",
                ports=[{"containerPort": 8080}],
            )
            try:
                created = core.create_namespaced_pod(namespace, manifest, dry_run="All")
            except ApiException as exc:
                counts["failures"].append(f"{exc.status}: {exc.body}")
                continue
            counts["created"] += 1
            counts["injected"] += INJECTED in (created.metadata.annotations or {})

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield counts
    finally:
        stop.set()
        thread.join(30)


def test_upgrade_keeps_serving_with_the_same_ca_and_no_failed_admission(
    kind_cluster: KindNodes, chart_release: Release, enforced: str, pod_creator: dict[str, Any]
) -> None:
    ca = _ca(kind_cluster, chart_release)
    before = {p.metadata.name for p in _pods(kind_cluster, chart_release, "webhook")}
    token = uuid.uuid4().hex[:8]
    chart_release.upgrade(f"webhook.podAnnotations.upgraded={token}")
    served = dict(pod_creator)
    assert served["failures"] == [], served["failures"][:3]
    assert served["created"] > 0 and served["injected"] == served["created"], served
    print(f"admitted during helm upgrade: {served['created']} pods, 0 failures")
    # The upgrade did replace the webhook pods, and they serve with the CA they had.
    after = _pods(kind_cluster, chart_release, "webhook")
    assert {p.metadata.name for p in after}.isdisjoint(before)
    assert all(p.metadata.annotations.get("upgraded") == token for p in after)
    assert _ca(kind_cluster, chart_release) == ca
    assert ca_bundles(kind_cluster.cluster) == {ca}
    assert "Phase:          Succeeded" in chart_release.test()


def test_uninstall_leaves_no_webhook_configuration_and_pods_can_be_created(
    kind_cluster: KindNodes, chart_release: Release, namespace: str, make_policy: Any
) -> None:
    # A policy stays (the CRD is kept); with nothing left to enforce it, a pod it would refuse runs.
    make_policy(f"kept-{namespace}", {**POLICY, "match": {"namespaces": [namespace]}})
    objects = release_objects(chart_release)
    chart_release.uninstall()
    assert not chart_release.installed()
    assert_uninstalled(kind_cluster.cluster, objects)
    admission = client.AdmissionregistrationV1Api(kind_cluster.cluster.api)
    compiled = {p.metadata.name for p in admission.list_validating_admission_policy().items}
    compiled |= {p.metadata.name for p in admission.list_mutating_admission_policy().items}
    assert not compiled & set(POLICY_NAMES), compiled
    core = kind_cluster.cluster.core
    after = pod("after", kind_cluster.busybox, "echo created", restart_policy="Never")
    # The API server drops deleted admission policies from its own cache a moment after the
    # delete (its policy informer); until then it still enforces them.
    wait_for(
        lambda: core.create_namespaced_pod(namespace, after, dry_run="All"),
        what="a pod the kept policy would refuse admitted once the chart is gone",
    )
    core.create_namespaced_pod(namespace, after)
    assert wait_finished(core, namespace, "after").strip() == "created"
