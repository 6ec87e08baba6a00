"""Provide the control-plane binaries: found, cached, or built from the Go module proxy.

Standard library only, so it can run before the virtualenv exists
(``python3 devtools/devcluster/binaries.py``).

Lookup order for each binary: ``$KUBEBUILDER_ASSETS`` (the envtest convention), the per-version
cache under ``~/.cache/production-policy/``, then ``PATH`` (only when its version is recent
enough); otherwise it is built with ``go build`` and cached. Kubernetes staging modules cannot be
built with ``go install pkg@version`` (path replaces), so a wrapper go.mod pins each of them to
the published ``v0.Y.Z`` tag that matches ``k8s.io/kubernetes vY.Z``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

CACHE_ROOT = Path(os.environ.get("PRODUCTION_POLICY_CACHE", Path.home() / ".cache" / "production-policy"))

KUBERNETES_VERSIONS = ("v1.37.2", "v1.36.3", "v1.34.4")
ETCD_VERSIONS = ("v3.6.16", "v3.6.15", "v3.6.13")
KWOK_VERSIONS = ("v0.8.0", "v0.7.0")
HELM_VERSIONS = ("v3.22.0", "v3.21.4")
# Offline (`helm template`, `helm lint`) helm assumes the Kubernetes version stamped into it at build
# time, v1.20 unless told: the one we test against, so the chart's kubeVersion constraint holds.
HELM_ASSUMED_KUBERNETES = KUBERNETES_VERSIONS[0]

KUBE_BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
ALL_BINARIES = (*KUBE_BINARIES, "etcd", "kwok", "helm")

# The KWOK binary carries no stages; these are the ones kwokctl installs by default ("fast").
KWOK_STAGE_FILES = (
    "kustomize/stage/node/fast/node-initialize.yaml",
    "kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
    "kustomize/stage/pod/fast/pod-ready.yaml",
    "kustomize/stage/pod/fast/pod-complete.yaml",
    "kustomize/stage/pod/fast/pod-delete.yaml",
)
KWOK_STAGES_NAME = "kwok-stages.yaml"

# The oldest release of each we accept from PATH or KUBEBUILDER_ASSETS.
MINIMUM_VERSIONS = {
    "kube-apiserver": (1, 34),
    "kube-controller-manager": (1, 34),
    "kube-scheduler": (1, 34),
    "kubectl": (1, 33),
    "etcd": (3, 5),
    "kwok": (0, 7),
    "helm": (3, 14),
}


class BinaryError(RuntimeError):
    """A binary could not be found or built; the message says what was tried."""


@dataclass(frozen=True)
class Binaries:
    """Absolute paths of every control-plane binary, plus KWOK's stage configuration."""

    paths: dict[str, Path]
    kwok_stages: Path

    def __getitem__(self, name: str) -> Path:
        return self.paths[name]


def log(message: str) -> None:
    print(f"[cluster-bins] {message}", file=sys.stderr, flush=True)


def _go_env() -> dict[str, str]:
    env = dict(os.environ)
    flags = env.get("GOFLAGS", "")
    if "-mod=" not in flags:
        flags = f"{flags} -mod=mod".strip()
    env.update(GOFLAGS=flags, GOWORK="off", GOTOOLCHAIN="local", CGO_ENABLED="0")
    return env


def run_go(args: list[str], cwd: Path, what: str, gobin: Path | None = None) -> str:
    """Run ``go`` with a heartbeat every 30 s, so a long cold build shows it is alive."""
    if shutil.which("go") is None:
        raise BinaryError(
            "the Go toolchain (go) is not on PATH; install Go >= 1.25 to build the control plane"
        )
    started = time.monotonic()
    done = threading.Event()

    def heartbeat() -> None:
        while not done.wait(30):
            log(f"  {what}: still building, {time.monotonic() - started:.0f}s elapsed")

    threading.Thread(target=heartbeat, daemon=True).start()
    try:
        env = _go_env()
        if gobin is not None:
            env["GOBIN"] = str(gobin)
        proc = subprocess.run(["go", *args], cwd=cwd, env=env, capture_output=True, text=True)
    finally:
        done.set()
    if proc.returncode != 0:
        raise BinaryError(_explain_go_failure(what, proc.stderr))
    log(f"  {what}: done in {time.monotonic() - started:.0f}s")
    return proc.stdout


