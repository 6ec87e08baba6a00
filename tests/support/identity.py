"""Run the operator's processes as the Helm chart's ServiceAccounts, so tests prove its RBAC.

Two ways to act as a ServiceAccount from outside the cluster:

- :func:`token_kubeconfig`: a bound token from the TokenRequest API. The API server then
  authenticates the ServiceAccount itself, whatever the client. Use this for our processes.
- :func:`impersonating_kubeconfig`: the admin's credentials plus ``as``/``as-groups``. Only
  kubectl and client-go honour these fields; **kopf and the official Python client ignore them
  and would silently run as admin** (a test in tests/e2e/test_chart.py shows it). Use it for
  kubectl only.

:func:`whoami` asks the API server who a kubeconfig really is (SelfSubjectReview), so a fixture
can refuse to run with the wrong identity.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config

TOKEN_SECONDS = 6 * 3600  # longer than any test session; the API server may shorten it


@dataclass(frozen=True)
class ServiceAccountRef:
    namespace: str
    name: str

    @property
    def username(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.name}"

    @property
    def groups(self) -> tuple[str, ...]:
        return ("system:serviceaccounts", f"system:serviceaccounts:{self.namespace}", "system:authenticated")


def _admin_config(admin_kubeconfig: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(admin_kubeconfig.read_text())
    return loaded


def _current(kubeconfig: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The current context's cluster entry and user entry."""
    context = next(c["context"] for c in kubeconfig["contexts"] if c["name"] == kubeconfig["current-context"])
    cluster = next(c for c in kubeconfig["clusters"] if c["name"] == context["cluster"])
    user = next(u for u in kubeconfig["users"] if u["name"] == context["user"])
    return cluster, user


def _single_user_config(cluster: dict[str, Any], user_name: str, user: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": user_name, "user": user}],
        "contexts": [{"name": user_name, "context": {"cluster": cluster["name"], "user": user_name}}],
        "current-context": user_name,
    }


def token_kubeconfig(
    admin_kubeconfig: Path, account: ServiceAccountRef, path: Path, expiration_seconds: int = TOKEN_SECONDS
) -> Path:
    """Write a kubeconfig that authenticates as ``account`` with a fresh bound token."""
    admin = config.new_client_from_config(str(admin_kubeconfig))
    try:
        request = {"spec": {"expirationSeconds": expiration_seconds}}
        token = (
            client.CoreV1Api(admin)
            .create_namespaced_service_account_token(account.name, account.namespace, request)
            .status.token
        )
    finally:
        admin.close()
    cluster, _ = _current(_admin_config(admin_kubeconfig))
    path.write_text(
        yaml.safe_dump(_single_user_config(copy.deepcopy(cluster), account.name, {"token": token}))
    )
    path.chmod(0o600)
    return path


def impersonating_kubeconfig(admin_kubeconfig: Path, account: ServiceAccountRef, path: Path) -> Path:
    """Write the admin's kubeconfig plus ``as``/``as-groups`` (honoured by kubectl, not by Python clients)."""
    cluster, user = _current(_admin_config(admin_kubeconfig))
    impersonating = {**copy.deepcopy(user["user"]), "as": account.username, "as-groups": list(account.groups)}
    path.write_text(yaml.safe_dump(_single_user_config(copy.deepcopy(cluster), account.name, impersonating)))
    path.chmod(0o600)
    return path


def whoami(kubeconfig: Path) -> str:
    """The username the API server authenticates ``kubeconfig`` as (through the Python client)."""
    api = config.new_client_from_config(str(kubeconfig))
    try:
        review = client.AuthenticationV1Api(api).create_self_subject_review(
            {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
        )
        return str(review.status.user_info.username)
    finally:
        api.close()


def can_i(
    kubeconfig: Path,
    verb: str,
    resource: str,
    group: str = "",
    namespace: str | None = None,
    name: str | None = None,
    subresource: str | None = None,
) -> bool:
    """SelfSubjectAccessReview as the kubeconfig's own identity."""
    attributes = {
        "verb": verb,
        "resource": resource,
        "group": group,
        "namespace": namespace,
        "name": name,
        "subresource": subresource,
    }
    api = config.new_client_from_config(str(kubeconfig))
    try:
        review = client.AuthorizationV1Api(api).create_self_subject_access_review(
            {"spec": {"resourceAttributes": {k: v for k, v in attributes.items() if v is not None}}}
        )
        return bool(review.status.allowed)
    finally:
        api.close()


def rules(kubeconfig: Path, namespace: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(resource rules, non-resource rules) the identity holds in ``namespace`` (SelfSubjectRulesReview)."""
    api = config.new_client_from_config(str(kubeconfig))
    try:
        review = client.AuthorizationV1Api(api).create_self_subject_rules_review(
            {"spec": {"namespace": namespace}}
        )
        status = api.sanitize_for_serialization(review.status)
    finally:
        api.close()
    assert not status.get("incomplete"), f"rules review incomplete: {status.get('evaluationError')}"
    return status.get("resourceRules") or [], status.get("nonResourceRules") or []
