"""The control-plane harness fails fast and clearly, and never leaves processes behind."""

from __future__ import annotations

import shutil
import socket
import time
from pathlib import Path

import pytest

from devtools.devcluster import binaries as bins
from devtools.devcluster.controlplane import ControlPlane, ControlPlaneError, Ports, process_alive

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def local_binaries() -> bins.Binaries:
    try:
        return bins.ensure_binaries(build=False)
    except bins.BinaryError as exc:
        pytest.skip(f"control-plane binaries are not built: {exc}")


def test_a_port_in_use_is_named(local_binaries: bins.Binaries, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        plane = ControlPlane(workdir=tmp_path, binaries=local_binaries, ports=Ports(apiserver=port))
        started = time.monotonic()
        with pytest.raises(
            ControlPlaneError, match=f"port {port} \\(apiserver\\) on 127.0.0.1 is already in use"
        ):
            plane.start()
        assert time.monotonic() - started < 10
    assert plane.pids() == []


def test_a_component_that_crashes_at_start_shows_its_log(
    local_binaries: bins.Binaries, tmp_path: Path
) -> None:
    plane = ControlPlane(
        workdir=tmp_path, binaries=local_binaries, apiserver_extra_args=("--no-such-flag=1",)
    )
    with pytest.raises(ControlPlaneError) as failure:
        plane.start()
    message = str(failure.value)
    assert "kube-apiserver exited" in message
    assert "no-such-flag" in message, "the tail of the apiserver log is in the message"
    pids = plane.pids()
    assert pids, "etcd and the apiserver were started"
    assert not any(process_alive(pid) for pid in pids), "every started process was stopped"


@pytest.mark.skipif(shutil.which("go") is None, reason="needs the Go toolchain to ask the module proxy")
def test_a_refused_module_names_module_version_and_fallbacks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bins, "CACHE_ROOT", tmp_path)
    with pytest.raises(bins.BinaryError) as failure:
        bins._with_fallbacks("kubernetes", ("v1.99.98", "v1.99.99"), bins.build_kubernetes)
    message = str(failure.value)
    assert "k8s.io/kubernetes@v1.99.98" in message and "k8s.io/kubernetes@v1.99.99" in message
    assert "tried v1.99.98, v1.99.99" in message