def _explain_go_failure(what: str, stderr: str) -> str:
    refused = sorted(
        set(re.findall(r"([\w./-]+@v[\w.+-]+)[^\n]*(?:404|410|not found|unknown revision|Forbidden)", stderr))
    )
    tail = "\n".join(stderr.strip().splitlines()[-15:])
    if refused:
        return f"{what}: the module proxy refused {', '.join(refused)}\n{tail}"
    return f"{what}: go failed\n{tail}"


def _version_of(path: Path, name: str) -> tuple[int, int] | None:
    flag = {"kubectl": ["version", "--client"], "helm": ["version", "--short"], "kwok": ["--version"]}.get(
        name, ["--version"]
    )
    try:
        out = subprocess.run([str(path), *flag], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"v?(\d+)\.(\d+)\.\d+", out)
    return (int(match.group(1)), int(match.group(2))) if match else None


def _usable(path: Path, name: str) -> bool:
    if not (path.is_file() and os.access(path, os.X_OK)):
        return False
    version = _version_of(path, name)
    return version is not None and version >= MINIMUM_VERSIONS[name]


def _preinstalled(name: str) -> Path | None:
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if assets and _usable(Path(assets) / name, name):
        return Path(assets) / name
    found = shutil.which(name)
    if found and _usable(Path(found), name):
        return Path(found)
    return None


def cached(directory: Path, names: tuple[str, ...]) -> bool:
    return all((directory / n).is_file() for n in names)


