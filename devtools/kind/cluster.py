"""A kind cluster of ours, created with pytest-kind's ``KindCluster`` and removed without leftovers.

``prepare`` gets everything a cluster needs (an engine that can run privileged containers, the
binaries, the node and busybox images); ``KindRun`` creates the cluster on it, waits until the node
and kube-system are Ready, and on ``delete`` removes the cluster and the docker network kind made
for it. The test session (tests/conftest.py) and ``python -m devtools.kind`` both use these.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from devtools.devcluster.binaries import BinaryError, ensure_binaries
from devtools.kind.binaries import KindBinaries, ensure_kind_binaries, kind_binary
from devtools.kind.engine import Engine, EngineError, ensure_privileged, find_or_start_engine
from devtools.kind.host import HostError, log
from devtools.kind.images import ImageError, busybox_image, node_image

# Everything that can stop us from having a cluster, each with a message that says why.
PREPARE_ERRORS = (BinaryError, EngineError, HostError, ImageError)


# Besides the static control-plane pods: what makes Services and DNS work.
SYSTEM_APPS = ("kube-proxy", "coredns")


class KindError(RuntimeError):
    """The kind cluster did not come up; the message says what was seen."""


@dataclass
class Prepared:
    """What a kind cluster of ours is made of."""

    engine: Engine
    kind: Path
    kubectl: Path
    node_image: str
    busybox_image: str
    binaries: KindBinaries | None  # None when KIND_NODE_IMAGE names the node image


def engine_for_kind() -> Engine:
    """An engine that runs privileged containers: found, or ours (started, and stopped by the caller)."""
    engine = find_or_start_engine()
    try:
        ensure_privileged(engine, busybox_image(engine))
    except BaseException:
        engine.stop()
        raise
    return engine


def prepare(engine: Engine, build: bool) -> Prepared:
    """Find or build the binaries and images on ``engine`` (``build=False``: only find the binaries,
    whose cold build takes too long for a test session; the images are built when missing)."""
    busybox = busybox_image(engine)
    given = os.environ.get("KIND_NODE_IMAGE")
    if given:
        if engine.docker("image", "inspect", given, check=False).returncode != 0:
            engine.docker("pull", given)
        control_plane = ensure_binaries(build=build)
        return Prepared(engine, kind_binary(build), control_plane["kubectl"], given, busybox, None)
    binaries = ensure_kind_binaries(build=build)
    image = node_image(engine, binaries)
    return Prepared(engine, binaries.kind, binaries.kubectl, image, busybox, binaries)


def kind_config(engine: Engine) -> str:
    """The kind config for this engine's host: only the settings the host needs, found out, not assumed."""
    info = json.loads(engine.docker("info", "--format", "{{json .}}").stdout)
    lines = ["kind: Cluster", "apiVersion: kind.x-k8s.io/v1alpha4"]
    if str(info.get("CgroupVersion", "2")) == "1":
        # kubelet 1.35+ refuses cgroup v1 hosts unless told otherwise.
        lines += ["kubeadmConfigPatches:", "- |", "  kind: KubeletConfiguration", "  failCgroupV1: false"]
    if engine.drops_sys_resource:
        # Without CAP_SYS_RESOURCE nothing in the node may lower oom_score_adj, and containerd asks
        # -998 for every pod sandbox; restricted, it keeps the sandbox at its own score instead.
        lines += [
            "containerdConfigPatches:",
            "- |",
            '  [plugins."io.containerd.grpc.v1.cri"]',
            "    restrict_oom_score_adj = true",
        ]
    return "\n".join(lines) + "\n"


