"""What a long-running command needs before it starts, and the one sentence saying what is missing."""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path
from typing import Any

import pytest

from production_policy import certs
from production_policy.admission.server import TLSFiles
from production_policy.engine import kinds
from production_policy.engine.preconditions import (
    IN_CLUSTER,
    Access,
    Command,
    Observed,
    Port,
    needed_access,
    problem,
)
from production_policy.processes import preconditions as shell
from tests.support import rbac

SERVER = "https://10.0.0.1:6443"
KUBECONFIG = "KUBECONFIG=/home/me/.kube/dev"
FINE = Observed("webhook", KUBECONFIG, server=SERVER, crd_served=True)
LIST_POLICIES = Access("list", "productionpolicies", "productionpolicy.dev")
UPDATE_LEASE = Access(
    "update", "leases", "coordination.k8s.io", "production-policy", name="production-policy-controller"
)


def _problem(**changes: Any) -> str | None:
    return problem(dataclasses.replace(FINE, **changes))


def test_nothing_missing_says_nothing() -> None:
    assert problem(FINE) is None
    # Unknown is not missing: what was not asked (or could not be) leaves it to the command.
    assert _problem(crd_served=None) is None


@pytest.mark.parametrize(
    ("changes", "sentence"),
    [
        (
            {"origin": "", "login_error": "neither a ServiceAccount token nor a kubeconfig was found"},
            "production-policy webhook: no credentials for the API server: not in a pod, KUBECONFIG is not"
            " set and there is no ~/.kube/config — set KUBECONFIG to your cluster's kubeconfig",
        ),
        (
            {"login_error": "no such file or directory"},
            "production-policy webhook: cannot read the credentials of KUBECONFIG=/home/me/.kube/dev (no"
            " such file or directory) — check KUBECONFIG",
        ),
        (
            {"unreachable": "connection refused"},
            "production-policy webhook: cannot reach the API server at https://10.0.0.1:6443 (from"
            " KUBECONFIG=/home/me/.kube/dev): connection refused — check KUBECONFIG and that the API server"
            " is up",
        ),
        (
            {"unreachable": "timed out", "origin": IN_CLUSTER},
            "production-policy webhook: cannot reach the API server at https://10.0.0.1:6443 (from the"
            " in-cluster ServiceAccount): timed out — check that the API server is up and reachable from"
            " this pod",
        ),
        (
            {"unauthorized": True},
            "production-policy webhook: the API server at https://10.0.0.1:6443 (from"
            " KUBECONFIG=/home/me/.kube/dev) refused the credentials (HTTP 401) — renew them, or check"
            " KUBECONFIG",
        ),
        (
            {"crd_served": False},
            "production-policy webhook: the ProductionPolicy CRD (productionpolicies.productionpolicy.dev"
            " v1alpha1) is not installed in the cluster at https://10.0.0.1:6443 — run `kubectl apply -f"
            " crds/` or install the Helm chart",
        ),
        (
            {"refused": (LIST_POLICIES,), "identity": "system:serviceaccount:shop:nobody"},
            "production-policy webhook: the ServiceAccount shop/nobody may not list"
            " productionpolicies.productionpolicy.dev cluster-wide — the Helm chart's RBAC grants this to"
            " the webhook ServiceAccount: install the chart, or give this identity the same rules"
            " (charts/production-policy/templates/rbac.yaml)",
        ),
        (
            {"tls_files": "/tls/tls.crt and /tls/tls.key", "tls_error": "no such file or directory"},
            "production-policy webhook: cannot load the serving certificate and key /tls/tls.crt and"
            " /tls/tls.key (no such file or directory) — mount them there, or pass --tls-cert-file and"
            " --tls-key-file",
        ),
        (
            {"ports_in_use": (Port("0.0.0.0", 8443, "--port"),)},
            "production-policy webhook: port 8443 on 0.0.0.0 is already in use — stop what listens there"
            " or choose another with --port",
        ),
        (
            {"ports_in_use": (Port("0.0.0.0", 9090, "--metrics-port"),)},
            "production-policy webhook: port 9090 on 0.0.0.0 is already in use — stop what listens there"
            " or choose another with --metrics-port (0 turns it off)",
        ),
    ],
    ids=[
        "no-credentials",
        "unreadable-kubeconfig",
        "unreachable",
        "unreachable-in-a-pod",
        "unauthorized",
        "crd-missing",
        "forbidden",
        "tls",
        "port",
        "metrics-port",
    ],
)
def test_each_missing_precondition_in_one_sentence(changes: dict[str, Any], sentence: str) -> None:
    said = _problem(**changes)
    assert said == sentence
    assert said.count(" — ") == 1 and "\n" not in said


