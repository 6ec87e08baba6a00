"""pytest wiring: the ``--cluster`` option and the fixtures every e2e test uses."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client, config

from tests.support.kube import wait_for

REPO = Path(__file__).resolve().parent.parent


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--cluster",
        choices=("local", "kind", "existing"),
        default="local",
        help="local: start etcd/kube-apiserver/kcm/scheduler/KWOK here (default); "
        "kind: a kind cluster through pytest-kind (needs Docker); existing: the current kubeconfig",
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
    from production_policy.devcluster.binaries import BinaryError, ensure_binaries
    from production_policy.devcluster.controlplane import ControlPlane

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
