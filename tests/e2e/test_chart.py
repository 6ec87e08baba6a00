"""The Helm chart against the real local control plane: dry-run, install, RBAC, upgrade, uninstall.

One release lives through the module, in order: install -> checks -> the operator's processes run
locally as the chart's ServiceAccounts -> upgrade -> the uninstall hook's command -> uninstall.
(An admission scenario as the chart's webhook ServiceAccount needs no release installed: it is in
test_chart_identity.py.)
There is no container runtime: KWOK marks the chart's pods Ready without running the image, so
the processes are run here, with the chart's identities and certificate, to prove those work.

While the release is installed its webhooks point at pods that do not serve: pod creation in
other namespaces fails, which is why the module fixture always uninstalls (and, as a last resort,
deletes the webhook configurations).
"""

from __future__ import annotations

import base64
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from devtools.devcluster.controlplane import free_port
from devtools.kind.release import Release
from production_policy.admission.configuration import CONFIGURATION_NAME
from production_policy.engine.apiserver import ENFORCE_NAME
from production_policy.kube import webhooks
from tests.support import processes, rbac
from tests.support.apiserver import call, dry_run_create
from tests.support.cluster import Cluster, ca_bundles, webhook_configurations
from tests.support.helm import (
    CHART,
    Helm,
    assert_uninstalled,
    binary,
    is_hook,
    kubectl,
    one,
    release_objects,
    removed_after,
)
from tests.support.identity import (
    ServiceAccountRef,
    can_i,
    impersonating_kubeconfig,
    rules,
    token_kubeconfig,
    whoami,
)
from tests.support.kube import pod_ready, wait_for
from tests.support.operator_identity import service_accounts

pytestmark = pytest.mark.e2e

RELEASE = "production-policy"
NAMESPACE = "pp-chart"
CERT_MANAGER_GROUP = "cert-manager.io"


