"""The README's run command, `make demo`, walks through to the end without a manual step."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from kubernetes.client.rest import ApiException

from tests.support.cluster import Cluster
from tests.support.kube import kubectl_table
from tests.support.paths import REPO

pytestmark = pytest.mark.e2e


def test_the_demo_shows_all_four_behaviours(cluster: Cluster, crd: dict[str, object], tmp_path: Path) -> None:
    # Run from elsewhere: the demo finds examples/ in the repository, not in the working directory.
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig), "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-m", "devtools.demo", "--cluster=existing", "--non-interactive"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    # 1. a Deployment without probes: its pods get them, shown as a diff of the pod spec
    assert "productionpolicy.dev/injected=frontend:readiness,frontend:liveness" in out
    assert "+readinessProbe:" in out and "+livenessProbe:" in out
    # 2. a non-conforming Deployment is refused with our message
    assert 'denied the request: production policy "web-baseline" (Enforce)' in out
    assert "resources.limits.cpu 3 exceeds max 2" in out
    # 3. a ConfigMap change rolls a Deployment: two ReplicaSets and the Event
    assert "ConfigRollout: rolling restart: ConfigMap shop-config key LOG_LEVEL changed" in out
    replica_sets = [line for line in out.splitlines() if line.startswith("shop-")]
    assert len(replica_sets) == 2
    # 4. kubectl get prodpol with counts
    policies = kubectl_table(out, "NAME ENFORCEMENT MATCHED NON-COMPLIANT")
    assert [(p["NAME"], p["ENFORCEMENT"], p["MATCHED"], p["NON-COMPLIANT"]) for p in policies] == [
        ("web-baseline", "Enforce", "2", "0")
    ]
    assert "KUBECONFIG=" in out
    # It cleaned up after itself on an existing cluster: the namespace is going or gone.
    try:
        assert cluster.core.read_namespace("demo").status.phase == "Terminating"
    except ApiException as exc:
        assert exc.status == 404
