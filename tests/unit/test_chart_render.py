"""The Helm chart, rendered offline: lint, drift from its Python sources, and its safety properties.

Needs only the helm binary (cached by `make cluster-bins`); no cluster.
"""

from __future__ import annotations

import base64
import datetime
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from devtools import chartgen
from devtools.devcluster import binaries
from production_policy import cli
from production_policy.admission import configuration, server
from production_policy.engine.apiserver import ENGINES, InstallSettings, compile_policies
from production_policy.engine.apiserver.canary import canary_objects
from tests.support import rbac
from tests.support.helm import CHART, Helm, by_kind, is_hook, one
from tests.support.paths import REPO

NAMESPACE = "pp-system"
RELEASE = "production-policy"
CUSTOM = (
    "excludeNamespaces={legacy,batch}",
    "webhook.failurePolicy.validating=Ignore",
    "webhook.timeoutSeconds=3",
    "webhook.service.port=8443",
    "controller.probeWatch.restarts=2",
    "controller.probeWatch.unreadySeconds=45",
)
VALUE_SETS = {
    "default": (),
    "selfsigned": ("certManager.enabled=false",),
    "certmanager": ("certManager.enabled=true",),
    "custom": CUSTOM,
}


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    return Helm(tmp_path_factory.mktemp("helm"))


@pytest.fixture(scope="module")
def rendered(helm: Helm) -> dict[str, list[dict[str, Any]]]:
    return {name: helm.template(RELEASE, NAMESPACE, values) for name, values in VALUE_SETS.items()}


def _pod_specs(objects: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    specs = []
    for obj in objects:
        if obj["kind"] in ("Deployment", "Job"):
            specs.append((obj["metadata"]["name"], obj["spec"]["template"]["spec"]))
        elif obj["kind"] == "Pod":
            specs.append((obj["metadata"]["name"], obj["spec"]))
    return specs


# ---- lint and drift ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values", [(), ("certManager.enabled=true",), CUSTOM], ids=["default", "certmanager", "custom"]
)
def test_helm_lint_is_clean(helm: Helm, values: tuple[str, ...]) -> None:
    args = ["lint", "--strict", str(CHART), "--namespace", NAMESPACE]
    for assignment in values:
        args += ["--set", assignment]
    out = helm.run(*args).stdout
    assert "1 chart(s) linted, 0 chart(s) failed" in out
    assert not [line for line in out.splitlines() if line.startswith("[")], out  # no INFO/WARNING/ERROR


def test_helm_template_and_lint_need_no_kube_version(helm: Helm) -> None:
    # As a person types them: helm built with Kubernetes v1.20 assumed refuses the chart's
    # kubeVersion (>= 1.29) here.
    rendered = helm.run("template", str(CHART))
    assert "kind: Deployment" in rendered.stdout
    assert "1 chart(s) linted, 0 chart(s) failed" in helm.run("lint", str(CHART)).stdout


def test_a_new_helm_recipe_is_a_new_cache_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    # The cache is keyed by what goes into the build: a helm stamped with another Kubernetes
    # version must be rebuilt, not reused from the old directory.
    before = binaries._cache_dir("helm", "v3.22.0")
    monkeypatch.setattr(binaries, "HELM_ASSUMED_KUBERNETES", "v1.99.0")
    assert binaries._cache_dir("helm", "v3.22.0") != before
    assert "-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=99" in binaries._helm_ldflags("v3.22.0")


def test_generated_chart_files_are_current() -> None:
    stale = chartgen.stale_files(REPO, CHART)
    assert not stale, f"run `python -m devtools.chartgen` (stale: {[str(p) for p in stale]})"


def test_chart_crds_are_the_repository_crds() -> None:
    repo_crds = {p.name: p.read_bytes() for p in (REPO / "crds").glob("*.yaml")}
    chart_crds = {p.name: p.read_bytes() for p in (CHART / "crds").glob("*")}
    assert repo_crds, "crds/ holds no CRD yet: `make generate`"
    assert chart_crds == repo_crds


def test_app_version_is_the_package_version() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert chart["appVersion"] == project["version"]


# ---- webhook configurations: what Python builds, with the chart's values ----------------


