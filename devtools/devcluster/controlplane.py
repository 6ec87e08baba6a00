"""Start and stop a real Kubernetes control plane as local processes on 127.0.0.1.

etcd -> kube-apiserver -> kube-controller-manager + kube-scheduler + KWOK, with fresh PKI and
free ports, then fake KWOK nodes. Every wait is bounded; any failure stops every process that
was started and raises :class:`ControlPlaneError` with the tails of the component logs. Child
processes also get ``PR_SET_PDEATHSIG`` so that even a SIGKILLed parent leaves no orphans.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import yaml

from devtools.devcluster.binaries import Binaries, ensure_binaries
from devtools.devcluster.processes import stop_process
from production_policy import certs

START_TIMEOUT = 90.0
STOP_TIMEOUT = 10.0
LOG_TAIL_LINES = 25
SERVICE_CIDR = "10.96.0.0/16"
POD_CIDR = "10.244.0.0/16"


class ControlPlaneError(RuntimeError):
    """The control plane could not start (or a component died); the message has the log tails."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: ask the kernel to SIGKILL it when we die.
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


@dataclass
class Component:
    """One running binary, its command line and its log file."""

    name: str
    argv: list[str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    def start(self) -> None:
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.argv,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
            start_new_session=True,
        )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, STOP_TIMEOUT)
        if self._log is not None:
            self._log.close()
            self._log = None

    def tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        # The startup dump of every flag is never the interesting part.
        useful = [line for line in text.splitlines() if "] FLAG: --" not in line]
        return "\n".join(useful[-lines:])


@dataclass
class Ports:
    """The 127.0.0.1 ports of each component; ``None`` means pick a free one."""

    etcd: int | None = None
    etcd_peer: int | None = None
    apiserver: int | None = None
    controller_manager: int | None = None
    scheduler: int | None = None
    kwok: int | None = None

    def resolved(self) -> Ports:
        return Ports(**{k: v if v is not None else free_port() for k, v in vars(self).items()})


