"""What a long-running command needs before it starts, and the one sentence that says what is missing.

``production-policy webhook``, ``controller`` and ``run --dev`` each need credentials, an API
server that answers, the ProductionPolicy CRD, the permissions listed here (:func:`needed_access`,
the rules the Helm chart grants the command's ServiceAccount) and their ports. The process shell
(``processes.preconditions``) probes those, through the door, into :class:`Observed`;
:func:`problem` decides which one is missing and says what to do, in one sentence, instead of
a traceback from deep inside a watch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from production_policy import GROUP, PLURAL, VERSION
from production_policy.engine import kinds
from production_policy.engine.apiserver import DEFAULTS_NAME, ENFORCE_NAME
from production_policy.engine.names import LEASE_NAME

Command = Literal["webhook", "controller", "run --dev"]

IN_CLUSTER = "the in-cluster ServiceAccount"
"""Where a process in a pod takes its credentials from (``Observed.origin``)."""


@dataclass(frozen=True)
class Access:
    """One permission, as a SelfSubjectAccessReview asks it."""

    verb: str
    resource: str
    group: str = ""
    namespace: str | None = None
    """None: in every namespace (or a cluster-scoped resource)."""
    name: str | None = None
    subresource: str | None = None

    def describe(self) -> str:
        """``list productionpolicies.productionpolicy.dev cluster-wide``, ``update leases.coordination.k8s.io
        "production-policy-controller" in namespace production-policy``."""
        resource = self.resource + (f"/{self.subresource}" if self.subresource else "")
        resource += f".{self.group}" if self.group else ""
        named = f' "{self.name}"' if self.name else ""
        where = f" in namespace {self.namespace}" if self.namespace else " cluster-wide"
        return f"{self.verb} {resource}{named}{where}"


def _reads(resource: str, group: str = "") -> tuple[Access, ...]:
    return Access("list", resource, group), Access("watch", resource, group)


_ADMISSION = "admissionregistration.k8s.io"


def needed_access(
    command: Command,
    operator_namespace: str,
    admission_engine: str,
    leader_election: bool,
    probe_watch: bool = False,
) -> tuple[Access, ...]:
    """The permissions ``command`` uses, in the order they are checked (a subset of what the Helm
    chart grants the command's ServiceAccount; ``run --dev`` needs the webhook's and the
    controller's, and registers the webhooks and its namespace itself)."""
    webhook = (*_reads(PLURAL, GROUP), *_reads("namespaces"))
    if command == "webhook":
        return webhook
    controller = [
        *webhook,
        Access("patch", PLURAL, GROUP, subresource="status"),
        *_reads("configmaps"),
        *_reads("secrets"),
        *(access for kind in kinds.AUDITED for access in _reads(kind.plural, kind.group)),
        *(Access("patch", kind.plural, kind.group) for kind in kinds.ROLLABLE),
        Access("create", "events", "events.k8s.io"),
        Access("create", "secrets", namespace=operator_namespace),
    ]
    if probe_watch:
        controller += _reads("events")  # the kubelet's Unhealthy and Killing Events
    if admission_engine != "webhook":
        controller += [
            Access("patch", "mutatingadmissionpolicies", _ADMISSION, name=DEFAULTS_NAME),
            Access("patch", "validatingadmissionpolicies", _ADMISSION, name=ENFORCE_NAME),
        ]
    if command == "controller":
        if leader_election:
            lease = "leases", "coordination.k8s.io", operator_namespace
            controller += [
                Access("create", *lease),
                Access("get", *lease, name=LEASE_NAME),
                Access("update", *lease, name=LEASE_NAME),
            ]
        return tuple(controller)
    configurations = ("mutatingwebhookconfigurations", "validatingwebhookconfigurations")
    return (
        *controller,
        Access("create", "namespaces"),
        *(Access(verb, resource, _ADMISSION) for resource in configurations for verb in ("create", "delete")),
    )


@dataclass(frozen=True)
class Port:
    """A port the command listens on, and the flag that chooses it."""

    host: str
    port: int
    flag: str


@dataclass(frozen=True)
class Observed:
    """What the shell found, in the order it looks; a later field is left at its default when an
    earlier one already failed (no point asking a server that did not answer)."""

    command: Command
    origin: str
    """Where the credentials come from: ``KUBECONFIG=/path``, ``~/.kube/config``, ``the in-cluster
    ServiceAccount``; "" when there are none."""
    login_error: str | None = None
    """Why no credentials could be read (None: they were)."""
    server: str = ""
    unreachable: str | None = None
    """Why the API server did not answer (connection refused, a TLS error...)."""
    unauthorized: bool = False
    """The API server refused the credentials (HTTP 401)."""
    crd_served: bool | None = None
    """Whether the API server serves the ProductionPolicy resource (None: not asked)."""
    identity: str | None = None
    """Who the API server says we are (SelfSubjectReview); None when unknown."""
    refused: tuple[Access, ...] = ()
    """The needed permissions the API server says we lack."""
    tls_files: str = ""
    """The serving certificate and key (the webhook's): ``/tls/tls.crt and /tls/tls.key``."""
    tls_error: str | None = None
    """Why they could not be loaded."""
    ports_in_use: tuple[Port, ...] = ()


EXIT_CODE = 1
"""How a command ends when a precondition is missing (argparse's usage errors are 2)."""


def problem(observed: Observed) -> str | None:
    """The first missing precondition as one sentence saying what to do, or None when all hold."""
    reason = _reason(observed)
    return None if reason is None else f"production-policy {observed.command}: {reason}"


def _reason(o: Observed) -> str | None:
    if o.login_error is not None:
        if not o.origin:
            return (
                "no credentials for the API server: not in a pod, KUBECONFIG is not set and there is no"
                " ~/.kube/config — set KUBECONFIG to your cluster's kubeconfig"
            )
        return f"cannot read the credentials of {o.origin} ({o.login_error}) — check KUBECONFIG"
    at = f"the API server at {o.server} (from {o.origin})"
    in_pod = o.origin == IN_CLUSTER
    if o.unreachable is not None:
        remedy = (
            "check that the API server is up and reachable from this pod"
            if in_pod
            else "check KUBECONFIG and that the API server is up"
        )
        return f"cannot reach {at}: {o.unreachable} — {remedy}"
    if o.unauthorized:
        return f"{at} refused the credentials (HTTP 401) — renew them, or check KUBECONFIG"
    if o.crd_served is False:
        return (
            f"the ProductionPolicy CRD ({PLURAL}.{GROUP} {VERSION}) is not installed in the cluster at"
            f" {o.server} — run `kubectl apply -f crds/` or install the Helm chart"
        )
    if o.refused:
        first, *more = o.refused
        others = f" (and {len(more)} more permission{'s' if len(more) > 1 else ''} it needs)" if more else ""
        refused = f"{_who(o.identity)} may not {first.describe()}{others}"
        if o.command == "run --dev":
            return (
                f"{refused} — run --dev registers its own webhooks and runs the whole operator, so it needs"
                " a cluster admin's kubeconfig (in a shared cluster, install the Helm chart instead)"
            )
        return (
            f"{refused} — the Helm chart's RBAC grants this to the {o.command} ServiceAccount: install"
            " the chart, or give this identity the same rules (charts/production-policy/templates/rbac.yaml)"
        )
    if o.tls_error is not None:
        return (
            f"cannot load the serving certificate and key {o.tls_files} ({o.tls_error}) — mount them"
            " there, or pass --tls-cert-file and --tls-key-file"
        )
    if o.ports_in_use:
        port = o.ports_in_use[0]
        remedy = f"choose another with {port.flag}" + (
            " (0 turns it off)" if port.flag == "--metrics-port" else ""
        )
        return f"port {port.port} on {port.host} is already in use — stop what listens there or {remedy}"
    return None


def _who(identity: str | None) -> str:
    if identity is None:
        return "this identity"
    prefix = "system:serviceaccount:"
    if identity.startswith(prefix):
        namespace, _, name = identity.removeprefix(prefix).partition(":")
        return f"the ServiceAccount {namespace}/{name}"
    return f'the user "{identity}"'
