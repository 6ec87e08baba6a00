"""Run helm and kubectl (the cached builds) against the chart, and split what they print."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from devtools.kind.release import Release, run_helm
from tests.support.cluster import (
    Cluster,
    remove_webhook_configurations,
    require_cluster,
    webhook_configurations,
)
from tests.support.paths import REPO

CHART = REPO / "charts" / "production-policy"


@cache
def binary(name: str) -> Path:
    """helm or kubectl from the cache; skip (or, with PP_REQUIRE_CLUSTER=1, fail) when absent."""
    from devtools.devcluster.binaries import BinaryError, find_binary

    try:
        return find_binary(name)
    except BinaryError as exc:
        if require_cluster():
            raise
        pytest.skip(f"{name} is not available: {exc}")


@dataclass(frozen=True)
class Helm:
    """helm with its own config/cache directories (never the user's) and, optionally, a cluster."""

    home: Path
    kubeconfig: Path | None = None

    def run(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return run_helm(binary("helm"), self.home, self.kubeconfig, args, check=check, timeout=timeout)

    def template(
        self, release: str, namespace: str, values: Sequence[str] = (), *extra: str
    ) -> list[dict[str, Any]]:
        """``helm template`` of the chart as objects; ``values`` are ``--set`` assignments.

        No ``--kube-version``: the project's helm assumes the Kubernetes version we test against,
        as a person running ``helm template`` gets it.
        """
        args = ["template", release, str(CHART), "--namespace", namespace]
        for assignment in values:
            args += ["--set", assignment]
        return documents(self.run(*args, *extra).stdout)


def documents(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


@contextlib.contextmanager
def removed_after(release: Release, cluster: Cluster) -> Iterator[Release]:
    """``release`` for the block, then removed whatever happened, webhook configurations included
    (again here should ``remove`` fail): one left pointing at no pod would break every later pod create."""
    try:
        yield release
    finally:
        try:
            release.remove()
        finally:
            remove_webhook_configurations(cluster)


def release_objects(release: Release) -> list[dict[str, Any]]:
    """The release's objects as Helm recorded them (hooks left out)."""
    return documents(release.run("get", "manifest", release.name, "--namespace", release.namespace))


def kubectl(
    kubeconfig: Path, *args: str, stdin: str | None = None, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``kubectl ARGS`` against ``kubeconfig``; ``check``: fail the test, with kubectl's output, when it
    fails (pass ``check=False`` to read a refusal, or ``auth can-i``'s "no", which exits 1)."""
    proc = subprocess.run(
        [str(binary("kubectl")), "--kubeconfig", str(kubeconfig), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [obj for obj in objects if obj.get("kind") == kind]


def one(objects: list[dict[str, Any]], kind: str, name_suffix: str = "") -> dict[str, Any]:
    """The single object of ``kind`` whose name ends with ``name_suffix``."""
    found = [obj for obj in by_kind(objects, kind) if obj["metadata"]["name"].endswith(name_suffix)]
    assert len(found) == 1, (
        f"expected one {kind} *{name_suffix}, found {[o['metadata']['name'] for o in found]}"
    )
    return found[0]


def is_hook(obj: dict[str, Any]) -> bool:
    return "helm.sh/hook" in (obj.get("metadata", {}).get("annotations") or {})


def assert_uninstalled(cluster: Cluster, objects: list[dict[str, Any]]) -> None:
    """What ``helm uninstall`` must leave behind: none of the release's ``objects`` (its manifest,
    read before the uninstall) and neither webhook configuration (the pre-delete hook's work; a
    leftover one, pointing at no pod, refuses or slows every later pod create)."""
    assert not webhook_configurations(cluster)
    left = kubectl(
        cluster.kubeconfig,
        "get",
        "-f",
        "-",
        "-o",
        "name",
        "--ignore-not-found",
        stdin=yaml.safe_dump_all(objects),
    ).stdout.split()
    assert not left, f"left behind: {left}"