def publish(staging: Path, target: Path) -> None:
    """Move a finished build into the cache atomically, so a half build is never used."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)


def provide(target: Path, names: tuple[str, ...], what: str, make: Callable[[Path, Path], None]) -> Path:
    """``target``, holding ``names``: the cached build, or one made now by ``make(workdir, outdir)``
    in a scratch directory and published whole (every builder here and in devtools.kind)."""
    if cached(target, names):
        return target
    with tempfile.TemporaryDirectory(prefix="ppbins-") as tmp:
        work = Path(tmp)
        out = work / "out"
        out.mkdir()
        log(f"building {what}")
        make(work, out)
        publish(out, target)
    return target


def _with_fallbacks(component: str, versions: tuple[str, ...], build: Callable[[str], Path]) -> Path:
    errors = []
    for version in versions:
        try:
            return build(version)
        except BinaryError as exc:
            log(f"{component} {version} failed: {str(exc).splitlines()[0]}")
            errors.append(f"--- {component} {version} ---\n{exc}")
    raise BinaryError(
        f"could not build {component}; tried {', '.join(versions)} (in that order)\n" + "\n".join(errors)
    )


def download_module(work: Path, module: str, version: str) -> dict[str, str]:
    """``go mod download -json module@version`` (its ``Dir`` is the source, ``GoMod`` its go.mod)."""
    (work / "go.mod").write_text("module local.test/ppbins\n\ngo 1.25\n")
    info: dict[str, str] = json.loads(
        run_go(["mod", "download", "-json", f"{module}@{version}"], work, f"download {module}@{version}")
    )
    if "Error" in info:
        raise BinaryError(f"the module proxy refused {module}@{version}: {info['Error']}")
    return info


def build_kubernetes(
    version: str, names: tuple[str, ...] = KUBE_BINARIES, cache_name: str = "kubernetes"
) -> Path:
    """Build the ``k8s.io/kubernetes`` commands ``names`` at ``version`` into the cache directory
    ``<cache_name>-<version>`` (the control plane here, the kind node's binaries in devtools.kind)."""
    minor = version.split(".")[1]
    staging_version = f"v0.{version.removeprefix('v1.')}"

    def make(work: Path, out: Path) -> None:
        upstream = Path(download_module(work, "k8s.io/kubernetes", version)["GoMod"]).read_text()
        go_line = re.search(r"^go \S+$", upstream, re.M)
        godebug = re.search(r"^godebug .+$", upstream, re.M)
        staged = sorted(set(re.findall(r"^\s*(k8s\.io/[\w.-]+) => \./staging/", upstream, re.M)))
        if not staged:
            raise BinaryError(f"k8s.io/kubernetes@{version}: no staging replaces found in its go.mod")
        lines = ["module local.test/ppbins", "", go_line.group(0) if go_line else "go 1.25"]
        if godebug:
            lines.append(godebug.group(0))
        lines += ["", f"require k8s.io/kubernetes {version}", "", "replace ("]
        lines += [f"\t{m} => {m} {staging_version}" for m in staged]
        lines += [")", ""]
        (work / "go.mod").write_text("\n".join(lines))
        ldflags = ["-s", "-w"]
        for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
            ldflags += [
                f"-X {pkg}.gitVersion={version}",
                f"-X {pkg}.gitMajor=1",
                f"-X {pkg}.gitMinor={minor}",
                f"-X {pkg}.gitTreeState=clean",
                f"-X {pkg}.buildDate=1970-01-01T00:00:00Z",
            ]
        for name in names:
            run_go(
                [
                    "build",
                    "-trimpath",
                    "-tags",
                    "selinux,notest,grpcnotrace",
                    "-ldflags",
                    " ".join(ldflags),
                    "-o",
                    str(out / name),
                    f"k8s.io/kubernetes/cmd/{name}",
                ],
                work,
                f"{name} {version}",
            )

    what = f"{', '.join(names)} {version} (cold: many minutes)"
    return provide(_cache_dir(cache_name, version), names, what, make)


def build_etcd(version: str) -> Path:
    """Build etcd from ``go.etcd.io/etcd/server/v3`` (its module root is the etcd binary)."""

    def make(work: Path, out: Path) -> None:
        download_module(work, "go.etcd.io/etcd/server/v3", version)
        (work / "go.mod").write_text(
            f"module local.test/ppbins\n\ngo 1.25\n\nrequire go.etcd.io/etcd/server/v3 {version}\n"
        )
        run_go(
            ["build", "-trimpath", "-ldflags", "-s -w", "-o", str(out / "etcd"), "go.etcd.io/etcd/server/v3"],
            work,
            f"etcd {version}",
        )

    return provide(_cache_dir("etcd", version), ("etcd",), f"etcd {version}", make)


def build_kwok(version: str) -> Path:
    """Build kwok and gather the default node and pod stages kwokctl would install."""

    def make(work: Path, out: Path) -> None:
        _write_kwok_stages(work, version, out / KWOK_STAGES_NAME)
        run_go(
            ["install", "-trimpath", "-ldflags", "-s -w", f"sigs.k8s.io/kwok/cmd/kwok@{version}"],
            work,
            f"kwok {version}",
            gobin=out,
        )

    return provide(_cache_dir("kwok", version), ("kwok", KWOK_STAGES_NAME), f"kwok {version}", make)


def _write_kwok_stages(work: Path, version: str, destination: Path) -> None:
    source = Path(download_module(work, "sigs.k8s.io/kwok", version)["Dir"])
    documents = [(source / f).read_text().strip() for f in KWOK_STAGE_FILES]
    destination.write_text("\n---\n".join(documents) + "\n")


def _helm_ldflags(version: str) -> list[str]:
    """helm's own version and the Kubernetes version it assumes offline, as its Makefile sets them."""
    major, minor = HELM_ASSUMED_KUBERNETES.removeprefix("v").split(".")[:2]
    flags = ["-s", "-w", f"-X helm.sh/helm/v3/internal/version.version={version}"]
    for pkg in ("helm.sh/helm/v3/pkg/chartutil", "helm.sh/helm/v3/pkg/lint/rules"):
        flags += [f"-X {pkg}.k8sVersionMajor={major}", f"-X {pkg}.k8sVersionMinor={minor}"]
    return flags


def build_helm(version: str) -> Path:
    """Build helm with its version and the Kubernetes version it assumes stamped in."""

    def make(work: Path, out: Path) -> None:
        (work / "go.mod").write_text("module local.test/ppbins\n\ngo 1.25\n")
        run_go(
            [
                "install",
                "-trimpath",
                "-ldflags",
                " ".join(_helm_ldflags(version)),
                f"helm.sh/helm/v3/cmd/helm@{version}",
            ],
            work,
            f"helm {version}",
            gobin=out,
        )

    what = f"helm {version} (assumes Kubernetes {HELM_ASSUMED_KUBERNETES} offline)"
    return provide(_cache_dir("helm", version), ("helm",), what, make)


def _cached_kwok_stages() -> Path | None:
    for version in KWOK_VERSIONS:
        stages = _cache_dir("kwok", version) / KWOK_STAGES_NAME
        if stages.is_file():
            return stages
    return None


# (binaries, component, versions tried in order, how to build them): one go build gives all its binaries.
_COMPONENTS: tuple[tuple[tuple[str, ...], str, tuple[str, ...], Callable[[str], Path]], ...] = (
    (KUBE_BINARIES, "kubernetes", KUBERNETES_VERSIONS, build_kubernetes),
    (("etcd",), "etcd", ETCD_VERSIONS, build_etcd),
    (("kwok",), "kwok", KWOK_VERSIONS, build_kwok),
    (("helm",), "helm", HELM_VERSIONS, build_helm),
)


def _cache_dir(component: str, version: str) -> Path:
    """Where a build is cached: keyed by everything in its recipe that changes the binary.

    helm's key carries the Kubernetes version it assumes, so changing that rebuilds it instead of
    reusing a helm that still believes in v1.20.
    """
    if component == "helm":
        return CACHE_ROOT / f"helm-{version}-kube-{HELM_ASSUMED_KUBERNETES}"
    return CACHE_ROOT / f"{component}-{version}"


def _in_cache(component: str, versions: tuple[str, ...], names: tuple[str, ...]) -> Path | None:
    directories = (_cache_dir(component, version) for version in versions)
    return next((directory for directory in directories if cached(directory, names)), None)


def find_binary(name: str) -> Path:
    """One binary, pre-installed or cached, never built: for a caller that needs only it (helm, kubectl).

    Raises BinaryError naming that binary alone, where ``ensure_binaries(build=False)`` would name
    whichever binary of the whole set it missed first.
    """
    found = _preinstalled(name)
    if found:
        return found
    component, versions = next((c, v) for names, c, v, _ in _COMPONENTS if name in names)
    directory = _in_cache(component, versions, (name,))
    if directory is None:
        raise BinaryError(f"{name} not found; run `make cluster-bins` to build it")
    return directory / name


def ensure_binaries(build: bool = True) -> Binaries:
    """Find or build every binary; with ``build=False`` raise instead of building."""
    started = time.monotonic()
    paths: dict[str, Path] = {}
    for name in ALL_BINARIES:
        found = _preinstalled(name)
        if found:
            paths[name] = found
    for names, component, versions, builder in _COMPONENTS:
        missing = [n for n in names if n not in paths]
        if not missing:
            continue
        directory = _in_cache(component, versions, tuple(missing))
        if directory is None:
            if not build:
                raise BinaryError(f"{', '.join(missing)} not found; run `make cluster-bins` to build them")
            directory = _with_fallbacks(component, versions, builder)
        for n in missing:
            paths[n] = directory / n
    stages = _cached_kwok_stages()
    if stages is None:
        if not build:
            raise BinaryError("KWOK stages not found; run `make cluster-bins`")
        stages = _with_fallbacks("kwok", KWOK_VERSIONS, build_kwok) / KWOK_STAGES_NAME
    log(f"all binaries ready in {time.monotonic() - started:.0f}s")
    return Binaries(paths=paths, kwok_stages=stages)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="only report; do not build")
    args = parser.parse_args(argv)
    try:
        binaries = ensure_binaries(build=not args.check)
    except BinaryError as exc:
        log(f"ERROR: {exc}")
        return 1
    for name, path in sorted(binaries.paths.items()):
        print(f"{name}\t{path}")
    print(f"kwok-stages\t{binaries.kwok_stages}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
