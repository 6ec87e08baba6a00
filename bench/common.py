"""What every scenario shares: the machine's description, a raw HTTP client of the API server,
the local control plane, the operator's processes, percentiles and result files.

Every wait here is bounded in time, and every loop in count.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import math
import os
import platform
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import yaml

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
CRD_FILE = REPO / "crds" / "productionpolicies.productionpolicy.dev.yaml"
OPERATOR_NAMESPACE = "production-policy"
GROUP_PATH = "/apis/productionpolicy.dev/v1alpha1/productionpolicies"
USER_AGENT = "production-policy-bench"

T = TypeVar("T")
X = TypeVar("X")


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---- the machine ---------------------------------------------------------------------------------


def _meminfo_kib(key: str) -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def _git_commit() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return f"{head}{' (with uncommitted changes)' if dirty else ''}"


def machine(binaries: Any | None = None) -> dict[str, Any]:
    """Cores, memory, load and every version a number depends on."""
    versions = {
        "python": platform.python_version(),
        "production-policy-operator": _package_version("production-policy-operator"),
        "kopf": _package_version("kopf"),
        "aiohttp": _package_version("aiohttp"),
        "kubernetes (python client)": _package_version("kubernetes"),
        "pydantic": _package_version("pydantic"),
    }
    if binaries is not None:
        for name in ("kube-apiserver", "etcd", "kwok"):
            # The cache directory names the version: ~/.cache/production-policy/kubernetes-v1.37.2/...
            versions[name] = Path(binaries[name]).parent.name
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(_meminfo_kib("MemTotal") / 1024 / 1024, 1),
        "cpu_model": _cpu_model(),
        "kernel": platform.release(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "commit": _git_commit(),
        "versions": versions,
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


# ---- numbers ---------------------------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (q in 0..100)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def summary_ms(seconds: Iterable[float]) -> dict[str, float]:
    """n, mean, p50, p95, p99 and max, in milliseconds, of durations given in seconds."""
    values = sorted(s * 1000 for s in seconds)
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "mean_ms": round(sum(values) / len(values), 3),
        "p50_ms": round(percentile(values, 50), 3),
        "p95_ms": round(percentile(values, 95), 3),
        "p99_ms": round(percentile(values, 99), 3),
        "max_ms": round(values[-1], 3),
    }


def ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b else None


def write_json(out: Path, name: str, data: dict[str, Any]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    log(f"wrote {path}")
    return path


def wait_until(condition: Callable[[], T], timeout: float, what: str, interval: float = 0.25) -> T:
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


async def wait_until_async(
    condition: Callable[[], Awaitable[T]], timeout: float, what: str, interval: float = 0.25
) -> T:
    deadline = time.monotonic() + timeout
    while True:
        result = await condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(interval)


# ---- the API server, over raw HTTP -------------------------------------------------------------------


class ApiError(RuntimeError):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(f"HTTP {status}: {text[:300]}")
        self.status = status


class KubeHttp:
    """An aiohttp client of the API server with the kubeconfig's client certificate.

    Lighter than the official client (no model objects), so the load generator costs less CPU than
    what it measures. Use as ``async with KubeHttp(kubeconfig, connections) as api``.
    """

    def __init__(self, kubeconfig: Path, connections: int = 100) -> None:
        config = yaml.safe_load(kubeconfig.read_text())
        cluster = config["clusters"][0]["cluster"]
        user = config["users"][0]["user"]
        self.server: str = cluster["server"]
        self._tmp = tempfile.TemporaryDirectory(prefix="pp-bench-kube-")
        tmp = Path(self._tmp.name)
        (tmp / "ca.crt").write_bytes(base64.b64decode(cluster["certificate-authority-data"]))
        (tmp / "client.crt").write_bytes(base64.b64decode(user["client-certificate-data"]))
        (tmp / "client.key").write_bytes(base64.b64decode(user["client-key-data"]))
        self.ssl = ssl.create_default_context(cafile=str(tmp / "ca.crt"))
        self.ssl.load_cert_chain(tmp / "client.crt", tmp / "client.key")
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> KubeHttp:
        connector = aiohttp.TCPConnector(ssl=self.ssl, limit=self._connections)
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=60),
            # Our own name, so the API server's audit log tells the bench's requests from those of
            # the controller under test (scenario 5 counts the latter).
            headers={"User-Agent": USER_AGENT},
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
        self._tmp.cleanup()

    @property
    def session(self) -> aiohttp.ClientSession:
        assert self._session is not None, "use KubeHttp as an async context manager"
        return self._session

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = "application/json",
        ok: tuple[int, ...] = (200, 201, 202),
        params: dict[str, str] | None = None,
        accept: str = "application/json",
    ) -> Any:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": content_type, "Accept": accept}
        async with self.session.request(
            method, self.server + path, data=data, headers=headers, params=params
        ) as response:
            text = await response.text()
            if response.status not in ok:
                raise ApiError(response.status, text)
            return json.loads(text) if text else None

    async def get(
        self, path: str, params: dict[str, str] | None = None, accept: str = "application/json"
    ) -> Any:
        return await self.request("GET", path, params=params, accept=accept)

    async def create(self, path: str, body: Any, exist_ok: bool = False) -> Any:
        return await self.request(
            "POST", path, body, ok=(200, 201, 202, 409) if exist_ok else (200, 201, 202)
        )

    async def merge_patch(self, path: str, body: Any) -> Any:
        return await self.request("PATCH", path, body, content_type="application/merge-patch+json")

    async def delete(self, path: str) -> Any:
        return await self.request("DELETE", path, ok=(200, 202, 404))

    async def list_all(self, path: str, limit: int = 500, max_pages: int = 1000) -> list[dict[str, Any]]:
        """Every item of a collection, page by page."""
        items: list[dict[str, Any]] = []
        params = {"limit": str(limit)}
        for _ in range(max_pages):
            page = await self.get(path, params)
            items.extend(page.get("items", []))
            token = page.get("metadata", {}).get("continue")
            if not token:
                return items
            params = {"limit": str(limit), "continue": token}
        raise RuntimeError(f"more than {max_pages} pages of {path}")


async def bounded(concurrency: int, jobs: Iterable[Callable[[], Awaitable[T]]]) -> list[T]:
    """Run the jobs with at most ``concurrency`` at a time; results in order."""
    semaphore = asyncio.Semaphore(concurrency)

    async def one(job: Callable[[], Awaitable[T]]) -> T:
        async with semaphore:
            return await job()

    return list(await asyncio.gather(*(one(job) for job in jobs)))


async def bounded_map(concurrency: int, job: Callable[[X], Awaitable[T]], items: Iterable[X]) -> list[T]:
    """``job(item)`` for every item, at most ``concurrency`` at a time; results in order."""
    semaphore = asyncio.Semaphore(concurrency)

    async def one(item: X) -> T:
        async with semaphore:
            return await job(item)

    return list(await asyncio.gather(*(one(item) for item in items)))


def ns_path(namespace: str, plural: str, name: str = "", group: str = "") -> str:
    base = (
        f"/apis/{group}/namespaces/{namespace}/{plural}"
        if group
        else (f"/api/v1/namespaces/{namespace}/{plural}")
    )
    return f"{base}/{name}" if name else base


async def create_namespace(api: KubeHttp, name: str, labels: dict[str, str] | None = None) -> None:
    await api.create(
        "/api/v1/namespaces", {"metadata": {"name": name, "labels": labels or {}}}, exist_ok=True
    )

    async def has_default_sa() -> bool:
        try:
            await api.get(ns_path(name, "serviceaccounts", "default"))
        except ApiError:
            return False
        return True

    await wait_until_async(has_default_sa, 60, f"the default ServiceAccount of {name}")


async def delete_namespace(api: KubeHttp, name: str, wait: float = 0) -> None:
    """Delete a namespace; with ``wait``, wait (at most that long) until it is gone."""
    await api.delete(f"/api/v1/namespaces/{name}")
    if wait:

        async def gone() -> bool:
            try:
                await api.get(f"/api/v1/namespaces/{name}")
            except ApiError as exc:
                return exc.status == 404
            return False

        with contextlib.suppress(TimeoutError):
            await wait_until_async(gone, wait, f"namespace {name} to be deleted", interval=1)


async def apply_crd(api: KubeHttp) -> None:
    manifest = yaml.safe_load(CRD_FILE.read_text())
    await api.create("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", manifest, exist_ok=True)
    name = manifest["metadata"]["name"]

    async def established() -> bool:
        crd = await api.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
        return any(
            c["type"] == "Established" and c["status"] == "True"
            for c in (crd.get("status") or {}).get("conditions") or []
        )

    await wait_until_async(established, 60, "the CRD to be Established")

    async def served() -> bool:
        try:
            await api.get(GROUP_PATH)
        except ApiError:
            return False
        return True

    await wait_until_async(served, 60, "the CRD to be served")


async def create_policy(api: KubeHttp, name: str, spec: dict[str, Any]) -> None:
    body = {
        "apiVersion": "productionpolicy.dev/v1alpha1",
        "kind": "ProductionPolicy",
        "metadata": {"name": name},
        "spec": spec,
    }
    await api.create(GROUP_PATH, body, exist_ok=True)


# ---- the control plane and our processes --------------------------------------------------------------


@dataclass
class Plane:
    """A started local control plane, with the CRD applied and the operator's namespace created."""

    kubeconfig: Path
    binaries: Any
    workdir: Path
    _plane: Any = None

    def pids(self) -> dict[str, int]:
        """The process id of each control-plane component, by name."""
        return {name: c.process.pid for name, c in self._plane.components.items() if c.process is not None}


