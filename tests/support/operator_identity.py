"""Who the operator's processes are in e2e tests: the admin, or the Helm chart's ServiceAccounts.

``pytest --operator-identity=chart`` (or ``PP_OPERATOR_IDENTITY=chart``) makes the
``operator_identity`` fixture install the chart's ServiceAccounts and RBAC (nothing else: no
Deployments, no webhook configurations) and hand out kubeconfigs holding bound tokens of those
ServiceAccounts. A fixture that starts ``production-policy webhook`` or ``controller`` passes
``identity.env(component)`` to the process, so each e2e scenario runs with exactly the chart's
permissions. With the default ``admin`` the processes use the cluster's admin kubeconfig.

The ServiceAccounts cannot create webhook configurations (the chart owns those), so under the
chart identity the test registers them with the admin client (``kube.register_configurations``).
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from production_policy import certs
from production_policy.admission import configuration
from tests.support.helm import Helm, is_hook, kubectl
from tests.support.identity import ServiceAccountRef, token_kubeconfig, whoami

COMPONENTS = ("webhook", "controller")
IDENTITY_KINDS = ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")
RELEASE = "pp-identity"


@dataclass(frozen=True)
class OperatorIdentity:
    mode: str  # "admin" or "chart"
    namespace: str  # pass as --namespace: the chart's Role for the digest key lives here
    kubeconfigs: dict[str, Path]

    def kubeconfig(self, component: str) -> Path:
        return self.kubeconfigs[component]

    def env(self, component: str) -> dict[str, str]:
        """Environment for a ``production-policy <component>`` process (merge into os.environ)."""
        return {"KUBECONFIG": str(self.kubeconfig(component)), "POD_NAMESPACE": self.namespace}


def _ensure_namespace(admin_kubeconfig: Path, name: str) -> None:
    api = config.new_client_from_config(str(admin_kubeconfig))
    try:
        client.CoreV1Api(api).create_namespace({"metadata": {"name": name}})
    except ApiException as exc:
        if exc.status != 409:
            raise
    finally:
        api.close()


def chart_identity_objects(helm: Helm, namespace: str, release: str = RELEASE) -> list[dict[str, Any]]:
    """The chart's ServiceAccounts and RBAC for ``release`` in ``namespace`` (hooks left out)."""
    return [
        obj for obj in helm.template(release, namespace) if obj["kind"] in IDENTITY_KINDS and not is_hook(obj)
    ]


def service_accounts(objects: list[dict[str, Any]]) -> dict[str, ServiceAccountRef]:
    """The chart's ServiceAccounts by component (its app.kubernetes.io/component label)."""
    return {
        obj["metadata"]["labels"]["app.kubernetes.io/component"]: ServiceAccountRef(
            obj["metadata"]["namespace"], obj["metadata"]["name"]
        )
        for obj in objects
        if obj["kind"] == "ServiceAccount"
    }


def local_webhook(
    workdir: Path, port: int, settings: configuration.WebhookSettings
) -> tuple[list[str], list[dict[str, Any]]]:
    """What ``run --dev`` does for itself, for a separate ``production-policy webhook`` process.

    Returns the process's arguments (TLS files for 127.0.0.1 written to ``workdir``) and the URL
    webhook configurations, for the admin to register (``kube.register_configurations``).
    """
    ca = certs.make_ca("production-policy-test-ca")
    cert, key = workdir / "tls.crt", workdir / "tls.key"
    certs.issue_serving(ca, ("127.0.0.1", "localhost")).write(cert, key)
    args = [
        "webhook",
        "--host=127.0.0.1",
        f"--port={port}",
        f"--tls-cert-file={cert}",
        f"--tls-key-file={key}",
        f"--namespace={settings.operator_namespace}",
        *[f"--exclude-namespace={name}" for name in settings.excluded_namespaces],
    ]
    client_config = configuration.url_client_config(
        f"https://127.0.0.1:{port}", base64.b64encode(ca.cert_pem).decode()
    )
    return args, configuration.build_configurations(settings, client_config)


@contextlib.contextmanager
def operator_identity(
    mode: str, admin_kubeconfig: Path, namespace: str, workdir: Path, release: str = RELEASE
) -> Iterator[OperatorIdentity]:
    """The identity of processes whose own namespace is ``namespace``, for a test session; undone on exit."""
    _ensure_namespace(admin_kubeconfig, namespace)
    if mode == "admin":
        yield OperatorIdentity("admin", namespace, dict.fromkeys(COMPONENTS, admin_kubeconfig))
        return
    if mode != "chart":
        raise ValueError(f"unknown operator identity {mode!r}: admin or chart")
    objects = chart_identity_objects(Helm(workdir / "helm"), namespace, release)
    manifest = yaml.safe_dump_all(objects)
    kubectl(admin_kubeconfig, "apply", "--server-side", "--field-manager=pp-tests", "-f", "-", stdin=manifest)
    try:
        kubeconfigs = {}
        accounts = service_accounts(objects)
        for component in COMPONENTS:
            account = accounts[component]
            path = token_kubeconfig(admin_kubeconfig, account, workdir / f"{component}.kubeconfig")
            # Refuse to run a "proof" that is not one.
            assert whoami(path) == account.username, f"{path} does not authenticate as {account.username}"
            kubeconfigs[component] = path
        yield OperatorIdentity("chart", namespace, kubeconfigs)
    finally:
        kubectl(
            admin_kubeconfig,
            "delete",
            "--ignore-not-found",
            "--wait=false",
            "-f",
            "-",
            stdin=manifest,
            check=False,
        )
