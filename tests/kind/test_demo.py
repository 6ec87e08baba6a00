"""`make demo CLUSTER=kind`: the same tour as `make demo`, on a kind cluster with the operator installed
by the chart from its image, walks through to the end and deletes its cluster."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from devtools.devcluster.processes import stop_process
from devtools.kind.engine import Engine
from tests.support.cluster import require_cluster
from tests.support.kube import kubectl_table
from tests.support.paths import REPO

pytestmark = pytest.mark.kind
# Cluster, image, chart and tour: about 12 minutes with the machine at load 50 (see the commit).
DEMO_SECONDS = 1800


@pytest.mark.timeout(DEMO_SECONDS + 600)
def test_the_kind_demo_runs_the_tour_on_real_kubelets_and_deletes_its_cluster(
    kind_engine: Engine, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    # On KWOK nothing in a pod runs: no probe is ever sent, no process reads its environment.
    from devtools.devcluster.binaries import BinaryError, ensure_binaries
    from devtools.kind.cluster import PREPARE_ERRORS, prepare

    try:
        ensure_binaries(build=False)  # helm among them
        prepare(kind_engine, build=False)
    except (BinaryError, *PREPARE_ERRORS) as exc:
        if require_cluster():
            raise
        pytest.skip(f"no kind cluster for the demo: {exc}")
    # Its own cluster, named after the session's (--cluster-name) so parallel sessions do not meet.
    name = f"{request.config.getoption('cluster_name')}-demo"
    env = {**os.environ, "PYTHONPATH": str(REPO), "DOCKER_HOST": kind_engine.host}
    argv = [
        sys.executable,
        "-m",
        "devtools.demo",
        "--cluster=kind",
        f"--cluster-name={name}",
        "--non-interactive",
    ]
    # From elsewhere: the demo finds the chart and examples/ in the repository.
    demo = subprocess.Popen(
        argv,
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        out, err = demo.communicate(timeout=DEMO_SECONDS)
    finally:
        # SIGTERM, never SIGKILL: the demo then deletes its cluster as on Ctrl-C.
        stop_process(demo, grace=300)  # type: ignore[arg-type]  # text mode; stop_process only signals
    assert demo.returncode == 0, out + err[-6000:]
    lines = out.splitlines()
    # The chart, installed with the README's command; its pods Ready by their own probes.
    assert "$ helm install production-policy charts/production-policy --namespace production-policy" in out
    pods = kubectl_table(out, "NAME READY STATUS")
    assert sorted(p["NAME"].split("-")[2] for p in pods) == ["controller", "controller", "webhook", "webhook"]
    assert all((p["READY"], p["STATUS"]) == ("1/1", "Running") for p in pods), pods
    # 1. injected probes, and the kubelet ran the readiness probe: it is in the server's own log
    assert "productionpolicy.dev/injected=frontend:readiness,frontend:liveness" in out
    assert "+readinessProbe:" in out and "+livenessProbe:" in out
    probed = re.search(r"Ready because the kubelet ran that readinessProbe: GET (\S+) on :8080", out)
    assert probed, out
    request_line = next(i for i, line in enumerate(lines) if line.endswith(f": url:{probed.group(1)}"))
    assert lines[request_line + 1].endswith(": response:200")
    # 2. refused through the installed admission
    assert 'production policy "web-baseline" (Enforce)' in out
    assert "resources.limits.cpu 3 exceeds max 2" in out
    # 3. the rollout: the running processes read info, then (new pods only) debug
    patched = next(
        i for i, line in enumerate(lines) if line.startswith("$ kubectl patch configmap shop-config")
    )
    before = [line for line in lines[:patched] if line.strip() == "started: LOG_LEVEL=info"]
    after = [line for line in lines[patched:] if line.strip().startswith("started: LOG_LEVEL=")]
    assert len(before) == 2
    assert [a.strip() for a in after] == ["started: LOG_LEVEL=debug"] * 2
    assert "ConfigRollout: rolling restart: ConfigMap shop-config key LOG_LEVEL changed" in out
    # 4. the policy's status
    policies = kubectl_table(out, "NAME ENFORCEMENT MATCHED NON-COMPLIANT")
    assert [(p["NAME"], p["ENFORCEMENT"], p["MATCHED"], p["NON-COMPLIANT"]) for p in policies] == [
        ("web-baseline", "Enforce", "2", "0")
    ]
    # Gone afterwards: its node containers, its network and its kubeconfig.
    assert f"deleting kind cluster {name}" in out
    containers = kind_engine.docker("ps", "-a", "-q", "--filter", f"label=io.x-k8s.kind.cluster={name}")
    assert containers.stdout.split() == []
    assert kind_engine.docker("network", "inspect", f"{name}-net", check=False).returncode != 0
    assert not (REPO / ".cluster" / f"{name}.kubeconfig").exists()
