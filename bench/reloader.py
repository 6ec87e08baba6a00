"""Scenario 5: stakater/Reloader side by side, if it can be built from the Go module proxy.

It is looked up and built with the Go toolchain as the control-plane binaries are
(``devtools.devcluster.binaries``), cached in ~/.cache/production-policy/reloader-<version>/.
Where the proxy does not serve it, the exact commands and their answers are recorded instead, so
the results say precisely why there is no side-by-side number.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import common
from bench.common import log

MODULE = "github.com/stakater/Reloader"
TIMEOUT = 900.0
KNOWN_RELEASE = "v1.4.21"
"""Reloader's release as of Aug 2026 (chart 2.2.16), tried by name when the version list is refused."""


_HOST = re.compile(r"https?://[^/\s,]+")


def _redacted(text: str) -> str:
    # Results name no registry host: the proxy is "$GOPROXY", whatever this machine set it to.
    return _HOST.sub("$GOPROXY", text)


def _go(args: list[str], cwd: Path, env: dict[str, str]) -> dict[str, Any]:
    began = time.monotonic()
    try:
        done = subprocess.run(
            ["go", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        return {"command": f"go {' '.join(args)}", "exit": None, "error": f"timed out after {TIMEOUT:.0f}s"}
    except FileNotFoundError:
        return {"command": f"go {' '.join(args)}", "exit": None, "error": "no go toolchain on PATH"}
    return {
        "command": f"go {' '.join(args)}",
        "exit": done.returncode,
        "seconds": round(time.monotonic() - began, 1),
        "stdout": _redacted(done.stdout.strip()[-2000:]),
        "stderr": _redacted(done.stderr.strip()[-2000:]),
    }


def _go_env() -> dict[str, str]:
    keys = ("GOPROXY", "GOFLAGS", "GONOSUMDB", "GOPRIVATE", "GOVERSION")
    try:
        out = subprocess.run(
            ["go", "env", "-json", *keys], capture_output=True, text=True, timeout=60, check=False
        )
        values: dict[str, str] = json.loads(out.stdout) if out.returncode == 0 else {}
    except (OSError, subprocess.TimeoutExpired, ValueError):
        values = {}
    return {key: _redacted(value) for key, value in values.items()}


def build() -> dict[str, Any]:
    """Find or build Reloader; returns what happened (``binary`` set only when built)."""
    attempts: list[dict[str, Any]] = []
    env = {**os.environ, "GOFLAGS": "-mod=mod", "GO111MODULE": "on"}
    with tempfile.TemporaryDirectory(prefix="pp-bench-reloader-") as tmp:
        work = Path(tmp)
        (work / "go.mod").write_text("module local.test/ppreloader\n\ngo 1.25\n")
        listed = _go(["list", "-m", "-versions", "-json", MODULE], work, env)
        attempts.append(listed)
        versions: list[str] = []
        if listed.get("exit") == 0:
            versions = json.loads(listed["stdout"] or "{}").get("Versions") or []
        candidates = [versions[-1]] if versions else ["latest", KNOWN_RELEASE]
        for version in candidates:
            resolved = _go(["list", "-m", "-json", f"{MODULE}@{version}"], work, env)
            attempts.append(resolved)
            if resolved.get("exit") != 0:
                continue
            version = json.loads(resolved["stdout"]).get("Version", version)
            cache = Path.home() / ".cache" / "production-policy" / f"reloader-{version}"
            binary = cache / "Reloader"
            if binary.exists():
                return {"built": True, "version": version, "binary": str(binary), "attempts": attempts}
            cache.mkdir(parents=True, exist_ok=True)
            installed = _go(["install", f"{MODULE}@{version}"], work, {**env, "GOBIN": str(cache)})
            attempts.append(installed)
            if installed.get("exit") == 0:
                found = next((p for p in cache.iterdir() if p.is_file()), None)
                if found is not None:
                    return {"built": True, "version": version, "binary": str(found), "attempts": attempts}
            shutil.rmtree(cache, ignore_errors=True)
    return {"built": False, "attempts": attempts}


def run(out: Path, scale: object = None) -> dict[str, Any]:
    started = time.monotonic()
    log(f"looking up {MODULE} on the Go module proxy")
    result = build()
    if result["built"]:
        why = (
            "built, but not run: this bench has no runner for it yet (it could never be built on the "
            "machine the bench was written on, so a runner could not be tested)"
        )
    else:
        refusals = [a.get("stderr") or a.get("error") or "" for a in result["attempts"]]
        why = (
            "not built: the Go module proxy refuses the module (HTTP 403 'This module version is not "
            f"available') for its version list, for @latest and for the release {KNOWN_RELEASE} (see "
            "attempts); a 403 stops the go command's ',direct' fallback, and this machine reaches only "
            "package registries, so the source repository cannot be fetched any other way"
            if any("403" in r or "not available" in r for r in refusals)
            else "not built: see attempts"
        )
    data = {
        "scenario": "reloader",
        "title": "Scenario 5: stakater/Reloader side by side (scenarios 3 and 4)",
        "machine": common.machine(),
        "module": MODULE,
        "go_env": _go_env(),
        **result,
        "outcome": why,
        "ratios": None,
        "elapsed_s": round(time.monotonic() - started, 1),
    }
    common.write_json(out, "reloader", data)
    return data