@dataclass
class ControlPlane:
    """A local control plane. Use as a context manager, or call start()/stop()."""

    workdir: Path | None = None
    nodes: int = 2
    ports: Ports = field(default_factory=Ports)
    apiserver_extra_args: tuple[str, ...] = ()
    disabled_admission_plugins: tuple[str, ...] = ()
    """kube-apiserver admission plugins to turn off, e.g. ``MutatingAdmissionPolicy``: its API is then
    still served, but nothing runs the policies (the case the operator's canary detects)."""
    binaries: Binaries | None = None
    apiserver_only: bool = False
    """etcd and kube-apiserver only (no controllers, no scheduler, no nodes): a second, light API
    server for tests about the API alone, such as one without the CRD."""
    components: dict[str, Component] = field(default_factory=dict)
    _owned_tmp: tempfile.TemporaryDirectory[str] | None = None

    @property
    def kubeconfig(self) -> Path:
        assert self.workdir is not None
        return self.workdir / "admin.kubeconfig"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.ports.apiserver}"

    def __enter__(self) -> ControlPlane:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self, progress: Callable[[str], None] = lambda _: None) -> None:
        started = time.monotonic()
        if self.workdir is None:
            self._owned_tmp = tempfile.TemporaryDirectory(prefix="pp-cluster-")
            self.workdir = Path(self._owned_tmp.name)
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "logs").mkdir(exist_ok=True)
        binaries = self.binaries or ensure_binaries(build=False)
        self.ports = self.ports.resolved()
        for label, port in vars(self.ports).items():
            if port_in_use(port):
                raise ControlPlaneError(f"port {port} ({label}) on 127.0.0.1 is already in use")
        try:
            self._write_pki_and_configs(binaries)
            self._start("etcd", self._etcd_argv(binaries))
            self._wait(
                "etcd", lambda: _http_ok(f"http://127.0.0.1:{self.ports.etcd}/health", None), "etcd /health"
            )
            progress(f"etcd ready ({time.monotonic() - started:.1f}s)")
            self._start("kube-apiserver", self._apiserver_argv(binaries))
            self._wait("kube-apiserver", lambda: _http_ok(f"{self.server}/readyz", self._ssl()), "/readyz")
            progress(f"kube-apiserver ready ({time.monotonic() - started:.1f}s)")
            if self.apiserver_only:
                return
            self._start("kube-controller-manager", self._controller_manager_argv(binaries))
            self._start("kube-scheduler", self._scheduler_argv(binaries))
            self._start("kwok", self._kwok_argv(binaries))
            for name, port in (
                ("kube-controller-manager", self.ports.controller_manager),
                ("kube-scheduler", self.ports.scheduler),
            ):
                url = f"https://127.0.0.1:{port}/healthz"
                self._wait(name, functools.partial(_http_ok, url, _insecure()), "/healthz")
            self._wait(
                "kwok", lambda: _http_ok(f"http://127.0.0.1:{self.ports.kwok}/healthz", None), "/healthz"
            )
            self._create_nodes()
            self._wait("kwok", self._nodes_ready, f"{self.nodes} Ready node(s)")
            progress(
                f"control plane ready with {self.nodes} KWOK node(s) ({time.monotonic() - started:.1f}s)"
            )
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        # Reverse start order, so controllers never log storms about a vanished apiserver.
        for name in reversed(list(self.components)):
            self.components[name].stop()
        if self._owned_tmp is not None:
            self._owned_tmp.cleanup()
            self._owned_tmp = None
            self.workdir = None

    @contextlib.contextmanager
    def component_stopped(self, name: str) -> Iterator[None]:
        """Stop one controller-side component for the duration of the block, then restart it."""
        component = self.components[name]
        component.stop()
        try:
            yield
        finally:
            component.start()

    def pids(self) -> list[int]:
        return [c.process.pid for c in self.components.values() if c.process is not None]

    # ---- helpers ---------------------------------------------------------------------------

    def _start(self, name: str, argv: list[str]) -> None:
        assert self.workdir is not None
        component = Component(name, argv, self.workdir / "logs" / f"{name}.log")
        self.components[name] = component
        component.start()

    def _wait(self, name: str, ready: Callable[[], bool], what: str, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for component in self.components.values():
                if not component.alive():
                    raise ControlPlaneError(self._report(f"{component.name} exited while waiting for {name}"))
            with contextlib.suppress(Exception):
                if ready():
                    return
            time.sleep(0.2)
        raise ControlPlaneError(self._report(f"{name}: {what} not ready after {timeout:.0f}s"))

    def _report(self, headline: str) -> str:
        parts = [headline]
        for component in self.components.values():
            state = (
                "running"
                if component.alive()
                else f"exited ({component.process and component.process.returncode})"
            )
            parts.append(f"--- {component.name} [{state}] {component.log_path} ---\n{component.tail()}")
        return "\n".join(parts)

    def _ssl(self) -> ssl.SSLContext:
        assert self.workdir is not None
        return ssl.create_default_context(cafile=str(self.workdir / "pki" / "ca.crt"))

    def _write_pki_and_configs(self, binaries: Binaries) -> None:
        assert self.workdir is not None
        pki = self.workdir / "pki"
        pki.mkdir(exist_ok=True)
        ca = certs.make_ca("production-policy-local-ca")
        ca.write(pki / "ca.crt", pki / "ca.key")
        certs.issue_serving(
            ca,
            (
                "127.0.0.1",
                "localhost",
                "10.96.0.1",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ),
        ).write(pki / "apiserver.crt", pki / "apiserver.key")
        admin = certs.issue_client(ca, "admin", ("system:masters",))
        admin.write(pki / "admin.crt", pki / "admin.key")
        # The service-account signing key: any private key the apiserver can sign JWTs with.
        certs.make_ca("service-accounts").write(pki / "sa.crt", pki / "sa.key")
        self.kubeconfig.write_text(yaml.safe_dump(build_kubeconfig(self.server, ca.cert_pem, admin)))
        scheduler_config = {
            "apiVersion": "kubescheduler.config.k8s.io/v1",
            "kind": "KubeSchedulerConfiguration",
            "clientConnection": {"kubeconfig": str(self.kubeconfig), "qps": 200, "burst": 400},
            "leaderElection": {"leaderElect": False},
        }
        (self.workdir / "scheduler.yaml").write_text(yaml.safe_dump(scheduler_config))

    def _etcd_argv(self, b: Binaries) -> list[str]:
        assert self.workdir is not None
        client = f"http://127.0.0.1:{self.ports.etcd}"
        peer = f"http://127.0.0.1:{self.ports.etcd_peer}"
        return [
            str(b["etcd"]),
            "--name=default",
            f"--data-dir={self.workdir / 'etcd'}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=default={peer}",
            "--unsafe-no-fsync=true",
            "--log-level=warn",
            "--quota-backend-bytes=4294967296",
        ]

    def _apiserver_argv(self, b: Binaries) -> list[str]:
        assert self.workdir is not None
        pki = self.workdir / "pki"
        argv = [
            str(b["kube-apiserver"]),
            f"--etcd-servers=http://127.0.0.1:{self.ports.etcd}",
            "--bind-address=127.0.0.1",
            f"--secure-port={self.ports.apiserver}",
            f"--cert-dir={self.workdir / 'apiserver'}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki / 'sa.crt'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-mode=RBAC",
            "--allow-privileged=true",
            "--endpoint-reconciler-type=none",
            "--profiling=false",
            "--v=1",
        ]
        if not _has_default_route():
            # Without a default route the apiserver cannot pick an advertise address by itself.
            argv.append("--advertise-address=127.0.0.1")
        if self.disabled_admission_plugins:
            argv.append(f"--disable-admission-plugins={','.join(self.disabled_admission_plugins)}")
        return argv + list(self.apiserver_extra_args)

    def _controller_manager_argv(self, b: Binaries) -> list[str]:
        assert self.workdir is not None
        kubeconfig = str(self.kubeconfig)
        return [
            str(b["kube-controller-manager"]),
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics",
            "--bind-address=127.0.0.1",
            f"--secure-port={self.ports.controller_manager}",
            f"--cert-dir={self.workdir / 'kcm'}",
            "--leader-elect=false",
            f"--root-ca-file={self.workdir / 'pki' / 'ca.crt'}",
            f"--service-account-private-key-file={self.workdir / 'pki' / 'sa.key'}",
            "--kube-api-qps=200",
            "--kube-api-burst=400",
            "--v=1",
        ]

    def _scheduler_argv(self, b: Binaries) -> list[str]:
        assert self.workdir is not None
        kubeconfig = str(self.kubeconfig)
        return [
            str(b["kube-scheduler"]),
            f"--config={self.workdir / 'scheduler.yaml'}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics",
            "--bind-address=127.0.0.1",
            f"--secure-port={self.ports.scheduler}",
            f"--cert-dir={self.workdir / 'scheduler'}",
            "--v=1",
        ]

    def _kwok_argv(self, b: Binaries) -> list[str]:
        return [
            str(b["kwok"]),
            f"--kubeconfig={self.kubeconfig}",
            f"--config={b.kwok_stages}",
            "--manage-all-nodes=true",
            "--node-lease-duration-seconds=40",
            f"--cidr={POD_CIDR}",
            "--node-ip=10.244.255.254",
            f"--server-address=127.0.0.1:{self.ports.kwok}",
        ]

    def _client(self) -> object:
        from kubernetes import client, config

        return client.CoreV1Api(config.new_client_from_config(str(self.kubeconfig)))

    def _create_nodes(self) -> None:
        core = self._client()
        for index in range(self.nodes):
            core.create_node(fake_node(f"kwok-node-{index}"))  # type: ignore[attr-defined]

    def _nodes_ready(self) -> bool:
        nodes = self._client().list_node().items  # type: ignore[attr-defined]
        ready = [
            n
            for n in nodes
            if any(c.type == "Ready" and c.status == "True" for c in (n.status.conditions or []))
        ]
        return len(ready) >= self.nodes


def fake_node(name: str) -> dict[str, object]:
    """A Node that KWOK manages: big enough for benchmark-sized workloads."""
    capacity = {"cpu": "64", "memory": "512Gi", "pods": "5000"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
            },
        },
        "status": {"allocatable": capacity, "capacity": capacity},
    }


def build_kubeconfig(
    server: str, ca_pem: bytes, user: certs.KeyPair, name: str = "local"
) -> dict[str, object]:
    """A kubeconfig with everything embedded, so it can be copied anywhere."""
    import base64

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": name, "cluster": {"server": server, "certificate-authority-data": b64(ca_pem)}}
        ],
        "users": [
            {
                "name": name,
                "user": {"client-certificate-data": b64(user.cert_pem), "client-key-data": b64(user.key_pem)},
            }
        ],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
    }


def _http_ok(url: str, context: ssl.SSLContext | None) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _insecure() -> ssl.SSLContext:
    # kube-controller-manager and kube-scheduler serve /healthz with an in-memory self-signed cert.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _has_default_route() -> bool:
    try:
        lines = Path("/proc/net/route").read_text().splitlines()[1:]
    except OSError:
        return True
    return any(line.split()[1] == "00000000" for line in lines if len(line.split()) > 1)


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is gone as far as we care once reaped or defunct.
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "State:\tZ" not in status
