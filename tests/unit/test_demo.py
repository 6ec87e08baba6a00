"""The demo without a cluster: with no Docker engine, `make demo CLUSTER=kind` says what to do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.paths import REPO


def test_the_kind_demo_without_a_docker_engine_says_what_to_do(tmp_path: Path) -> None:
    # An explicit DOCKER_HOST that nothing answers: the tooling must not fall back to another engine.
    env = {**os.environ, "PYTHONPATH": str(REPO), "DOCKER_HOST": f"unix://{tmp_path / 'no-engine.sock'}"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "devtools.demo",
            "--cluster=kind",
            "--cluster-name=pp-demo-none",
            "--non-interactive",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert "demo failed: make demo CLUSTER=kind needs a Docker engine" in result.stderr
    assert (
        f"DOCKER_HOST=unix://{tmp_path / 'no-engine.sock'} is set but no Docker engine answers"
        in result.stderr
    )
    assert "or run `make demo`" in result.stderr
