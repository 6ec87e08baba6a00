"""``python -m devtools.image``: the operator's image, ``production-policy:dev``, built with no registry.

Where the Dockerfile's default base (``python:3.11-slim-bookworm``) is already in the engine, it is
used. Otherwise the base is built from Debian's own packages (``debootstrap`` bookworm, minbase plus
``python3``: Python 3.11, the version the lock is compiled for) and cached as an image keyed by its
recipe. The locked wheels are downloaded on the host into a cache keyed by requirements.lock, copied
into ``.wheelhouse/`` (the one extra path the build context allows) and installed with
``pip install --no-index``, so ``docker build`` runs with ``--network=none``.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
from pathlib import Path

from devtools.devcluster.binaries import CACHE_ROOT
from devtools.kind.engine import Engine, find_or_start_engine
from devtools.kind.host import debian_mirror, ensure_commands, log
from devtools.kind.images import ImageError, docker_build, exists

REPO = Path(__file__).resolve().parent.parent
DEFAULT_TAG = "production-policy:dev"
UPSTREAM_BASE = "python:3.11-slim-bookworm"
SUITE = "bookworm"
PACKAGES = "python3,python3-venv,ca-certificates"
BASE_REPOSITORY = "production-policy/python-base"
WHEELHOUSE = REPO / ".wheelhouse"
PYTHON_VERSION = "3.11"
# Wheels for the base's glibc (bookworm: 2.36) and x86_64; pure-Python wheels match any platform.
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")


def _digest(*parts: str | bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part if isinstance(part, bytes) else part.encode())
    return digest.hexdigest()[:12]


def python_base(engine: Engine) -> str:
    """The base image: the upstream slim Python image if the engine has it, else ours from Debian."""
    if exists(engine, UPSTREAM_BASE):
        return UPSTREAM_BASE
    tag = f"{BASE_REPOSITORY}:{SUITE}-{_digest(SUITE, PACKAGES, inspect.getsource(python_base))}"
    if exists(engine, tag):
        return tag
    tools = ensure_commands({"debootstrap": "debootstrap"}, "building a Python base image from Debian")
    if os.geteuid() != 0:
        raise ImageError(f"debootstrap needs root; or make {UPSTREAM_BASE} available to the engine")
    scratch = CACHE_ROOT / "tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pp-pybase-", dir=scratch) as tmp:
        work = Path(tmp)
        root = work / "rootfs"
        mirror = debian_mirror(SUITE)
        log(f"debootstrap {SUITE} with {PACKAGES} (a few minutes)")
        argv = [
            str(tools["debootstrap"]),
            "--variant=minbase",
            f"--include={PACKAGES}",
            SUITE,
            str(root),
            mirror,
        ]
        proc = subprocess.run(argv, capture_output=True, text=True)
        if proc.returncode != 0:
            raise ImageError(f"debootstrap {SUITE} from {mirror} failed:\n{proc.stderr[-3000:]}")
        # No apt state naming the mirror in the image, no caches, docs, translations or logs.
        (root / "etc/apt/sources.list").write_text("# offline image\n")
        for directory in (
            "var/lib/apt/lists",
            "var/cache/apt",
            "usr/share/doc",
            "usr/share/man",
            "usr/share/locale",
            "var/log",
        ):
            shutil.rmtree(root / directory, ignore_errors=True)
            (root / directory).mkdir(parents=True)
        with tarfile.open(work / "rootfs.tar", "w") as tar:
            tar.add(root, arcname=".", filter=lambda m: None if m.name.startswith("./dev/") else m)
        shutil.rmtree(root)
        docker_build(
            engine,
            tag,
            work,
            "FROM scratch\nADD rootfs.tar /\n"
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8\n"
            'CMD ["python3"]\n',
        )
    log(f"built {tag}")
    return tag


def wheelhouse() -> Path:
    """The locked runtime wheels and the build backend, downloaded once per requirements.lock."""
    lock = (REPO / "requirements.lock").read_bytes()
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    requirements = [*project["project"]["dependencies"], *project["build-system"]["requires"]]
    cached = CACHE_ROOT / f"wheelhouse-py{PYTHON_VERSION}-{_digest(lock, repr(requirements))}"
    if not cached.is_dir():
        staging = cached.with_name(cached.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
        argv = [sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(staging)]
        argv += ["--only-binary=:all:", "--python-version", PYTHON_VERSION, "--implementation", "cp"]
        argv += [*platforms, "--constraint", str(REPO / "requirements.lock"), *requirements]
        log("downloading the locked wheels")
        proc = subprocess.run(argv, capture_output=True, text=True)
        if proc.returncode != 0:
            raise ImageError(f"pip download of the locked wheels failed:\n{proc.stderr[-3000:]}")
        staging.replace(cached)
    return cached


def build_image(engine: Engine, tag: str = DEFAULT_TAG) -> str:
    """Build the Dockerfile as ``tag`` with no network: a local base and the host's wheels."""
    base = python_base(engine)
    shutil.rmtree(WHEELHOUSE, ignore_errors=True)
    shutil.copytree(wheelhouse(), WHEELHOUSE)
    try:
        started = time.monotonic()
        proc = subprocess.run(
            [
                *("docker", "build", "--network=none", "--build-arg", f"PYTHON_IMAGE={base}"),
                *("--build-arg", "OFFLINE_WHEELS=1", "-t", tag, str(REPO)),
            ],
            env={**engine.env, "DOCKER_BUILDKIT": "0"},
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise ImageError(f"docker build {tag} failed:\n{(proc.stdout + proc.stderr)[-4000:]}")
    finally:
        shutil.rmtree(WHEELHOUSE, ignore_errors=True)
    size = engine.docker("image", "inspect", "--format", "{{.Size}}", tag).stdout.strip()
    log(f"built {tag} on {base} in {time.monotonic() - started:.0f} s ({int(size) / 1e6:.0f} MB)")
    return tag


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.image", description=__doc__)
    parser.add_argument("--tag", default=DEFAULT_TAG)
    args = parser.parse_args(argv)
    engine = find_or_start_engine()
    try:
        build_image(engine, args.tag)
    except ImageError as exc:
        log(f"ERROR: {exc}")
        return 1
    finally:
        # A dockerd we started stops again; its data root (and so the image) stays in the cache.
        engine.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
