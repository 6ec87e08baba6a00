"""Each long-running command, started as a person starts it, says in one sentence what keeps it from
starting (no CRD, no API server, bad credentials, no permission, no certificate, a port in use), ends
with a non-zero code, and prints no traceback.

The real API server answers every probe: a second, bare one (etcd and kube-apiserver only) for the
missing CRD, so the session's cluster keeps its CRD; a closed port for the unreachable one; the
session's for the rest, with a ServiceAccount's bound token for the refusals.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from devtools.devcluster.controlplane import free_port
from production_policy import certs
from tests.support.cluster import Cluster, local_binaries, remove_webhook_configurations
from tests.support.identity import ServiceAccountRef, token_kubeconfig

pytestmark = pytest.mark.e2e

COMMANDS = ("webhook", "controller", "run --dev")
CRD_MISSING = (
    "the ProductionPolicy CRD (productionpolicies.productionpolicy.dev v1alpha1) is not installed in the"
    " cluster at {server} — run `kubectl apply -f crds/` or install the Helm chart"
)
CHART_RBAC = (
    " — the Helm chart's RBAC grants this to the {command} ServiceAccount: install the chart, or give this"
    " identity the same rules (charts/production-policy/templates/rbac.yaml)"
)
DEV_RBAC = (
    " — run --dev registers its own webhooks and runs the whole operator, so it needs a cluster admin's"
    " kubeconfig (in a shared cluster, install the Helm chart instead)"
)


def _run(command: str, kubeconfig: Path, *args: str) -> tuple[int, str]:
    """``production-policy COMMAND`` with this kubeconfig only, on free ports; (exit code, output)."""
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "POD_NAMESPACE": "production-policy"}
    env.pop("KUBERNETES_SERVICE_HOST", None)
    ports = [] if command == "controller" else [f"--port={free_port()}"]
    argv = [sys.executable, "-m", "production_policy", *command.split(), *ports, "--metrics-port=0", *args]
    # A command that wrongly starts would run on: the timeout ends the test as a failure.
    done = subprocess.run(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60, check=False, text=True
    )
    return done.returncode, done.stdout


def _said(command: str, kubeconfig: Path, *args: str) -> str:
    """What ``command`` said as it refused to start (asserted: exit code 1, one line, no traceback)."""
    code, output = _run(command, kubeconfig, *args)
    assert "Traceback" not in output, output
    assert code == 1, output
    assert output.endswith("\n") and output.count("\n") == 1, output
    return output.removesuffix("\n")


@pytest.fixture(scope="module")
def bare_apiserver(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A second API server (etcd and kube-apiserver only) where the CRD was never installed."""
    if request.config.getoption("--cluster") != "local":
        pytest.skip("needs a second local control plane (--cluster=local)")
    from devtools.devcluster.controlplane import ControlPlane

    binaries = local_binaries()
    plane = ControlPlane(workdir=tmp_path_factory.mktemp("bare"), binaries=binaries, apiserver_only=True)
    plane.start()
    try:
        yield plane
    finally:
        plane.stop()


@pytest.mark.parametrize("command", COMMANDS)
def test_without_the_crd(bare_apiserver: Any, command: str) -> None:
    said = _said(command, bare_apiserver.kubeconfig)
    assert said == f"production-policy {command}: " + CRD_MISSING.format(server=bare_apiserver.server)


@pytest.mark.parametrize("command", COMMANDS)
def test_without_an_api_server(tmp_path: Path, cluster: Cluster, command: str) -> None:
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    closed = f"https://127.0.0.1:{free_port()}"  # nothing listens there
    for entry in config["clusters"]:
        entry["cluster"]["server"] = closed
    kubeconfig = tmp_path / "closed.kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))
    assert _said(command, kubeconfig) == (
        f"production-policy {command}: cannot reach the API server at {closed} (from"
        f" KUBECONFIG={kubeconfig}): connection refused — check KUBECONFIG and that the API server is up"
    )


def test_without_a_kubeconfig(tmp_path: Path) -> None:
    missing = tmp_path / "absent"
    assert _said("controller", missing) == (
        f"production-policy controller: cannot read the credentials of KUBECONFIG={missing} (no such file"
        " or directory) — check KUBECONFIG"
    )


