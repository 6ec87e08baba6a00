"""Before a long-running command starts: look at what it needs, and let the engine say what is missing.

The API server is asked through the door (``kube.reach``, ``kube.serves``, ``kube.allowed``,
``kube.whoami``), in order, stopping at the first thing that fails; the ports and the serving
certificate are tried here. :func:`engine.preconditions.problem` turns what was seen into the one
sentence the command prints instead of starting.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Sequence
from dataclasses import replace

from production_policy import GROUP, PLURAL, VERSION, kube
from production_policy.admission import server
from production_policy.engine import preconditions
from production_policy.engine.preconditions import Command, Observed, Port


def check(
    command: Command,
    *,
    operator_namespace: str,
    admission_engine: str = "webhook",
    leader_election: bool = False,
    probe_watch: bool = False,
    ports: Sequence[Port] = (),
    tls: server.TLSFiles | None = None,
) -> str | None:
    """What keeps ``command`` from starting, as one sentence; None when nothing does."""
    needed = preconditions.needed_access(
        command, operator_namespace, admission_engine, leader_election, probe_watch
    )
    return preconditions.problem(observe(command, needed, ports, tls))


def observe(
    command: Command,
    needed: Sequence[preconditions.Access],
    ports: Sequence[Port],
    tls: server.TLSFiles | None,
) -> Observed:
    """Probe, in the order :func:`~production_policy.engine.preconditions.problem` reports."""
    local = Observed(
        command,
        kube.login_origin(),
        tls_files="" if tls is None else f"{tls.cert} and {tls.key}",
        tls_error=None if tls is None else _tls_error(tls),
        ports_in_use=tuple(port for port in ports if _in_use(port)),
    )
    try:
        api = kube.api_client()
    except kube.NoCredentials as exc:
        return replace(local, login_error=str(exc))
    try:
        local = replace(local, server=api.server)
        reached = kube.reach(api)
        if reached.status is None:
            return replace(local, unreachable=reached.error)
        if reached.status == 401:
            return replace(local, unauthorized=True)
        served = kube.serves(api, GROUP, VERSION, PLURAL)
        if served is False:
            return replace(local, crd_served=False)
        # Unknown (None) is not refused: a review the API server will not answer leaves it to the command.
        refused = tuple(access for access in needed if kube.allowed(api, access) is False)
        return replace(
            local, crd_served=served, refused=refused, identity=kube.whoami(api) if refused else None
        )
    finally:
        api.close()


def _tls_error(tls: server.TLSFiles) -> str | None:
    try:
        server.ssl_context(tls)
    except (OSError, ValueError) as exc:
        text = getattr(exc, "strerror", None) or str(exc)
        return text[:1].lower() + text[1:]
    return None


def _in_use(port: Port) -> bool:
    """Whether another process listens on the port (bound as aiohttp and prometheus-client bind it)."""
    if not port.port:
        return False
    family = socket.AF_INET6 if ":" in port.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((port.host, port.port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False
