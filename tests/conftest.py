"""pytest wiring: the command-line options and the fixtures every e2e test uses (helpers: tests/support/)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from kubernetes import client, config

from devtools.kind.engine import Engine
from tests.support.cluster import (
    EXCLUDED_NAMESPACE,
    OPERATOR_NAMESPACE,
    Cluster,
    DevOperator,
    KindNodes,
    apply_crd,
    local_binaries,
    remove_webhook_configurations,
    require_cluster,
    start_dev_operator,
    stop_dev_operator,
)
from tests.support.kube import wait_for
from tests.support.paths import REPO

# How hard the properties look. `quick` (the default, and `make unit`) tries 50 examples of each,
# `thorough` (`make test`: --hypothesis-profile=thorough) 500. No deadline in either: on a shared
# 2-core machine a slow example is the machine, not the code.
settings.register_profile("quick", max_examples=50, deadline=None)
settings.register_profile("thorough", max_examples=500, deadline=None)
settings.load_profile("quick")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--cluster",
        choices=("local", "kind", "existing"),
        default="local",
        help="local: start etcd/kube-apiserver/kcm/scheduler/KWOK here (default); "
        "kind: the kind_cluster fixture's (real kubelets; needs Docker); existing: the current kubeconfig",
    )
    parser.addoption(
        "--operator-identity",
        choices=("admin", "chart"),
        default=os.environ.get("PP_OPERATOR_IDENTITY", "admin"),
        help="who the operator processes started by e2e tests are: admin (default), or the Helm chart's "
        "ServiceAccounts with exactly the chart's RBAC (env PP_OPERATOR_IDENTITY)",
    )


@pytest.fixture(scope="session")
def cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    mode = request.config.getoption("--cluster")
    if mode == "existing":
        kubeconfig = Path(os.environ.get("KUBECONFIG", Path.home() / ".kube" / "config"))
        yield Cluster("existing", kubeconfig, config.new_client_from_config(str(kubeconfig)))
        return
    if mode == "kind":
        yield request.getfixturevalue("kind_cluster").cluster
        return
    from devtools.devcluster.controlplane import ControlPlane

    binaries = local_binaries()
    plane = ControlPlane(workdir=tmp_path_factory.mktemp("cluster"), binaries=binaries)
    plane.start()
    try:
        yield Cluster("local", plane.kubeconfig, config.new_client_from_config(str(plane.kubeconfig)), plane)
    finally:
        plane.stop()


@pytest.fixture(scope="session")
def kind_engine() -> Iterator[Engine]:
    """A Docker engine that runs privileged containers: found, or our dockerd, stopped at the end."""
    from devtools.kind.cluster import PREPARE_ERRORS, engine_for_kind

    try:
        engine = engine_for_kind()
    except PREPARE_ERRORS as exc:
        if require_cluster():
            raise
        pytest.skip(f"no Docker engine for kind: {exc}")
    try:
        yield engine
    finally:
        engine.stop()


@pytest.fixture(scope="session")
def kind_cluster(
    request: pytest.FixtureRequest, kind_engine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KindNodes]:
    """One kind cluster per session, created by pytest-kind's KindCluster from our kind, kubectl and
    node image (overrides the plugin's fixture of that name; its --cluster-name, --keep-cluster and
    --kind-image options apply)."""
    from devtools.kind.cluster import PREPARE_ERRORS, KindRun, prepare

    try:
        prepared = prepare(kind_engine, build=False)
    except PREPARE_ERRORS as exc:
        if require_cluster():
            raise
        pytest.skip(f"no kind cluster: {exc}")
    if request.config.getoption("kind_image"):
        prepared.node_image = request.config.getoption("kind_image")
    keep = request.config.getoption("keep_cluster")
    name = request.config.getoption("cluster_name")
    # A kept cluster's kubeconfig must outlive the session: pytest-kind's own place for it.
    kubeconfig = request.config.getoption("kubeconfig") or (
        REPO / ".pytest-kind" / name / "kubeconfig" if keep else None
    )
    run = KindRun(prepared, name, tmp_path_factory.mktemp("kind"), Path(kubeconfig) if kubeconfig else None)
    if run.exists() and not keep:
        run.delete()  # a cluster an interrupted run left; reused only when asked with --keep-cluster
    run.create()
    try:
        run.load(prepared.busybox_image)
        api = config.new_client_from_config(str(run.kubeconfig))
        yield KindNodes(Cluster("kind", run.kubeconfig, api), run, kind_engine, prepared.busybox_image)
    finally:
        if keep:
            kind_engine.leave_running()  # the kept cluster lives in it
            print(
                f"\nkept kind cluster {run.name}: KUBECONFIG={run.kubeconfig} DOCKER_HOST={kind_engine.host}"
            )
        else:
            run.delete()


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace per test, with its default ServiceAccount (pods need it), deleted after."""
    name = f"t-{request.node.name[:40].lower().replace('_', '-').strip('-')}-{uuid.uuid4().hex[:5]}"
    name = "".join(ch for ch in name if ch.isalnum() or ch == "-")
    cluster.core.create_namespace({"metadata": {"name": name}})
    wait_for(lambda: cluster.core.read_namespaced_service_account("default", name), 30, what="default SA")
    yield name
    cluster.core.delete_namespace(name)


@pytest.fixture(scope="session")
def crd(cluster: Cluster) -> dict[str, Any]:
    """The generated ProductionPolicy CRD, applied and Established."""
    return apply_crd(cluster)


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
        remove_webhook_configurations(cluster)


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