@contextlib.contextmanager
def control_plane(nodes: int = 2, apiserver_args: tuple[str, ...] = ()) -> Iterator[Plane]:
    """A fresh local control plane (etcd, kube-apiserver, kcm, scheduler, KWOK) for one scenario."""
    from devtools.devcluster.binaries import ensure_binaries
    from devtools.devcluster.controlplane import ControlPlane

    binaries = ensure_binaries(build=False)
    with tempfile.TemporaryDirectory(prefix="pp-bench-cluster-") as tmp:
        plane = ControlPlane(
            workdir=Path(tmp), nodes=nodes, binaries=binaries, apiserver_extra_args=apiserver_args
        )
        started = time.monotonic()
        plane.start()
        try:
            log(f"control plane up in {time.monotonic() - started:.1f}s at {plane.server}")

            async def prepare() -> None:
                async with KubeHttp(plane.kubeconfig) as api:
                    await apply_crd(api)
                    await create_namespace(api, OPERATOR_NAMESPACE)

            asyncio.run(prepare())
            yield Plane(plane.kubeconfig, binaries, Path(tmp), plane)
        finally:
            plane.stop()


@dataclass
class Process:
    """One of our processes, started with an optional CPU pin, its output in a log file."""

    argv: list[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    cpus: str | None = None
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        argv = (["taskset", "-c", self.cpus] if self.cpus is not None else []) + self.argv
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as out:
            self.popen = subprocess.Popen(
                argv,
                env={**os.environ, **self.env},
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def check_alive(self) -> bool:
        """True, or an error with the end of the process's log if it has exited."""
        assert self.popen is not None
        if self.popen.poll() is not None:
            raise RuntimeError(f"{self.argv[:4]} exited with {self.popen.returncode}:\n{self.log()[-3000:]}")
        return True

    def wait_https(self, url: str, timeout: float) -> None:
        """Wait until ``url`` answers 200 (the process must stay alive meanwhile)."""
        wait_until(lambda: self.check_alive() and https_ok(url), timeout, f"{url} to answer")

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(30)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)

    def __enter__(self) -> Process:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def operator_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "production_policy", *args]


