"""A kind test session leaves nothing behind: no node container, no docker network, no dockerd of
ours, whether it passes, fails or is interrupted with Ctrl-C.

Each case runs tests/kind/session_probe.py in a pytest of its own. This module sorts first in
tests/kind, so in a full run no engine is up yet and the inner session starts (and must stop) our
dockerd itself; if one is already up, the inner session uses it and only the cluster is checked.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from devtools.kind.cluster import PREPARE_ERRORS
from devtools.kind.engine import OUR_SOCKET, find_or_start_engine

pytestmark = pytest.mark.kind

REPO = Path(__file__).resolve().parents[2]
EXIT_CODES = {"passes": 0, "fails": 1, "interrupted": 2}  # pytest's OK, TESTS_FAILED, INTERRUPTED


def _our_dockerd_running() -> bool:
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            words = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if words and words[0].endswith(b"dockerd") and any(str(OUR_SOCKET).encode() in w for w in words):
            return True
    return False


@pytest.mark.parametrize("case", list(EXIT_CODES))
def test_a_kind_session_leaves_no_containers_networks_or_dockerd(case: str, tmp_path: Path) -> None:
    # Nothing to do with KWOK: this is the hygiene of our own kind tooling on the shared engine.
    name = f"pp-cleanup-{case}-{uuid.uuid4().hex[:6]}"
    mark = tmp_path / "mark"
    try:
        probe = find_or_start_engine()
    except PREPARE_ERRORS as exc:
        if os.environ.get("PP_REQUIRE_CLUSTER") == "1":
            raise
        pytest.skip(f"no Docker engine for kind: {exc}")
    starts_dockerd = probe.ours  # then the inner session will start one of its own, as this did
    probe.stop()
    env = {k: v for k, v in os.environ.items() if not k.startswith("COV_CORE_")}
    env.update(PP_REQUIRE_CLUSTER="1", PP_SESSION_PROBE_MARK=str(mark))
    argv = [
        sys.executable,
        "-m",
        "pytest",
        f"tests/kind/session_probe.py::test_{case}",
        f"--cluster-name={name}",
        f"--basetemp={tmp_path / 'inner'}",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:cov",
        "-q",
    ]
    output = tmp_path / "inner.log"
    with output.open("wb") as log:
        inner = subprocess.Popen(
            argv, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            if case == "interrupted":
                deadline = time.monotonic() + 600
                while not mark.exists() and inner.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.5)
                if inner.poll() is None:  # an inner session that ended by itself is reported below
                    os.killpg(inner.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
            inner.wait(900)
        finally:
            if inner.poll() is None:
                os.killpg(inner.pid, signal.SIGKILL)
    report = output.read_text(errors="replace")[-4000:]
    assert mark.exists() and mark.read_text().startswith(name), f"the inner session had no cluster:\n{report}"
    assert inner.returncode == EXIT_CODES[case], report
    if starts_dockerd:
        assert not _our_dockerd_running(), f"the inner session left our dockerd running:\n{report}"

    engine = find_or_start_engine()
    try:
        containers = engine.docker("ps", "-a", "-q", "--filter", f"label=io.x-k8s.kind.cluster={name}").stdout
        networks = engine.docker("network", "ls", "-q", "--filter", f"name={name}").stdout
        assert not containers.split(), f"node containers left behind:\n{report}"
        assert not networks.split(), f"docker network left behind:\n{report}"
    finally:
        engine.stop()