def test_the_first_missing_precondition_is_said() -> None:
    # Everything wrong at once, then put right one by one in the order the shell probes (what it
    # probes later assumes what came before): each time the first wrong thing is said.
    wrong: dict[str, tuple[Any, str]] = {
        "login_error": ("bad", "cannot read the credentials"),
        "unreachable": ("connection refused", "cannot reach"),
        "unauthorized": (True, "refused the credentials"),
        "crd_served": (False, "CRD"),
        "refused": ((LIST_POLICIES,), "may not"),
        "tls_error": ("bad", "serving certificate"),
        "ports_in_use": ((Port("0.0.0.0", 8443, "--port"),), "already in use"),
    }
    observed = dataclasses.replace(FINE, **{field: value for field, (value, _) in wrong.items()})
    defaults = Observed("webhook", "")
    for field, (_, said) in wrong.items():
        sentence = problem(observed)
        assert sentence is not None and said in sentence, (field, sentence)
        observed = dataclasses.replace(observed, **{field: getattr(defaults, field)})
    assert problem(observed) is None


def test_forbidden_names_the_identity_and_counts_the_rest() -> None:
    more = (LIST_POLICIES, UPDATE_LEASE, Access("watch", "namespaces"))
    said = problem(Observed("controller", KUBECONFIG, server=SERVER, identity="alice", refused=more))
    assert said is not None
    assert said.startswith(
        'production-policy controller: the user "alice" may not list productionpolicies.productionpolicy.dev'
        " cluster-wide (and 2 more permissions it needs) — the Helm chart's RBAC grants this to the"
        " controller ServiceAccount"
    )
    said = problem(Observed("run --dev", KUBECONFIG, server=SERVER, refused=(UPDATE_LEASE,)))
    assert said == (
        'production-policy run --dev: this identity may not update leases.coordination.k8s.io "production-'
        'policy-controller" in namespace production-policy — run --dev registers its own webhooks and runs'
        " the whole operator, so it needs a cluster admin's kubeconfig (in a shared cluster, install the"
        " Helm chart instead)"
    )