def _expected_configurations(
    objects: list[dict[str, Any]],
    namespace: str,
    excluded: tuple[str, ...],
    validating: str,
    timeout: int,
    port: int,
    ca_bundle: str,
    engine: str = "webhook",
) -> list[dict[str, Any]]:
    labels = one(objects, "MutatingWebhookConfiguration")["metadata"]["labels"]
    settings = configuration.WebhookSettings(
        operator_namespace=namespace,
        excluded_namespaces=excluded,
        validating_failure_policy=validating,
        mutating_failure_policy="Ignore",
        timeout_seconds=timeout,
        labels=labels,
    )
    service = one(objects, "Service")["metadata"]["name"]
    client_config = configuration.service_client_config(namespace, service, port, ca_bundle)
    return configuration.build_configurations(settings, client_config, engine)


def _webhook_configurations(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return by_kind(objects, "MutatingWebhookConfiguration") + by_kind(
        objects, "ValidatingWebhookConfiguration"
    )


@pytest.mark.parametrize(
    ("value_set", "excluded", "validating", "timeout", "port"),
    [
        ("default", (), "Fail", 5, 443),
        ("custom", ("legacy", "batch"), "Ignore", 3, 8443),
    ],
)
def test_webhook_configurations_are_what_python_builds(
    rendered: dict[str, list[dict[str, Any]]],
    value_set: str,
    excluded: tuple[str, ...],
    validating: str,
    timeout: int,
    port: int,
) -> None:
    objects = rendered[value_set]
    ca_bundle = one(objects, "Secret", "-tls")["data"]["ca.crt"]
    expected = _expected_configurations(objects, NAMESPACE, excluded, validating, timeout, port, ca_bundle)
    assert _webhook_configurations(objects) == expected


def test_cert_manager_injects_the_ca_bundle_instead(rendered: dict[str, list[dict[str, Any]]]) -> None:
    objects = rendered["certmanager"]
    assert not [s for s in by_kind(objects, "Secret") if s["metadata"]["name"].endswith("-tls")]
    serving = one(objects, "Certificate", "-webhook-tls")
    webhook = one(objects, "Deployment", "-webhook")
    tls_volume = next(v for v in webhook["spec"]["template"]["spec"]["volumes"] if v["name"] == "tls")
    assert serving["spec"]["secretName"] == tls_volume["secret"]["secretName"]
    service = one(objects, "Service")["metadata"]["name"]
    assert f"{service}.{NAMESPACE}.svc" in serving["spec"]["dnsNames"]
    # The chart's own chain: self-signed root -> CA Issuer -> serving certificate.
    assert serving["spec"]["issuerRef"]["name"] == one(objects, "Issuer", "-ca")["metadata"]["name"]
    configs = _webhook_configurations(objects)
    for config in configs:
        annotations = config["metadata"].pop("annotations")
        assert annotations == {"cert-manager.io/inject-ca-from": f"{NAMESPACE}/{serving['metadata']['name']}"}
    expected = _expected_configurations(objects, NAMESPACE, (), "Fail", 5, 443, "")
    for config in expected:
        for webhook_entry in config["webhooks"]:
            del webhook_entry["clientConfig"]["caBundle"]  # cert-manager's cainjector owns it
    assert configs == expected


def test_cert_manager_with_an_existing_issuer(helm: Helm) -> None:
    objects = helm.template(
        RELEASE,
        NAMESPACE,
        [
            "certManager.enabled=true",
            "certManager.issuerRef.name=corp",
            "certManager.issuerRef.kind=ClusterIssuer",
        ],
    )
    assert not by_kind(objects, "Issuer")
    assert one(objects, "Certificate")["spec"]["issuerRef"] == {"name": "corp", "kind": "ClusterIssuer"}


def test_generated_ca_signs_a_certificate_for_the_service(rendered: dict[str, list[dict[str, Any]]]) -> None:
    objects = rendered["default"]
    data = {key: base64.b64decode(value) for key, value in one(objects, "Secret", "-tls")["data"].items()}
    ca = x509.load_pem_x509_certificate(data["ca.crt"])
    leaf = x509.load_pem_x509_certificate(data["tls.crt"])
    key = serialization.load_pem_private_key(data["tls.key"], password=None)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    ca_key = ca.public_key()
    assert isinstance(ca_key, rsa.RSAPublicKey)
    assert leaf.signature_hash_algorithm is not None
    ca_key.verify(
        leaf.signature, leaf.tbs_certificate_bytes, padding.PKCS1v15(), leaf.signature_hash_algorithm
    )
    assert key.public_key().public_numbers() == leaf.public_key().public_numbers()  # type: ignore[union-attr]
    service = one(objects, "Service")["metadata"]["name"]
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName
    )
    assert f"{service}.{NAMESPACE}.svc" in names
    assert leaf.not_valid_after_utc - datetime.datetime.now(datetime.UTC) > datetime.timedelta(days=3000)
    for config in _webhook_configurations(objects):
        assert {w["clientConfig"]["caBundle"] for w in config["webhooks"]} == {
            base64.b64encode(data["ca.crt"]).decode()
        }


