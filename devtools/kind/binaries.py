"""The binaries of a kind cluster, found in or built into the same cache as the control plane's.

A kind node runs the control plane as static pods (their images hold the binaries devcluster builds:
kube-apiserver, kube-controller-manager, kube-scheduler, etcd) plus what only a node needs: kubelet,
kubeadm and kube-proxy (the same ``k8s.io/kubernetes`` wrapper module and version ldflags, at the
version of that kube-apiserver), a pause binary for pod sandboxes and a slim CoreDNS at the version
kubeadm asks for. kind itself is built from its module.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from devtools.devcluster.binaries import (
    CACHE_ROOT,
    Binaries,
    BinaryError,
    build_kubernetes,
    cached,
    ensure_binaries,
    provide,
    run_go,
)

KIND_VERSION = "v0.33.0"
NODE_BINARIES = ("kubelet", "kubeadm", "kube-proxy")
HERE = Path(__file__).parent


@dataclass(frozen=True)
class KindBinaries:
    """Every binary a kind cluster of ours is made of, and the Kubernetes version they share."""

    kubernetes_version: str
    control_plane: Binaries
    node: dict[str, Path]
    kind: Path
    pause: Path
    coredns: Path
    coredns_version: str

    @property
    def kubectl(self) -> Path:
        return self.control_plane["kubectl"]


def kube_version(binary: Path) -> str:
    """The full ``vX.Y.Z`` a Kubernetes binary reports (``Kubernetes v1.37.2``)."""
    out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=30).stdout
    match = re.search(r"v\d+\.\d+\.\d+", out)
    if not match:
        raise BinaryError(f"{binary} --version did not print a version: {out.strip()!r}")
    return match.group(0)


def _provide(target: Path, name: str, build: bool, what: str, make: Callable[[Path, Path], None]) -> Path:
    """``target/name`` from the cache, or made by ``make(workdir, outdir)`` and published there."""
    if not build and not cached(target, (name,)):
        raise BinaryError(f"{what} is not built; run `make kind-bins`")
    return provide(target, (name,), what, make) / name


def _source_key(source: Path) -> str:
    """Part of a cache key: what we build from our own sources is rebuilt when they change."""
    return hashlib.sha256(source.read_bytes()).hexdigest()[:12]


def kind_binary(build: bool) -> Path:
    def make(work: Path, out: Path) -> None:
        (work / "go.mod").write_text("module local.test/ppbins\n\ngo 1.25\n")
        install = ["install", "-trimpath", "-ldflags", "-s -w", f"sigs.k8s.io/kind@{KIND_VERSION}"]
        run_go(install, work, f"kind {KIND_VERSION}", gobin=out)

    return _provide(CACHE_ROOT / f"kind-{KIND_VERSION}", "kind", build, f"kind {KIND_VERSION}", make)


def pause_binary(build: bool) -> Path:
    source = HERE / "pause" / "main.go"

    def make(work: Path, out: Path) -> None:
        (work / "go.mod").write_text("module local.test/pause\n\ngo 1.25\n")
        (work / "main.go").write_bytes(source.read_bytes())
        run_go(["build", "-trimpath", "-ldflags", "-s -w", "-o", str(out / "pause"), "."], work, "pause")

    return _provide(CACHE_ROOT / f"kind-pause-{_source_key(source)}", "pause", build, "pause", make)


def coredns_binary(version: str, build: bool) -> Path:
    """CoreDNS ``version`` with only the plugins kubeadm's Corefile uses (see coredns/main.go)."""
    source = HERE / "coredns" / "main.go"
    what = f"coredns {version} (slim)"

    def make(work: Path, out: Path) -> None:
        module = f"github.com/coredns/coredns {version}"
        (work / "go.mod").write_text(f"module local.test/coredns\n\ngo 1.25\n\nrequire {module}\n")
        (work / "main.go").write_bytes(source.read_bytes())
        run_go(["mod", "tidy"], work, f"go mod tidy for github.com/coredns/coredns@{version}")
        run_go(["build", "-trimpath", "-ldflags", "-s -w", "-o", str(out / "coredns"), "."], work, what)

    target = CACHE_ROOT / f"coredns-slim-{version}-{_source_key(source)}"
    return _provide(target, "coredns", build, what, make)


def kubeadm_images(kubeadm: Path, version: str) -> dict[str, str]:
    """kubeadm's image list for ``version``, by short name (``etcd`` -> ``registry.k8s.io/etcd:3.7.0-0``)."""
    proc = subprocess.run(
        [str(kubeadm), "config", "images", "list", f"--kubernetes-version={version}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if proc.returncode != 0:
        raise BinaryError(f"kubeadm config images list failed: {proc.stderr.strip()}")
    images = {}
    for ref in proc.stdout.split():
        name = ref.rsplit(":", 1)[0].rsplit("/", 1)[-1]
        images[name] = ref
    return images


def ensure_kind_binaries(build: bool = True) -> KindBinaries:
    """Find or build everything; with ``build=False`` raise (naming ``make kind-bins``) instead."""
    control_plane = ensure_binaries(build=build)
    version = kube_version(control_plane["kube-apiserver"])
    node_dir = CACHE_ROOT / f"kubernetes-node-{version}"
    if not cached(node_dir, NODE_BINARIES):
        if not build:
            raise BinaryError(
                f"kubelet, kubeadm and kube-proxy {version} are not built; run `make kind-bins`"
            )
        try:
            build_kubernetes(version, NODE_BINARIES, "kubernetes-node")
        except BinaryError as exc:
            apiserver = control_plane["kube-apiserver"]
            raise BinaryError(f"the node binaries must match {apiserver} ({version}): {exc}") from exc
    node = {name: node_dir / name for name in NODE_BINARIES}
    coredns_ref = kubeadm_images(node["kubeadm"], version).get("coredns")
    if coredns_ref is None:
        raise BinaryError(f"kubeadm {version} lists no coredns image")
    coredns_version = coredns_ref.rsplit(":", 1)[1]
    return KindBinaries(
        kubernetes_version=version,
        control_plane=control_plane,
        node=node,
        kind=kind_binary(build),
        pause=pause_binary(build),
        coredns=coredns_binary(coredns_version, build),
        coredns_version=coredns_version,
    )
