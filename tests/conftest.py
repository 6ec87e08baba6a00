"""pytest wiring: the ``--cluster`` option and the fixtures every e2e test uses."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from devtools.devcluster.processes import stop_process
from tests.support.kube import wait_for
from tests.support.metrics import scrape

REPO = Path(__file__).resolve().parent.parent


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--cluster",
        choices=("local", "kind", "existing"),
        default="local",
        help="local: start etcd/kube-apiserver/kcm/scheduler/KWOK here (default); "
        "kind: a kind cluster through pytest-kind (needs Docker); existing: the current kubeconfig",
    )
    parser.addoption(
        "--operator-identity",
        choices=("admin", "chart"),
        default=os.environ.get("PP_OPERATOR_IDENTITY", "admin"),
        help="who the operator processes started by e2e tests are: admin (default), or the Helm chart's "
        "ServiceAccounts with exactly the chart's RBAC (env PP_OPERATOR_IDENTITY)",
    )


@dataclass
class Cluster:
    """What a test needs of a cluster: where it is and how to reach it."""

    kind: str
    kubeconfig: Path
    api: client.ApiClient
    plane: object | None = None  # the ControlPlane, for --cluster=local only

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    @property
    def apps(self) -> client.AppsV1Api:
        return client.AppsV1Api(self.api)


def _require_cluster() -> bool:
    # `make test` sets this: there, a control plane that cannot start is a failure, not a skip.
    return os.environ.get("PP_REQUIRE_CLUSTER") == "1"


@pytest.fixture(scope="session")
def cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    mode = request.config.getoption("--cluster")
    if mode == "existing":
        kubeconfig = Path(os.environ.get("KUBECONFIG", Path.home() / ".kube" / "config"))
        yield Cluster("existing", kubeconfig, config.new_client_from_config(str(kubeconfig)))
        return
    if mode == "kind":
        if (
            shutil.which("docker") is None
            or subprocess.run(["docker", "info"], capture_output=True).returncode
        ):
            pytest.skip("--cluster=kind needs a running Docker engine, and there is none on this machine")
        kind_plugin = pytest.importorskip("pytest_kind", reason="--cluster=kind needs pytest-kind installed")
        kind = kind_plugin.KindCluster("production-policy")
        kind.create()
        try:
            yield Cluster(
                "kind", Path(kind.kubeconfig_path), config.new_client_from_config(str(kind.kubeconfig_path))
            )
        finally:
            kind.delete()
        return
    from devtools.devcluster.binaries import BinaryError, ensure_binaries
    from devtools.devcluster.controlplane import ControlPlane

    try:
        binaries = ensure_binaries(build=False)
    except BinaryError as exc:
        if _require_cluster():
            raise
        pytest.skip(f"no local control plane: {exc}")
    plane = ControlPlane(workdir=tmp_path_factory.mktemp("cluster"), binaries=binaries)
    plane.start()
    try:
        yield Cluster("local", plane.kubeconfig, config.new_client_from_config(str(plane.kubeconfig)), plane)
    finally:
        plane.stop()


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace per test, with its default ServiceAccount (pods need it), deleted after."""
    name = f"t-{request.node.name[:40].lower().replace('_', '-').strip('-')}-{uuid.uuid4().hex[:5]}"
    name = "".join(ch for ch in name if ch.isalnum() or ch == "-")
    cluster.core.create_namespace({"metadata": {"name": name}})
    wait_for(lambda: cluster.core.read_namespaced_service_account("default", name), 30, what="default SA")
    yield name
    cluster.core.delete_namespace(name)


CRD_FILE = REPO / "crds" / "productionpolicies.productionpolicy.dev.yaml"


@pytest.fixture(scope="session")
def crd(cluster: Cluster) -> dict[str, object]:
    """The generated ProductionPolicy CRD, applied and Established."""
    import yaml
    from kubernetes.client.rest import ApiException

    manifest = yaml.safe_load(CRD_FILE.read_text())
    extensions = client.ApiextensionsV1Api(cluster.api)
    try:
        extensions.create_custom_resource_definition(manifest)
    except ApiException as exc:
        if exc.status != 409:
            raise
        current = extensions.read_custom_resource_definition(manifest["metadata"]["name"])
        manifest["metadata"]["resourceVersion"] = current.metadata.resource_version
        extensions.replace_custom_resource_definition(manifest["metadata"]["name"], manifest)

    def established() -> bool:
        status = extensions.read_custom_resource_definition(manifest["metadata"]["name"]).status
        return any(c.type == "Established" and c.status == "True" for c in (status.conditions or []))

    wait_for(established, 30, what="the CRD to be Established")
    return manifest