def test_with_credentials_the_api_server_refuses(tmp_path: Path, cluster: Cluster, crd: Any) -> None:
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    for entry in config["users"]:
        entry["user"] = {"token": "not-a-token-the-api-server-issued"}
    kubeconfig = tmp_path / "bad-token.kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))
    server = config["clusters"][0]["cluster"]["server"]
    assert _said("webhook", kubeconfig) == (
        f"production-policy webhook: the API server at {server} (from KUBECONFIG={kubeconfig}) refused the"
        " credentials (HTTP 401) — renew them, or check KUBECONFIG"
    )


@pytest.fixture
def nobody(cluster: Cluster, namespace: str, tmp_path: Path) -> Iterator[tuple[ServiceAccountRef, Path]]:
    """A ServiceAccount bound to nothing, and a kubeconfig with its bound token."""
    account = ServiceAccountRef(namespace, "nobody")
    cluster.core.create_namespaced_service_account(namespace, {"metadata": {"name": account.name}})
    yield account, token_kubeconfig(cluster.kubeconfig, account, tmp_path / "nobody.kubeconfig")
    remove_webhook_configurations(cluster)  # in case run --dev started after all


@pytest.mark.parametrize(
    ("command", "more"), [("webhook", 3), ("controller", 30), ("run --dev", 32)], ids=lambda v: str(v)
)
def test_without_permissions(
    nobody: tuple[ServiceAccountRef, Path], crd: Any, command: str, more: int
) -> None:
    account, kubeconfig = nobody
    remedy = DEV_RBAC if command == "run --dev" else CHART_RBAC.format(command=command)
    assert _said(command, kubeconfig) == (
        f"production-policy {command}: the ServiceAccount {account.namespace}/{account.name} may not list"
        f" productionpolicies.productionpolicy.dev cluster-wide (and {more} more permissions it needs)"
        + remedy
    )


def test_with_some_permissions_the_first_refused_is_named(
    cluster: Cluster, nobody: tuple[ServiceAccountRef, Path], crd: Any
) -> None:
    account, kubeconfig = nobody
    rbac = client.RbacAuthorizationV1Api(cluster.api)
    name = f"pp-precondition-{account.namespace}"
    rbac.create_cluster_role(
        {
            "metadata": {"name": name},
            "rules": [
                {
                    "apiGroups": ["productionpolicy.dev"],
                    "resources": ["productionpolicies"],
                    "verbs": ["list", "watch"],
                },
                {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list"]},
            ],
        }
    )
    subject = {"kind": "ServiceAccount", "name": account.name, "namespace": account.namespace}
    rbac.create_cluster_role_binding(
        {
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": [subject],
        }
    )
    try:
        assert _said("webhook", kubeconfig) == (
            f"production-policy webhook: the ServiceAccount {account.namespace}/{account.name} may not watch"
            " namespaces cluster-wide" + CHART_RBAC.format(command="webhook")
        )
    finally:
        rbac.delete_cluster_role_binding(name)
        rbac.delete_cluster_role(name)


def test_without_the_serving_certificate(tmp_path: Path, cluster: Cluster, crd: Any) -> None:
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    assert _said("webhook", cluster.kubeconfig, f"--tls-cert-file={cert}", f"--tls-key-file={key}") == (
        f"production-policy webhook: cannot load the serving certificate and key {cert} and {key} (no such"
        " file or directory) — mount them there, or pass --tls-cert-file and --tls-key-file"
    )


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port something else listens on."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield int(taken.getsockname()[1])


@pytest.mark.parametrize("command", COMMANDS)
def test_with_a_port_in_use(
    tmp_path: Path, cluster: Cluster, crd: Any, taken_port: int, command: str
) -> None:
    args = [f"--port={taken_port}"]
    flag = "--port"
    if command == "webhook":
        cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
        certs.issue_serving(certs.make_ca("test-ca"), ("127.0.0.1",)).write(cert, key)
        args += ["--host=127.0.0.1", f"--tls-cert-file={cert}", f"--tls-key-file={key}"]
    if command == "controller":
        args, flag = [f"--metrics-port={taken_port}"], "--metrics-port"
    host = "0.0.0.0" if command == "controller" else "127.0.0.1"
    try:
        said = _said(command, cluster.kubeconfig, *args)
    finally:
        remove_webhook_configurations(cluster)  # in case run --dev started after all
    remedy = f"choose another with {flag}" + (" (0 turns it off)" if flag == "--metrics-port" else "")
    assert said == (
        f"production-policy {command}: port {taken_port} on {host} is already in use — stop what listens"
        f" there or {remedy}"
    )