# ---- workloads --------------------------------------------------------------------------


@pytest.mark.parametrize("value_set", ["default", "certmanager"])
def test_every_pod_is_hardened(rendered: dict[str, list[dict[str, Any]]], value_set: str) -> None:
    specs = _pod_specs(rendered[value_set])
    assert {name.rsplit("-", 1)[-1] for name, _ in specs} >= {"webhook", "controller", "cleanup"}
    for name, spec in specs:
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True and pod["runAsUser"] > 0, name
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            assert "add" not in context["capabilities"], name
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), name
            assert "memory" in resources["limits"], name


def test_operator_containers_have_probes(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for deployment in by_kind(rendered["default"], "Deployment"):
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                assert probe in container, f"{deployment['metadata']['name']}: no {probe}"


def test_webhook_is_highly_available(rendered: dict[str, list[dict[str, Any]]]) -> None:
    objects = rendered["default"]
    webhook = one(objects, "Deployment", "-webhook")
    assert webhook["spec"]["replicas"] == 2
    assert webhook["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod_labels = webhook["spec"]["template"]["metadata"]["labels"]
    spread = webhook["spec"]["template"]["spec"]["topologySpreadConstraints"]
    by_node = next(c for c in spread if c["topologyKey"] == "kubernetes.io/hostname")
    assert by_node["whenUnsatisfiable"] == "DoNotSchedule"
    assert by_node["labelSelector"]["matchLabels"].items() <= pod_labels.items()
    budget = one(objects, "PodDisruptionBudget", "-webhook")
    assert budget["spec"]["minAvailable"] == 1
    assert budget["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    service = one(objects, "Service")
    assert service["spec"]["selector"].items() <= pod_labels.items()
    container = webhook["spec"]["template"]["spec"]["containers"][0]
    assert service["spec"]["ports"][0]["targetPort"] in {p["name"] for p in container["ports"]}
    controller = one(objects, "Deployment", "-controller")
    assert (
        not service["spec"]["selector"].items()
        <= controller["spec"]["template"]["metadata"]["labels"].items()
    )


def test_a_stopping_webhook_replica_is_not_killed_before_it_has_drained(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    webhook = one(rendered["default"], "Deployment", "-webhook")
    grace = webhook["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    # The drain, then kopf's own shutdown (its watches stop) and the server's cleanup.
    assert grace >= server.DRAIN_SECONDS + 15


def test_controller_runs_a_leader_and_a_standby(rendered: dict[str, list[dict[str, Any]]]) -> None:
    objects = rendered["default"]
    controller = one(objects, "Deployment", "-controller")
    assert controller["spec"]["replicas"] == 2
    assert controller["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    container = controller["spec"]["template"]["spec"]["containers"][0]
    assert "--no-leader-election" not in container["args"]  # on by default
    assert {e["name"] for e in container["env"]} >= {"POD_NAME", "POD_NAMESPACE"}  # identity, Lease
    pod_labels = controller["spec"]["template"]["metadata"]["labels"]
    budget = one(objects, "PodDisruptionBudget", "-controller")
    assert budget["spec"]["maxUnavailable"] == 1
    assert budget["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    webhook = one(objects, "Deployment", "-webhook")
    assert (
        not budget["spec"]["selector"]["matchLabels"].items()
        <= webhook["spec"]["template"]["metadata"]["labels"].items()
    )


def _controller_args(objects: list[dict[str, Any]]) -> list[str]:
    args: list[str] = one(objects, "Deployment", "-controller")["spec"]["template"]["spec"]["containers"][0][
        "args"
    ]
    return args


def _reads_events(objects: list[dict[str, Any]]) -> bool:
    role = one(objects, "ClusterRole", "-controller")
    return any(
        "" in rule.get("apiGroups", []) and "events" in rule.get("resources", []) and "watch" in rule["verbs"]
        for rule in role["rules"]
    )


def test_the_probe_watch_thresholds_reach_the_controller_and_off_means_no_event_reads(
    helm: Helm, rendered: dict[str, list[dict[str, Any]]]
) -> None:
    parser = cli.build_parser()
    custom = cli._controller_options(parser.parse_args(_controller_args(rendered["custom"])))
    assert custom.probe_watch
    assert (custom.probe_thresholds.restarts, custom.probe_thresholds.unready_seconds) == (2, 45.0)
    assert _reads_events(rendered["default"])
    off = helm.template(RELEASE, NAMESPACE, ["controller.probeWatch.enabled=false"])
    assert not cli._controller_options(parser.parse_args(_controller_args(off))).probe_watch
    assert not _reads_events(off)


def _operator_containers(objects: list[dict[str, Any]]) -> list[tuple[str, list[str]]]:
    return [
        (container["name"], container["args"])
        for _, spec in _pod_specs(objects)
        for container in spec["containers"]
        if "args" in container
    ]


@pytest.mark.parametrize("value_set", ["default", "custom"])
def test_every_container_command_line_is_accepted_by_the_cli(
    rendered: dict[str, list[dict[str, Any]]], value_set: str
) -> None:
    parser = cli.build_parser()
    containers = _operator_containers(rendered[value_set])
    assert {name for name, _ in containers} == {"webhook", "controller", "cleanup"}
    for name, args in containers:
        try:
            parsed = parser.parse_args(args)
        except SystemExit:  # argparse has printed why: an unknown command or flag, a bad value
            pytest.fail(f"the chart's {name} container runs `production-policy {' '.join(args)}`: refused")
        assert parsed.command == args[0]
        if name in ("webhook", "controller"):
            assert parsed.namespace == NAMESPACE
            assert parsed.exclude_namespace == (["legacy", "batch"] if value_set == "custom" else [])


def test_every_object_carries_the_standard_labels(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for value_set in ("default", "certmanager"):
        for obj in rendered[value_set]:
            labels = obj["metadata"]["labels"]
            assert labels["app.kubernetes.io/name"] == "production-policy", obj["metadata"]["name"]
            assert labels["app.kubernetes.io/instance"] == RELEASE
            assert labels["app.kubernetes.io/managed-by"] == "Helm"
            assert labels["app.kubernetes.io/part-of"] == "production-policy"
            assert (
                labels["app.kubernetes.io/version"]
                == yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
            )
            assert "app.kubernetes.io/component" in labels
            assert labels["helm.sh/chart"].startswith("production-policy-")


# ---- RBAC -------------------------------------------------------------------------------


def test_rbac_is_exactly_what_the_processes_need(rendered: dict[str, list[dict[str, Any]]]) -> None:
    objects = rendered["default"]
    roles = by_kind(objects, "ClusterRole") + by_kind(objects, "Role")
    found = {
        (role["kind"], role["metadata"]["labels"]["app.kubernetes.io/component"]): rbac.flatten(role["rules"])
        for role in roles
    }
    assert found == rbac.EXPECTED
    assert not rbac.wildcards(set().union(*found.values()))


def test_each_binding_grants_its_role_to_its_own_service_account(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    objects = rendered["default"]
    accounts = {sa["metadata"]["name"] for sa in by_kind(objects, "ServiceAccount")}
    for binding in by_kind(objects, "ClusterRoleBinding") + by_kind(objects, "RoleBinding"):
        component = binding["metadata"]["labels"]["app.kubernetes.io/component"]
        assert [s["name"] for s in binding["subjects"]] == [
            binding["roleRef"]["name"].removesuffix("-digest-key")
        ]
        assert binding["subjects"][0]["name"].endswith(f"-{component}")
        assert binding["subjects"][0]["name"] in accounts
    pods = {name: spec.get("serviceAccountName") for name, spec in _pod_specs(objects)}
    assert {sa for sa in pods.values() if sa} <= accounts
    test_pod = next(spec for name, spec in _pod_specs(objects) if name.endswith("-test-webhook"))
    assert test_pod["automountServiceAccountToken"] is False


def test_cleanup_hook_and_its_rbac_exist_only_during_uninstall(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    objects = rendered["default"]
    cleanup = [
        obj for obj in objects if obj["metadata"]["labels"]["app.kubernetes.io/component"] == "cleanup"
    ]
    assert {obj["kind"] for obj in cleanup} == {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Job"}
    for obj in cleanup:
        assert obj["metadata"]["annotations"]["helm.sh/hook"] == "pre-delete", obj["kind"]
    job = one(cleanup, "Job")
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    assert cli.build_parser().parse_args(args).name == configuration.CONFIGURATION_NAME


def test_helm_test_pod_sees_only_the_ca(rendered: dict[str, list[dict[str, Any]]]) -> None:
    pod = one(rendered["default"], "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    volume = pod["spec"]["volumes"][0]["secret"]
    assert volume["items"] == [{"key": "ca.crt", "path": "ca.crt"}]
    service = one(rendered["default"], "Service")
    assert (
        f"https://{service['metadata']['name']}.{NAMESPACE}.svc:443/readyz"
        in pod["spec"]["containers"][0]["command"]
    )


def test_hooks_are_not_part_of_the_release_objects(rendered: dict[str, list[dict[str, Any]]]) -> None:
    kinds = {obj["kind"] for obj in rendered["default"] if not is_hook(obj)}
    assert kinds == {
        "ServiceAccount",
        "Secret",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "Service",
        "Deployment",
        "PodDisruptionBudget",
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    }


# ---- values the schema or the templates refuse ------------------------------------------


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("webhook.timeoutSeconds=10", "maximum"),
        ("webhook.replicas=1", "minimum"),
        ("webhook.failurePolicy.validating=Deny", "validating"),
        ("webhok.replicas=3", "additional properties"),
        ("webhook.replicas=3,webhook.podDisruptionBudget.minAvailable=3", "no node could ever be drained"),
        ("controller.replicas=0", "minimum"),
        ("excludeNamespaces={Not_A_Namespace}", "excludeNamespaces"),
    ],
)
def test_unsafe_values_are_refused(helm: Helm, assignment: str, message: str) -> None:
    args = [
        "template",
        RELEASE,
        str(CHART),
        "--namespace",
        NAMESPACE,
        "--set",
        assignment,
    ]
    proc = helm.run(*args, check=False)
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr


def test_generated_template_is_only_made_by_the_generator() -> None:
    text = (CHART / chartgen.TEMPLATE_FILE).read_text()
    assert text.startswith("{{/*\nGENERATED by `python -m devtools.chartgen`")
    # Sanity of the generator itself: it leaves no sentinel behind and renders both kinds, once
    # per admission.engine.
    assert text.count("---") == len(ENGINES) and "__PP_" not in text  # two documents per engine
    policies = (CHART / chartgen.POLICIES_TEMPLATE_FILE).read_text()
    assert policies.startswith("{{/*\nGENERATED by `python -m devtools.chartgen`") and "__PP_" not in policies


def test_generator_check_mode_reports_drift(tmp_path: Path) -> None:
    chart = tmp_path / "charts" / "production-policy"
    (tmp_path / "crds").mkdir()
    (tmp_path / "crds" / "x.yaml").write_text("kind: CustomResourceDefinition\n")
    assert chartgen.main(["--repo", str(tmp_path), "--check"]) == 1
    assert chartgen.main(["--repo", str(tmp_path)]) == 0
    assert chartgen.main(["--repo", str(tmp_path), "--check"]) == 0
    (chart / "crds" / "stale.yaml").write_text("old")
    assert chartgen.main(["--repo", str(tmp_path), "--check"]) == 1
    assert chartgen.main(["--repo", str(tmp_path)]) == 0
    assert sorted(p.name for p in (chart / "crds").iterdir()) == ["x.yaml"]
    assert (chart / "crds" / "x.yaml").read_text() == "kind: CustomResourceDefinition\n"


# ---- the chart passes the operator's own rules ------------------------------------------


@pytest.mark.parametrize("value_set", ["default", "certmanager"])
def test_chart_passes_production_policy_check_with_the_example_policies(
    rendered: dict[str, list[dict[str, Any]]],
    value_set: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    manifests = tmp_path / "chart.yaml"
    manifests.write_text(yaml.safe_dump_all(rendered[value_set]))
    policies = sorted(str(p) for p in (REPO / "examples" / "policies").glob("*.yaml"))
    assert policies, "examples/policies holds no policy"
    # --fail-on audit: not even an Audit-mode policy may find anything.
    status = cli.main(["check", "-f", str(manifests), "--policy", *policies, "--fail-on", "audit"])
    report = capsys.readouterr().out
    assert status == 0, report
    assert "4 workload(s): 4 compliant" in report, report


# ---- admission.engine ------------------------------------------------------------------------


def _engine_env(objects: list[dict[str, Any]]) -> str:
    controller = next(
        o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"].endswith("controller")
    )
    env = controller["spec"]["template"]["spec"]["containers"][0]["env"]
    return str(next(e["value"] for e in env if e["name"] == "PP_ADMISSION_ENGINE"))


COMPILED_KINDS = (
    "MutatingAdmissionPolicy",
    "MutatingAdmissionPolicyBinding",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
)


def test_the_engine_is_both_where_the_api_server_runs_admission_policies(helm: Helm) -> None:
    served = helm.template(
        RELEASE, NAMESPACE, (), "--api-versions", "admissionregistration.k8s.io/v1/MutatingAdmissionPolicy"
    )
    assert _engine_env(served) == "both"
    older = helm.template(RELEASE, NAMESPACE)
    assert _engine_env(older) == "webhook"
    assert not [o for o in older if o["kind"] in COMPILED_KINDS]


@pytest.mark.parametrize("engine", ENGINES)
def test_webhook_configurations_follow_the_engine(helm: Helm, engine: str) -> None:
    objects = helm.template(RELEASE, NAMESPACE, (f"admission.engine={engine}",))
    assert _engine_env(objects) == engine
    ca_bundle = one(objects, "Secret", "-tls")["data"]["ca.crt"]
    expected = _expected_configurations(objects, NAMESPACE, (), "Fail", 5, 443, ca_bundle, engine)
    assert _webhook_configurations(objects) == expected


@pytest.mark.parametrize("engine", ["apiserver", "both"])
def test_the_chart_creates_the_objects_the_controller_updates(helm: Helm, engine: str) -> None:
    objects = helm.template(RELEASE, NAMESPACE, (f"admission.engine={engine}", "excludeNamespaces={legacy}"))
    found = [o for o in objects if o["kind"] in COMPILED_KINDS]
    labels = found[0]["metadata"]["labels"]
    settings = InstallSettings(NAMESPACE, ("legacy",), "Fail", labels)
    expected = [*canary_objects(NAMESPACE, labels), *compile_policies([], settings).objects]

    def key(obj: dict[str, Any]) -> tuple[str, str]:
        return obj["kind"], obj["metadata"]["name"]

    assert sorted(found, key=key) == sorted(expected, key=key)  # Helm orders objects by kind
    # RBAC: exactly those names, and never create.
    roles = by_kind(objects, "ClusterRole") + by_kind(objects, "Role")
    granted: set[rbac.Permission] = set()
    for role in roles:
        if role["metadata"]["labels"]["app.kubernetes.io/component"] == "controller":
            granted |= rbac.flatten(role["rules"])
    admission = {p for p in granted if p[0] == "admissionregistration.k8s.io"}
    assert admission == rbac.COMPILED_POLICIES
    assert (
        granted
        == rbac.expected("apiserver")[("ClusterRole", "controller")] | rbac.EXPECTED[("Role", "controller")]
    )
    assert {name for p in admission for name in p[2] or ()} == {o["metadata"]["name"] for o in found}