OPERATOR_NAMESPACE = "production-policy"
EXCLUDED_NAMESPACE = "legacy-excluded"


@dataclass
class DevOperator:
    """A running ``production-policy run --dev`` process."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    metrics_port: int

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def metrics(self) -> dict[str, float]:
        return scrape(self.metrics_port)


def start_dev_operator(
    cluster: Cluster, log_path: Path, extra_env: dict[str, str] | None = None
) -> DevOperator:
    """Start ``run --dev`` against the test cluster and wait until the API server uses its webhooks."""
    from devtools.devcluster.controlplane import free_port

    port, metrics_port = free_port(), free_port()
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig), **(extra_env or {})}
    argv = [
        sys.executable,
        "-m",
        "production_policy",
        "run",
        "--dev",
        f"--port={port}",
        f"--namespace={OPERATOR_NAMESPACE}",
        f"--exclude-namespace={EXCLUDED_NAMESPACE}",
        f"--metrics-port={metrics_port}",
    ]
    with log_path.open("ab") as log:
        process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    operator = DevOperator(process, port, log_path, metrics_port)
    admission = client.AdmissionregistrationV1Api(cluster.api)

    def ready() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"run --dev exited with {process.returncode}:\n{operator.log()[-3000:]}")
        names = {c.metadata.name for c in admission.list_validating_webhook_configuration().items}
        return "production-policy" in names and _https_ok(f"{operator.url}/readyz")

    wait_for(ready, 60, what="run --dev to serve and register its webhooks")
    return operator


def stop_dev_operator(operator: DevOperator) -> None:
    stop_process(operator.process)


def _https_ok(url: str) -> bool:
    import ssl
    import urllib.request

    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # only whether it answers; TLS itself is proven by the API server
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@pytest.fixture(scope="module")
def dev_operator(
    cluster: Cluster, crd: dict[str, object], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DevOperator]:
    """The whole operator (``run --dev``) for one test module; its webhook configurations removed after."""
    for name in (OPERATOR_NAMESPACE, EXCLUDED_NAMESPACE):
        if name not in {n.metadata.name for n in cluster.core.list_namespace().items}:
            cluster.core.create_namespace({"metadata": {"name": name}})
    operator = start_dev_operator(cluster, tmp_path_factory.mktemp("operator") / "operator.log")
    try:
        yield operator
    finally:
        stop_dev_operator(operator)
        _remove_webhook_configurations(cluster)


def _remove_webhook_configurations(cluster: Cluster) -> None:
    """A killed operator leaves its configurations behind; later tests must not inherit them."""
    from kubernetes.client.rest import ApiException

    admission = client.AdmissionregistrationV1Api(cluster.api)
    for delete in (
        admission.delete_mutating_webhook_configuration,
        admission.delete_validating_webhook_configuration,
    ):
        try:
            delete("production-policy")
        except ApiException as exc:
            if exc.status != 404:
                raise


@pytest.fixture
def make_policy(cluster: Cluster) -> Iterator[Any]:
    """Create ProductionPolicies for one test; all of them are deleted after it."""
    custom = client.CustomObjectsApi(cluster.api)
    created: list[str] = []

    def make(name: str, spec: dict[str, Any]) -> dict[str, Any]:
        body = {
            "apiVersion": "productionpolicy.dev/v1alpha1",
            "kind": "ProductionPolicy",
            "metadata": {"name": name},
            "spec": spec,
        }
        result: dict[str, Any] = custom.create_cluster_custom_object(
            "productionpolicy.dev", "v1alpha1", "productionpolicies", body
        )
        created.append(name)
        return result

    yield make
    for name in created:
        custom.delete_cluster_custom_object("productionpolicy.dev", "v1alpha1", "productionpolicies", name)


@pytest.fixture(scope="session")
def operator_identity(
    cluster: Cluster, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """Kubeconfig and namespace for the operator's processes; see tests/support/operator_identity.py."""
    from tests.support.operator_identity import operator_identity as identity

    mode = request.config.getoption("--operator-identity")
    with identity(mode, cluster.kubeconfig, OPERATOR_NAMESPACE, tmp_path_factory.mktemp("identity")) as found:
        yield found