def test_what_each_command_needs() -> None:
    webhook = needed_access("webhook", "pp", "webhook", leader_election=True)
    assert [a.describe() for a in webhook] == [
        "list productionpolicies.productionpolicy.dev cluster-wide",
        "watch productionpolicies.productionpolicy.dev cluster-wide",
        "list namespaces cluster-wide",
        "watch namespaces cluster-wide",
    ]
    controller = needed_access("controller", "pp", "webhook", leader_election=True)
    assert set(webhook) < set(controller)
    described = {a.describe() for a in controller}
    assert {
        "patch productionpolicies/status.productionpolicy.dev cluster-wide",
        "create events.events.k8s.io cluster-wide",
        "create secrets in namespace pp",
        'update leases.coordination.k8s.io "production-policy-controller" in namespace pp',
    } <= described
    for kind in kinds.AUDITED:
        assert Access("watch", kind.plural, kind.group) in controller
    assert {a for a in controller if a.verb == "patch" and a.subresource is None} == {
        Access("patch", kind.plural, kind.group) for kind in kinds.ROLLABLE
    }
    watching = needed_access("controller", "pp", "webhook", leader_election=True, probe_watch=True)
    assert set(watching) - set(controller) == {Access("list", "events"), Access("watch", "events")}
    # Without election no Lease; with the compiled policies, theirs.
    unelected = needed_access("controller", "pp", "webhook", leader_election=False)
    assert not any(a.resource == "leases" for a in unelected)
    compiled = needed_access("controller", "pp", "both", leader_election=False)
    assert {a.resource for a in set(compiled) - set(unelected)} == {
        "mutatingadmissionpolicies",
        "validatingadmissionpolicies",
    }
    # run --dev: the controller's (never elected) and the webhook's, and it registers the webhooks.
    dev = needed_access("run --dev", "pp", "webhook", leader_election=True)
    assert set(unelected) < set(dev) and not any(a.resource == "leases" for a in dev)
    assert {a.describe() for a in set(dev) - set(unelected)} == {
        "create namespaces cluster-wide",
        "create mutatingwebhookconfigurations.admissionregistration.k8s.io cluster-wide",
        "delete mutatingwebhookconfigurations.admissionregistration.k8s.io cluster-wide",
        "create validatingwebhookconfigurations.admissionregistration.k8s.io cluster-wide",
        "delete validatingwebhookconfigurations.admissionregistration.k8s.io cluster-wide",
    }


def _granted(access: Access, engine: str, component: str, namespace: str) -> bool:
    """Whether the chart's RBAC (tests/support/rbac.py, compared there with the rendered chart)
    gives ``component``'s ServiceAccount ``access``, the chart being released into ``namespace``."""
    resource = access.resource + (f"/{access.subresource}" if access.subresource else "")
    roles = rbac.expected(engine)
    for kind in ("ClusterRole", "Role"):
        if kind == "Role" and access.namespace != namespace:
            continue
        for group, granted, names, verb in roles.get((kind, component), set()):
            if (group, granted, verb) == (access.group, resource, access.verb) and (
                names is None or access.name in names
            ):
                return True
    return False


@pytest.mark.parametrize("engine", ["webhook", "both"])
@pytest.mark.parametrize("command", ["webhook", "controller"])
def test_the_chart_grants_what_each_command_checks(command: Command, engine: str) -> None:
    # Else the command would refuse to start as installed.
    for election in (True, False):
        for probe_watch in (True, False):
            for access in needed_access(command, "pp-release", engine, election, probe_watch):
                assert _granted(access, engine, command, "pp-release"), access.describe()


# --- the shell's local probes (the API server's are tested against a real one, tests/e2e) --------


@pytest.fixture(autouse=True)
def _no_cluster(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The shell's probes of the API server find no credentials here, so only the local ones run."""
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))


def test_without_credentials_the_api_server_is_not_asked(tmp_path: Path) -> None:
    seen = shell.observe("controller", needed_access("controller", "pp", "webhook", True), (), None)
    assert seen == Observed(
        "controller", f"KUBECONFIG={tmp_path / 'absent'}", login_error="no such file or directory"
    )


def test_a_port_in_use_is_seen() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = Port("127.0.0.1", taken.getsockname()[1], "--port")
        assert shell.observe(
            "webhook", (), (port, Port("0.0.0.0", 0, "--metrics-port")), None
        ).ports_in_use == (port,)
    assert shell.observe("webhook", (), (port,), None).ports_in_use == ()


def test_the_serving_certificate_is_loaded(tmp_path: Path) -> None:
    tls = TLSFiles(tmp_path / "tls.crt", tmp_path / "tls.key")
    seen = shell.observe("webhook", (), (), tls)
    assert (seen.tls_files, seen.tls_error) == (f"{tls.cert} and {tls.key}", "no such file or directory")
    certs.issue_serving(certs.make_ca("test-ca"), ("127.0.0.1",)).write(tls.cert, tls.key)
    assert shell.observe("webhook", (), (), tls).tls_error is None
    tls.key.write_text("not a key")
    assert shell.observe("webhook", (), (), tls).tls_error is not None