class KindRun:
    """One kind cluster: ``create`` it, use ``kubeconfig``/``kubectl``/``load``, then ``delete`` it."""

    def __init__(self, prepared: Prepared, name: str, workdir: Path, kubeconfig: Path | None = None) -> None:
        from pytest_kind import KindCluster  # type: ignore[import-untyped]  # test-only, GPL: dev extra

        self.prepared = prepared
        self.name = name
        # kind's default network is shared by every kind cluster on the engine; ours has our name,
        # so deleting it after the cluster can touch nothing else.
        self.network = f"{name}-net"
        self.workdir = workdir
        self.kubeconfig = kubeconfig or workdir / "kubeconfig"
        self._saved_env: dict[str, str | None] = {}
        self.kind = KindCluster(
            name,
            self.kubeconfig,
            image=prepared.node_image,
            kind_path=prepared.kind,
            kubectl_path=prepared.kubectl,
        )

    @contextmanager
    def _environment(self) -> Iterator[None]:
        # KindCluster runs kind and kubectl with our own environment; they find the engine there.
        values = {"DOCKER_HOST": self.prepared.engine.host, "KIND_EXPERIMENTAL_DOCKER_NETWORK": self.network}
        saved = {k: os.environ.get(k) for k in values}
        os.environ.update(values)
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    def exists(self) -> bool:
        out = self.prepared.engine.docker(
            "ps", "-a", "-q", "--filter", f"label=io.x-k8s.kind.cluster={self.name}"
        ).stdout
        return bool(out.split())

    def create(self, timeout: float = 300) -> None:
        """Create the cluster (or reuse one kept with --keep-cluster) and wait until it is usable."""
        started = time.monotonic()
        config = self.workdir / "kind-config.yaml"
        config.write_text(kind_config(self.prepared.engine))
        try:
            with self._environment():
                if self.exists():
                    # KindCluster reuses a cluster by name but keeps the kubeconfig it was given.
                    self.kubeconfig.write_text(
                        subprocess.run(
                            [str(self.prepared.kind), "get", "kubeconfig", f"--name={self.name}"],
                            capture_output=True,
                            text=True,
                            check=True,
                        ).stdout
                    )
                    self.kubeconfig.chmod(0o600)
                self.kind.create(config_file=config)
            created = time.monotonic()
            self.wait_ready(timeout)
        except BaseException:
            self.delete()
            raise
        log(
            f"kind cluster {self.name}: created in {created - started:.0f}s, node and kube-system Ready "
            f"{time.monotonic() - created:.0f}s later ({self.prepared.node_image})"
        )

    def kubectl(self, *args: str) -> str:
        with self._environment():
            out: str = self.kind.kubectl(*args)
        return out

    def load(self, image: str) -> None:
        """``kind load docker-image``: the image goes into the node's containerd, no registry involved."""
        with self._environment():
            self.kind.load_docker_image(image)

    def wait_ready(self, timeout: float) -> None:
        """The node Ready and every kube-system pod Ready, kube-proxy and CoreDNS among them."""
        deadline = time.monotonic() + timeout
        seen = "nothing yet"
        while time.monotonic() < deadline:
            try:
                nodes = json.loads(self.kubectl("get", "nodes", "-o", "json"))["items"]
                pods = json.loads(self.kubectl("get", "pods", "-n", "kube-system", "-o", "json"))["items"]
            except Exception as exc:  # the API server is still starting
                seen = f"API not answering: {exc}"
                time.sleep(1)
                continue
            unready = [p["metadata"]["name"] for p in pods if not _ready(p)]
            absent = [
                a for a in SYSTEM_APPS if not any(p["metadata"]["name"].startswith(a + "-") for p in pods)
            ]
            if nodes and all(_ready(n) for n in nodes) and not unready and not absent:
                return
            seen = f"nodes ready: {[_ready(n) for n in nodes]}, unready pods: {unready}, no pod yet: {absent}"
            time.sleep(1)
        raise KindError(f"kind cluster {self.name} not ready after {timeout:.0f}s: {seen}")

    def delete(self) -> None:
        """Delete the cluster and its network; safe to call twice, and when create failed half way."""
        engine = self.prepared.engine
        if self.exists():
            with self._environment():
                self.kind.delete()
        # kind leaves its network behind, by design; ours is named after the cluster.
        if engine.docker("network", "inspect", self.network, check=False).returncode == 0:
            engine.docker("network", "rm", self.network, check=False)


def _ready(item: dict[str, object]) -> bool:
    status = item.get("status")
    conditions = status.get("conditions", []) if isinstance(status, dict) else []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