def webhook_argv(port: int, cert: Path, key: Path) -> list[str]:
    """One webhook process on loopback, logging JSON as the chart does, no metrics port."""
    return operator_argv(
        "webhook",
        "--host=127.0.0.1",
        f"--port={port}",
        "--log-format=json",
        f"--tls-cert-file={cert}",
        f"--tls-key-file={key}",
        "--metrics-port=0",
    )


def memory_kib(pid: int) -> dict[str, int]:
    """Resident set (VmRSS) and its peak (VmHWM) of a process, in KiB."""
    found: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key = line.split(":", 1)[0]
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(line.split()[1])
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def settled(process: Process, timeout: float, quiet_seconds: float) -> float | None:
    """Wait until the process has used (almost) no CPU for ``quiet_seconds``; returns seconds waited.

    None when it was still busy at ``timeout`` (kopf still working through the initial listing).
    """
    began = time.monotonic()
    quiet_since: float | None = None
    last = cpu_seconds(process.pid)
    await asyncio.sleep(min(3.0, quiet_seconds))  # at least long enough to have started listing
    while time.monotonic() - began < timeout:
        process.check_alive()
        await asyncio.sleep(1)
        now = cpu_seconds(process.pid)
        busy = now - last
        last = now
        if busy < 0.03:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since >= quiet_seconds:
                return time.monotonic() - began
        else:
            quiet_since = None
    log(f"{process.argv[:4]} was still busy after {timeout:.0f}s; measuring it busy (recorded)")
    return None


def free_port() -> int:
    from devtools.devcluster.controlplane import free_port as _free_port

    return _free_port()


def https_ok(url: str) -> bool:
    import urllib.request

    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def load_now() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]
