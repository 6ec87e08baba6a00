"""The cluster a test runs against and the operator processes it starts there.

The fixtures that hand these out live in tests/conftest.py; this module holds what they are built from,
so tests import it like any other helper.
"""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from devtools.devcluster.binaries import Binaries, BinaryError, ensure_binaries
from devtools.devcluster.processes import stop_process
from devtools.kind.cluster import KindRun
from devtools.kind.engine import Engine
from production_policy.admission.configuration import CONFIGURATION_NAME
from production_policy.api.crd import CRD_FILE
from tests.support.kube import wait_for
from tests.support.metrics import scrape
from tests.support.paths import REPO

OPERATOR_NAMESPACE = "production-policy"
EXCLUDED_NAMESPACE = "legacy-excluded"


def require_cluster() -> bool:
    """Whether a cluster that cannot start is a failure rather than a skip (`make test` sets this)."""
    return os.environ.get("PP_REQUIRE_CLUSTER") == "1"


def local_binaries() -> Binaries:
    """The local control plane's binaries from the cache; skip (fail under PP_REQUIRE_CLUSTER=1) if absent."""
    try:
        return ensure_binaries(build=False)
    except BinaryError as exc:
        if require_cluster():
            raise
        pytest.skip(f"no local control plane: {exc}")


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


@dataclass
class KindNodes:
    """A kind cluster with real kubelets: the ``Cluster`` view of it plus what only kind has."""

    cluster: Cluster
    run: KindRun
    engine: Engine
    busybox: str  # the test image (busybox httpd, nc, sh), already loaded into the node


def apply_crd(cluster: Cluster) -> dict[str, Any]:
    """Create or replace the generated ProductionPolicy CRD and wait until it is Established."""
    manifest: dict[str, Any] = yaml.safe_load((REPO / CRD_FILE).read_text())
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
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # only whether it answers; TLS itself is proven by the API server
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def webhook_configurations(cluster: Cluster) -> dict[str, Any]:
    """Our MutatingWebhookConfiguration and ValidatingWebhookConfiguration, by kind, those that exist."""
    admission = client.AdmissionregistrationV1Api(cluster.api)
    found: dict[str, Any] = {}
    for kind, read in (
        ("MutatingWebhookConfiguration", admission.read_mutating_webhook_configuration),
        ("ValidatingWebhookConfiguration", admission.read_validating_webhook_configuration),
    ):
        try:
            found[kind] = read(CONFIGURATION_NAME)
        except ApiException as exc:
            if exc.status != 404:
                raise
    return found


def ca_bundles(cluster: Cluster) -> set[str]:
    """Every caBundle our webhook configurations hold (one, when they trust one CA)."""
    return {w.client_config.ca_bundle for c in webhook_configurations(cluster).values() for w in c.webhooks}


def remove_webhook_configurations(cluster: Cluster) -> None:
    """A killed operator leaves its configurations behind; later tests must not inherit them."""
    admission = client.AdmissionregistrationV1Api(cluster.api)
    for delete in (
        admission.delete_mutating_webhook_configuration,
        admission.delete_validating_webhook_configuration,
    ):
        try:
            delete(CONFIGURATION_NAME)
        except ApiException as exc:
            if exc.status != 404:
                raise
