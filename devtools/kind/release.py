"""The operator installed on a kind cluster the way the README says (section "Installing on a
cluster with Helm"): ``make image``, ``kind load docker-image``, then its ``helm install``.

``install`` is the one path: tests/kind/test_helm.py and ``make demo CLUSTER=kind`` both use it, and
tests/unit/test_docs.py holds the README's commands to ``README_COMMANDS``, so what users are told
to run is what the tests run.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from devtools.devcluster.binaries import find_binary
from devtools.image import DEFAULT_TAG, build_image
from devtools.kind.cluster import KindRun
from devtools.kind.host import log
from production_policy.admission.configuration import CONFIGURATION_NAME

REPO = Path(__file__).resolve().parents[2]
RELEASE = "production-policy"
NAMESPACE = "production-policy"
# Relative, as the README writes it: helm runs from the repository.
CHART = "charts/production-policy"
IMAGE_REPOSITORY, _, IMAGE_TAG = DEFAULT_TAG.partition(":")
# The README's command; the image is the one `make image` builds and `kind load` put in the node
# (the chart's pullPolicy IfNotPresent then never pulls it). --wait: helm returns once every
# Deployment has all its replicas Ready by their own probes (maxUnavailable is 0 in both).
INSTALL = (
    *("helm", "install", RELEASE, CHART, "--namespace", NAMESPACE, "--create-namespace"),
    *("--set", f"image.repository={IMAGE_REPOSITORY}", "--set", f"image.tag={IMAGE_TAG}", "--wait"),
)
README_COMMANDS = (("make", "image"), ("kind", "load", "docker-image", DEFAULT_TAG), INSTALL)
# helm's own --timeout default (5m): how long --wait waits.
WAIT_SECONDS = 300


class ReleaseError(RuntimeError):
    """A helm command failed; the message has its output and, for an install, the pods' state."""


def run_helm(
    helm: Path,
    home: Path,
    kubeconfig: Path | None,
    args: Sequence[str],
    *,
    check: bool = True,
    timeout: float = WAIT_SECONDS + 60,
) -> subprocess.CompletedProcess[str]:
    """``helm ARGS`` from the repository, with its config, cache and data directories under ``home``
    (never the user's) and, when given, ``kubeconfig``. ``check``: raise ReleaseError, with helm's
    output, when it fails. The one way helm is run, here and by the tests (tests/support/helm.py)."""
    env = {
        **os.environ,
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
    }
    if kubeconfig is not None:
        env["KUBECONFIG"] = str(kubeconfig)
    proc = subprocess.run(
        [str(helm), *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )
    if check and proc.returncode != 0:
        raise ReleaseError(f"helm {shlex.join(args)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return proc


@dataclass(frozen=True)
class Release:
    """The chart installed in a cluster: who it is, where, and how long ``install`` took."""

    name: str
    namespace: str
    kubeconfig: Path
    helm: Path
    kubectl: Path
    home: Path  # helm's own directories
    image: str = ""  # built and loaded for it; "": the chart's default, never run (tests/e2e: KWOK)
    build_seconds: float = 0.0  # `make image` (cached layers when the sources did not change)
    load_seconds: float = 0.0  # `kind load docker-image`
    install_seconds: float = 0.0  # `helm install --wait`: until every pod is Ready

    def run(self, *args: str, check: bool = True, timeout: float = WAIT_SECONDS + 60) -> str:
        """``helm ARGS`` against this cluster, from the repository; its stdout. ``check``: raise
        ReleaseError when it fails."""
        return run_helm(self.helm, self.home, self.kubeconfig, args, check=check, timeout=timeout).stdout

    def installed(self) -> bool:
        status = ("status", self.name, "--namespace", self.namespace)
        return run_helm(self.helm, self.home, self.kubeconfig, status, check=False).returncode == 0

    def upgrade(self, *values: str) -> str:
        """``helm upgrade`` keeping every value given so far, plus ``values`` (``key=value``)."""
        sets = [arg for value in values for arg in ("--set", value)]
        return self.run(
            "upgrade", self.name, CHART, "--namespace", self.namespace, "--reuse-values", *sets, "--wait"
        )

    def test(self) -> str:
        """``helm test``: the chart's test pod runs (and is deleted once it succeeded, so there are
        no logs to ask for: ``--logs`` would fail)."""
        return self.run("test", self.name, "--namespace", self.namespace)

    def uninstall(self) -> str:
        """``helm uninstall --wait`` (its pre-delete hook removes the webhook configurations first)."""
        return self.run("uninstall", self.name, "--namespace", self.namespace, "--wait")

    def remove(self) -> None:
        """Leave nothing behind, whatever state the release is in: uninstall it if helm knows it,
        then delete both webhook configurations (a leftover one pointing at no pod refuses or
        slows every later pod create)."""
        try:
            if self.installed():
                self.run("uninstall", self.name, "--namespace", self.namespace, "--wait", check=False)
        finally:
            subprocess.run(
                [
                    *(
                        str(self.kubectl),
                        "--kubeconfig",
                        str(self.kubeconfig),
                        "delete",
                        "--ignore-not-found",
                    ),
                    *("mutatingwebhookconfiguration,validatingwebhookconfiguration", CONFIGURATION_NAME),
                ],
                capture_output=True,
                timeout=120,
            )

    def describe(self) -> str:
        """What the release namespace looks like: pods and recent Events, for a failure message."""
        parts = []
        for args in (("get", "pods", "-o", "wide"), ("get", "events", "--sort-by=.lastTimestamp")):
            done = subprocess.run(
                [str(self.kubectl), "--kubeconfig", str(self.kubeconfig), "-n", self.namespace, *args],
                capture_output=True,
                text=True,
                timeout=60,
            )
            parts.append(f"$ kubectl {' '.join(args)}\n{done.stdout}{done.stderr}")
        return "\n".join(parts)


def release(run: KindRun, home: Path) -> Release:
    """The handle of the README's release on ``run``'s cluster, installed or not."""
    return Release(
        RELEASE, NAMESPACE, run.kubeconfig, find_binary("helm"), run.prepared.kubectl, home, DEFAULT_TAG
    )


def install(run: KindRun, home: Path, values: Sequence[str] = ()) -> Release:
    """The README's three commands on ``run``'s cluster: build the image (quick when nothing
    changed: docker's layer cache), load it into the node, ``helm install --wait`` (``values``: more
    ``key=value`` settings). On failure nothing is left installed and the error shows the pods."""
    handle = release(run, home)
    started = time.monotonic()
    build_image(run.prepared.engine, handle.image)
    built = time.monotonic()
    run.load(handle.image)
    loaded = time.monotonic()
    sets = [arg for value in values for arg in ("--set", value)]
    try:
        handle.run(*INSTALL[1:], *sets)
    except BaseException as exc:
        state = handle.describe() if isinstance(exc, ReleaseError) else ""
        handle.remove()
        if state:
            raise ReleaseError(f"{exc}\n{state}") from exc
        raise
    done = time.monotonic()
    log(
        f"helm install {handle.name}: image built in {built - started:.0f}s, loaded in "
        f"{loaded - built:.0f}s, every pod Ready {done - loaded:.0f}s after install began"
    )
    return replace(
        handle, build_seconds=built - started, load_seconds=loaded - built, install_seconds=done - loaded
    )