@pytest.fixture(scope="module")
def helm(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Helm:
    return Helm(tmp_path_factory.mktemp("helm"), kubeconfig=cluster.kubeconfig)


@pytest.fixture(scope="module")
def release_namespace(cluster: Cluster) -> Iterator[str]:
    cluster.core.create_namespace({"metadata": {"name": NAMESPACE}})
    yield NAMESPACE
    cluster.core.delete_namespace(NAMESPACE)


@pytest.fixture(scope="module")
def release(
    cluster: Cluster, helm: Helm, release_namespace: str, crd: dict[str, object]
) -> Iterator[Release]:
    installed = Release(
        RELEASE, release_namespace, cluster.kubeconfig, binary("helm"), binary("kubectl"), helm.home
    )
    with removed_after(installed, cluster):  # a failed install too
        started = time.monotonic()
        installed.run("install", RELEASE, str(CHART), "-n", release_namespace, "--wait", "--timeout", "180s")
        print(f"helm install --wait: {time.monotonic() - started:.1f}s")
        yield installed


@pytest.fixture(scope="module")
def tokens(cluster: Cluster, release: Release, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Kubeconfigs with bound tokens of the installed webhook and controller ServiceAccounts."""
    workdir = tmp_path_factory.mktemp("tokens")
    return {
        component: token_kubeconfig(cluster.kubeconfig, account, workdir / f"{component}.kubeconfig")
        for component, account in service_accounts(release_objects(release)).items()
    }


def _dry_run(cluster: Cluster, objects: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
    return kubectl(
        cluster.kubeconfig,
        "apply",
        "--server-side",
        "--dry-run=server",
        "--field-manager=pp-dry-run",
        "-f",
        "-",
        stdin=yaml.safe_dump_all(objects),
        check=False,
    )


# ---- before installing: the API server accepts what the chart renders --------------------


@pytest.mark.parametrize("values", [(), ("certManager.enabled=false",)], ids=["default", "certManager=false"])
def test_server_side_dry_run_accepts_the_rendered_chart(
    cluster: Cluster, helm: Helm, release_namespace: str, values: tuple[str, ...]
) -> None:
    objects = helm.template(RELEASE, release_namespace, values, "--include-crds")
    result = _dry_run(cluster, objects)
    assert result.returncode == 0, result.stderr
    accepted = [line for line in result.stdout.splitlines() if "(server dry run)" in line]
    assert len(accepted) == len(objects), result.stdout  # every object, hooks and the CRD included
    assert not webhook_configurations(cluster), "a dry run must leave nothing behind"


def test_with_cert_manager_only_its_own_kinds_are_refused_for_want_of_its_crds(
    cluster: Cluster, helm: Helm, release_namespace: str
) -> None:
    # cert-manager is not installed here (no images, no CRDs); its Issuer/Certificate schemas are
    # therefore not validated by this test, only checked offline (tests/unit/test_chart_render.py).
    groups = {g.name for g in client.ApisApi(cluster.api).get_api_versions().groups}
    assert CERT_MANAGER_GROUP not in groups
    objects = helm.template(RELEASE, release_namespace, ["certManager.enabled=true"], "--include-crds")
    ours = [o for o in objects if not o["apiVersion"].startswith(f"{CERT_MANAGER_GROUP}/")]
    theirs = [o for o in objects if o["apiVersion"].startswith(f"{CERT_MANAGER_GROUP}/")]
    assert sorted(o["kind"] for o in theirs) == ["Certificate", "Certificate", "Issuer", "Issuer"]
    result = _dry_run(cluster, ours)
    assert result.returncode == 0, result.stderr
    for obj in theirs:
        refused = _dry_run(cluster, [obj])
        assert refused.returncode != 0
        assert f'no matches for kind "{obj["kind"]}" in version "{CERT_MANAGER_GROUP}/v1"' in refused.stderr


# ---- install ------------------------------------------------------------------------------


def test_install_creates_every_object_and_the_pods_become_ready(cluster: Cluster, release: Release) -> None:
    objects = release_objects(release)
    listed = kubectl(cluster.kubeconfig, "get", "-f", "-", "-o", "name", stdin=yaml.safe_dump_all(objects))
    assert len(listed.stdout.split()) == len(objects)
    selector = f"app.kubernetes.io/instance={RELEASE}"

    def pods(component: str) -> list[Any]:
        found = cluster.core.list_namespaced_pod(
            release.namespace, label_selector=f"{selector},app.kubernetes.io/component={component}"
        ).items
        return [p for p in found if pod_ready(p)]

    webhook = wait_for(
        lambda: pods("webhook") if len(pods("webhook")) == 2 else [], 60, what="2 Ready webhook pods"
    )
    assert len({p.spec.node_name for p in webhook}) == 2, "the webhook replicas share a node"
    # Two controller replicas under leader election: the standby is Ready too (it serves health and metrics).
    wait_for(
        lambda: pods("controller") if len(pods("controller")) == 2 else [], 60, what="2 Ready controller pods"
    )
    budget = client.PolicyV1Api(cluster.api).read_namespaced_pod_disruption_budget(
        f"{RELEASE}-webhook", NAMESPACE
    )
    wait_for(
        lambda: (
            client.PolicyV1Api(cluster.api)
            .read_namespaced_pod_disruption_budget(f"{RELEASE}-webhook", NAMESPACE)
            .status.disruptions_allowed
            == 1
        ),
        30,
        what="the PDB to allow one eviction",
    )
    assert budget.spec.min_available == 1


def test_install_notes_say_what_is_never_enforced_and_how_to_recover(release: Release) -> None:
    notes = release.run("get", "notes", RELEASE, "-n", NAMESPACE).split("NOTES:", 1)[1]
    assert f"They never see: kube-node-lease, kube-public, kube-system, {NAMESPACE}," in notes
    assert (
        "kubectl delete mutatingwebhookconfiguration,validatingwebhookconfiguration production-policy"
        in notes
    )
    assert f"helm test {RELEASE} -n {NAMESPACE}" in notes


def test_webhook_configurations_trust_the_generated_ca(cluster: Cluster, release: Release) -> None:
    secret = cluster.core.read_namespaced_secret(f"{RELEASE}-webhook-tls", NAMESPACE)
    configs = webhook_configurations(cluster)
    assert set(configs) == set(webhooks.KINDS)
    for config in configs.values():
        for webhook in config.webhooks:
            assert webhook.client_config.ca_bundle == secret.data["ca.crt"]
            assert webhook.client_config.service.namespace == NAMESPACE
            assert webhook.client_config.service.name == f"{RELEASE}-webhook"
            if webhook.name.startswith("policies."):  # cluster-scoped: no namespace to select on
                continue
            never = webhook.namespace_selector.match_expressions[0]
            assert never.operator == "NotIn" and NAMESPACE in never.values and "kube-system" in never.values


# ---- RBAC: what the installed ServiceAccounts may do, asked of the API server -----------

# (verb, resource, group, namespace or None for the release namespace, name)
Check = tuple[str, str, str, str | None, str | None]

MUST_NOT: list[Check] = [
    ("create", "pods", "", "default", None),
    ("create", "pods", "", None, None),
    *[
        (verb, resource, "", namespace, None)
        for verb in ("update", "patch", "delete", "deletecollection")
        for resource in ("secrets", "configmaps")
        for namespace in ("default", None)
    ],
    ("create", "secrets", "", "default", None),
    ("create", "configmaps", "", "default", None),
    ("create", "configmaps", "", None, None),
    ("update", "secrets", "", None, "production-policy-digest-key"),
    ("delete", "deployments", "apps", "default", None),
    ("create", "deployments", "apps", "default", None),
    ("update", "productionpolicies", "productionpolicy.dev", None, None),
    ("delete", "productionpolicies", "productionpolicy.dev", None, None),
    ("create", "validatingwebhookconfigurations", "admissionregistration.k8s.io", None, None),
    ("delete", "mutatingwebhookconfigurations", "admissionregistration.k8s.io", None, "production-policy"),
    ("create", "serviceaccounts/token", "", None, None),
    ("impersonate", "users", "", None, None),
    ("bind", "clusterroles", "rbac.authorization.k8s.io", None, None),
    ("escalate", "clusterroles", "rbac.authorization.k8s.io", None, None),
]

MUST: dict[str, list[Check]] = {
    "webhook": [
        ("list", "productionpolicies", "productionpolicy.dev", None, None),
        ("watch", "productionpolicies", "productionpolicy.dev", None, None),
        ("list", "namespaces", "", None, None),
        ("watch", "namespaces", "", None, None),
    ],
    "controller": [
        ("watch", "productionpolicies", "productionpolicy.dev", None, None),
        ("patch", "productionpolicies/status", "productionpolicy.dev", None, None),
        ("list", "configmaps", "", "default", None),
        ("watch", "secrets", "", "default", None),
        ("get", "secrets", "", None, "production-policy-digest-key"),
        ("create", "secrets", "", None, None),  # the digest key; see templates/rbac.yaml
        ("list", "namespaces", "", None, None),
        ("patch", "deployments", "apps", "default", None),
        ("patch", "statefulsets", "apps", "default", None),
        ("patch", "daemonsets", "apps", "default", None),
        ("create", "events", "events.k8s.io", "default", None),
        ("create", "events", "", "default", None),
        ("watch", "pods", "", "default", None),
        ("watch", "jobs", "batch", "default", None),
        ("watch", "cronjobs", "batch", "default", None),
    ],
}


def _ask(
    kubeconfig: Path, verb: str, resource: str, group: str, namespace: str | None, name: str | None
) -> bool:
    resource, _, subresource = resource.partition("/")
    cluster_scoped = resource in (
        "productionpolicies",
        "namespaces",
        "validatingwebhookconfigurations",
        "mutatingwebhookconfigurations",
        "clusterroles",
        "users",
    )
    return can_i(
        kubeconfig,
        verb,
        resource,
        group,
        None if cluster_scoped else (namespace or NAMESPACE),
        name,
        subresource or None,
    )


@pytest.mark.parametrize("component", ["webhook", "controller"])
def test_service_accounts_cannot_create_pods_write_secrets_or_configmaps(
    cluster: Cluster, tokens: dict[str, Path], component: str, tmp_path: Path
) -> None:
    kubeconfig = tokens[component]
    assert whoami(kubeconfig) == f"system:serviceaccount:{NAMESPACE}:{RELEASE}-{component}"
    granted = [check for check in MUST_NOT if _ask(kubeconfig, *check)]
    assert not granted
    if component == "webhook":  # the webhook does not even read Secrets or ConfigMaps
        assert not _ask(kubeconfig, "get", "secrets", "", "default", None)
        assert not _ask(kubeconfig, "list", "configmaps", "", None, None)
    # The same answer through kubectl's impersonation (`--as`), the way an operator would check.
    account = ServiceAccountRef(NAMESPACE, f"{RELEASE}-{component}")
    as_flags = ["auth", "can-i", "create", "pods", "-n", "default", f"--as={account.username}"]
    assert kubectl(cluster.kubeconfig, *as_flags, check=False).stdout.strip() == "no"
    impersonating = impersonating_kubeconfig(cluster.kubeconfig, account, tmp_path / "as.kubeconfig")
    assert (
        kubectl(impersonating, "auth", "can-i", "create", "pods", "-n", "default", check=False).stdout.strip()
        == "no"
    )


@pytest.mark.parametrize("component", ["webhook", "controller"])
def test_service_accounts_can_do_what_their_process_needs(tokens: dict[str, Path], component: str) -> None:
    missing = [check for check in MUST[component] if not _ask(tokens[component], *check)]
    assert not missing


def release_engine(objects: list[dict[str, Any]]) -> str:
    """The release's admission.engine, as its controller is told (the default depends on the cluster)."""
    for obj in objects:
        if obj["kind"] == "Deployment" and obj["metadata"]["name"].endswith("controller"):
            env = obj["spec"]["template"]["spec"]["containers"][0]["env"]
            return str(next(e["value"] for e in env if e["name"] == "PP_ADMISSION_ENGINE"))
    raise AssertionError("no controller Deployment in the release")


def _urls(non_resource_rules: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {
        (url, verb)
        for rule in non_resource_rules
        for url in rule["nonResourceURLs"]
        for verb in rule["verbs"]
    }


def test_the_api_server_grants_exactly_the_chart_permissions_and_no_wildcard(
    cluster: Cluster, release: Release, tokens: dict[str, Path], tmp_path: Path
) -> None:
    # Every authenticated identity holds a few rules (discovery, self-reviews): measure them on a
    # ServiceAccount without bindings, and look at what the chart's accounts hold beyond that.
    cluster.core.create_namespaced_service_account(NAMESPACE, {"metadata": {"name": "pp-no-bindings"}})
    baseline_kubeconfig = token_kubeconfig(
        cluster.kubeconfig, ServiceAccountRef(NAMESPACE, "pp-no-bindings"), tmp_path / "baseline.kubeconfig"
    )
    for namespace in (NAMESPACE, "default"):
        base_resource, base_non_resource = rules(baseline_kubeconfig, namespace)
        for component, kubeconfig in tokens.items():
            resource, non_resource = rules(kubeconfig, namespace)
            granted = rbac.flatten(resource) - rbac.flatten(base_resource)
            table = rbac.expected(release_engine(release_objects(release)))
            expected = set(table[("ClusterRole", component)])
            if namespace == NAMESPACE:
                expected |= table.get(("Role", component), set())
            assert granted == expected, (component, namespace)
            assert not rbac.wildcards(granted)
            assert _urls(non_resource) == _urls(base_non_resource), (
                "a non-resource URL beyond what everyone has"
            )


def test_python_clients_ignore_kubeconfig_impersonation(
    cluster: Cluster, release: Release, tmp_path: Path
) -> None:
    # Why the processes get token kubeconfigs: with `as:` the official client (and kopf) would
    # silently act as admin, and an RBAC "proof" would prove nothing.
    account = ServiceAccountRef(NAMESPACE, f"{RELEASE}-webhook")
    impersonating = impersonating_kubeconfig(cluster.kubeconfig, account, tmp_path / "as.kubeconfig")
    assert whoami(impersonating) != account.username
    username = kubectl(impersonating, "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}").stdout
    assert username == account.username


# ---- the operator's processes, run here as the chart's ServiceAccounts ------------------


def test_webhook_process_serves_with_the_chart_identity_and_certificate(
    cluster: Cluster, release: Release, tokens: dict[str, Path], tmp_path: Path
) -> None:
    secret = cluster.core.read_namespaced_secret(f"{RELEASE}-webhook-tls", NAMESPACE).data
    for key in ("tls.crt", "tls.key"):
        (tmp_path / key).write_bytes(base64.b64decode(secret[key]))
    port = free_port()
    process = processes.start(
        [
            "webhook",
            "--host=127.0.0.1",
            f"--port={port}",
            f"--metrics-port={free_port()}",
            f"--namespace={NAMESPACE}",
            f"--tls-cert-file={tmp_path / 'tls.crt'}",
            f"--tls-key-file={tmp_path / 'tls.key'}",
        ],
        tokens["webhook"],
        tmp_path / "webhook.log",
        NAMESPACE,
    )
    try:
        service_name = f"{RELEASE}-webhook.{NAMESPACE}.svc"
        ca_pem = base64.b64decode(secret["ca.crt"])

        def ready() -> bool:
            process.alive()
            try:
                return processes.https_status(port, ca_pem, service_name, "/readyz") == 200
            except OSError:
                return False

        # /readyz turns 200 only after the policies and namespaces were listed with this identity.
        wait_for(ready, 60, what="the webhook process to be ready as the chart's webhook ServiceAccount")
        time.sleep(1)  # let kopf's watches start too
        process.alive()
        assert not processes.forbidden(process.log()), process.log()[-3000:]
    finally:
        process.stop()


def test_controller_process_runs_with_the_chart_identity(
    cluster: Cluster, release: Release, tokens: dict[str, Path], tmp_path: Path
) -> None:
    metrics_port = free_port()
    process = processes.start(
        ["controller", f"--namespace={NAMESPACE}", f"--metrics-port={metrics_port}"],
        tokens["controller"],
        tmp_path / "controller.log",
        NAMESPACE,
    )
    try:
        # The digest key Secret appears only if the controller could create it in its namespace.
        wait_for(
            lambda: (
                process.alive()
                and cluster.core.read_namespaced_secret("production-policy-digest-key", NAMESPACE)
            ),
            60,
            what="the controller to create its digest key",
        )
        time.sleep(2)  # its watches start and list everything they watch
        process.alive()
        assert not processes.forbidden(process.log()), process.log()[-3000:]
    finally:
        process.stop()


# ---- upgrade, the uninstall hook, uninstall ---------------------------------------------


def _refused_by_the_enforce_policy(cluster: Cluster, namespace: str) -> bool:
    """Whether the API server itself (the compiled VAP, not a webhook) refuses a violating Deployment."""
    big = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "big"},
        "spec": {
            "selector": {"matchLabels": {"app": "big"}},
            "template": {
                "metadata": {"labels": {"app": "big"}},
                "spec": {
                    "containers": [
                        {"name": "app", "image": "example/app:1", "resources": {"limits": {"memory": "16Gi"}}}
                    ]
                },
            },
        },
    }
    answer = dry_run_create(cluster.api, namespace, big)
    return answer.status == 403 and f"ValidatingAdmissionPolicy '{ENFORCE_NAME}'" in answer.message


def test_upgrade_leaves_the_compiled_admission_policies_enforcing(
    cluster: Cluster,
    release: Release,
    tokens: dict[str, Path],
    make_policy: Any,
    namespace: str,
    tmp_path: Path,
) -> None:
    # The chart creates the compiled objects (of no policy) and the controller fills them in; a
    # `helm upgrade` must not put the chart's empty content back under the running controller.
    engine = release_engine(release_objects(release))
    assert engine in ("apiserver", "both")
    # The policy webhook points at a pod that does not serve: leave it out for the policy's create
    # (the upgrade puts it back, as Helm puts back what was deleted behind its back).
    admission = client.AdmissionregistrationV1Api(cluster.api)
    validating = admission.read_validating_webhook_configuration(CONFIGURATION_NAME)
    validating.webhooks = [w for w in validating.webhooks if not w.name.startswith("policies.")]
    admission.replace_validating_webhook_configuration(CONFIGURATION_NAME, validating)
    make_policy(
        "chart-upgrade", {"match": {"namespaces": [namespace]}, "resources": {"max": {"memory": "8Gi"}}}
    )
    process = processes.start(
        [
            "controller",
            f"--namespace={NAMESPACE}",
            f"--metrics-port={free_port()}",
            f"--admission-engine={engine}",
        ],
        tokens["controller"],
        tmp_path / "controller.log",
        NAMESPACE,
    )
    try:
        wait_for(
            lambda: process.alive() and _refused_by_the_enforce_policy(cluster, namespace),
            90,
            what="the API server to enforce the compiled policy",
        )
        # Helm created the objects and owns their fields: the controller's first start takes them
        # over, and says so without a warning (it is the normal hand-over, not a problem).
        wait_for(
            lambda: processes.takeovers(process.log()), 30, what="the controller to take over Helm's fields"
        )
        taken = processes.takeovers(process.log())
        assert all(" INFO " in line and "['helm']" in line for line in taken), taken
        path = f"/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies/{ENFORCE_NAME}"
        written = call(cluster.api, "GET", path).body["spec"]
        release.upgrade()
        kept = call(cluster.api, "GET", path).body["spec"] == written
        print(f"right after helm upgrade, {ENFORCE_NAME} holds the spec the controller wrote: {kept}")
        # Well within the controller's periodic read-back (RESYNC_SECONDS, 5 minutes). The object
        # first: the API server reloads admission policies about once a second, so a dry run just
        # after the upgrade may still meet the policy as it was before it.
        wait_for(
            lambda: call(cluster.api, "GET", path).body["spec"] == written,
            60,
            what=f"{ENFORCE_NAME} to hold the compiled spec after helm upgrade",
        )
        wait_for(
            lambda: process.alive() and _refused_by_the_enforce_policy(cluster, namespace),
            60,
            what="the API server to enforce the compiled policy after helm upgrade",
        )
        assert not processes.forbidden(process.log()), process.log()[-3000:]
        assert not [line for line in processes.takeovers(process.log()) if " INFO " not in line]
    finally:
        process.stop()


def test_upgrade_keeps_the_certificates(cluster: Cluster, release: Release) -> None:
    before = cluster.core.read_namespaced_secret(f"{RELEASE}-webhook-tls", NAMESPACE).data
    bundles = ca_bundles(cluster)
    assert bundles == {before["ca.crt"]}
    started = time.monotonic()
    release.upgrade("webhook.podAnnotations.upgraded=yes")
    print(f"helm upgrade --wait: {time.monotonic() - started:.1f}s")
    assert cluster.core.read_namespaced_secret(f"{RELEASE}-webhook-tls", NAMESPACE).data == before
    assert ca_bundles(cluster) == bundles
    # The upgrade did change something: the webhook pods were replaced.
    template = cluster.apps.read_namespaced_deployment(f"{RELEASE}-webhook", NAMESPACE).spec.template
    assert template.metadata.annotations == {"upgraded": "yes"}


def test_the_uninstall_hook_command_deletes_exactly_the_webhook_configurations(
    cluster: Cluster, helm: Helm, release: Release, tmp_path: Path
) -> None:
    # Under KWOK the hook's Job never really runs, so run its command here, as its ServiceAccount.
    hook_objects = [
        o
        for o in helm.template(RELEASE, NAMESPACE)
        if is_hook(o) and o["metadata"]["labels"]["app.kubernetes.io/component"] == "cleanup"
    ]
    rbac_objects = [o for o in hook_objects if o["kind"] != "Job"]
    manifest = yaml.safe_dump_all(rbac_objects)
    kubectl(cluster.kubeconfig, "apply", "--server-side", "-f", "-", stdin=manifest)
    try:
        account = ServiceAccountRef(NAMESPACE, one(rbac_objects, "ServiceAccount")["metadata"]["name"])
        kubeconfig = token_kubeconfig(cluster.kubeconfig, account, tmp_path / "cleanup.kubeconfig")
        assert not can_i(
            kubeconfig,
            "delete",
            "validatingwebhookconfigurations",
            "admissionregistration.k8s.io",
            name="someone-elses",
        )
        job = one(hook_objects, "Job")["spec"]["template"]["spec"]["containers"][0]
        process = processes.start(job["args"], kubeconfig, tmp_path / "cleanup.log", NAMESPACE)
        assert process.popen.wait(60) == 0, process.log()
        assert not webhook_configurations(cluster)
    finally:
        kubectl(cluster.kubeconfig, "delete", "-f", "-", stdin=manifest, check=False)
    # Helm puts back what was deleted behind its back, with the same CA.
    bundles = {cluster.core.read_namespaced_secret(f"{RELEASE}-webhook-tls", NAMESPACE).data["ca.crt"]}
    release.upgrade()
    assert set(webhook_configurations(cluster)) == set(webhooks.KINDS)
    assert ca_bundles(cluster) == bundles


def test_uninstall_leaves_no_webhook_configuration(cluster: Cluster, release: Release) -> None:
    objects = release_objects(release)
    assert webhook_configurations(cluster)
    started = time.monotonic()
    release.run("uninstall", RELEASE, "-n", NAMESPACE, "--wait", "--timeout", "120s")
    print(f"helm uninstall --wait (pre-delete hook included): {time.monotonic() - started:.1f}s")
    assert_uninstalled(cluster, objects)
    hook_leftovers = kubectl(
        cluster.kubeconfig,
        "get",
        "jobs,serviceaccounts",
        "-n",
        NAMESPACE,
        "-o",
        "name",
        "-l",
        "app.kubernetes.io/component=cleanup",
    ).stdout.split()
    assert not hook_leftovers
    # Kept on purpose: the CRD (Helm never deletes CRDs, so policies survive a reinstall).
    client.ApiextensionsV1Api(cluster.api).read_custom_resource_definition(
        "productionpolicies.productionpolicy.dev"
    )
