"""The operator's processes (``python -m production_policy ...``) started by e2e tests as a given identity."""

from __future__ import annotations

import os
import re
import socket
import ssl
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from devtools.devcluster.processes import stop_process


@dataclass
class Process:
    popen: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        """True while it runs; once it has exited, fail showing the end of its log."""
        if self.popen.poll() is not None:
            raise AssertionError(f"exited with {self.popen.returncode}:\n{self.log()[-3000:]}")
        return True

    def stop(self) -> None:
        stop_process(self.popen)


def start(args: list[str], kubeconfig: Path, log_path: Path, namespace: str) -> Process:
    """``production-policy ARGS`` with this kubeconfig only (no in-cluster config), output in ``log_path``."""
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "POD_NAMESPACE": namespace}
    env.pop("KUBERNETES_SERVICE_HOST", None)
    with log_path.open("ab") as log:
        popen = subprocess.Popen(
            [sys.executable, "-m", "production_policy", *args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    return Process(popen, log_path)


def https_status(port: int, ca_pem: bytes, server_name: str, path: str) -> int:
    """GET over TLS to 127.0.0.1, verifying the certificate for ``server_name`` against ``ca_pem``."""
    context = ssl.create_default_context(cadata=ca_pem.decode())
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=server_name) as tls,
    ):
        tls.sendall(f"GET {path} HTTP/1.1\r\nHost: {server_name}\r\nConnection: close\r\n\r\n".encode())
        status_line = tls.recv(64).decode().split("\r\n")[0]
    return int(status_line.split()[1])


FORBIDDEN = re.compile(r"[Ff]orbidden|(?<![\d,.:])403(?!\d)")
"""A refusal in a log line: the word, or the status code (not a timestamp's milliseconds, ",403")."""


def forbidden(log: str) -> list[str]:
    """The log lines that say the API server refused something (403 / Forbidden)."""
    return [line for line in log.splitlines() if FORBIDDEN.search(line)]


def takeovers(log: str) -> list[str]:
    """The log lines where the controller took over fields another manager owned of a compiled object."""
    return [line for line in log.splitlines() if "taking over the fields of its spec" in line]
