"""The layer contracts of ``.importlinter`` hold, and each catches the violation it is there for.

Each case plants one bad import into a copy of the package and runs ``lint-imports`` on the copy
(it puts the working directory first on ``sys.path``, so the copy is what it analyses).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.paths import REPO

PACKAGE = REPO / "operator" / "production_policy"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

PLANTED = {
    "engine-pure": ("engine/names.py", "import kopf"),
    "no-official-client": ("kube/client.py", "from kubernetes import client"),
    "one-door": ("processes/clusterview.py", "import urllib3"),
    "door-below-shells": ("kube/errors.py", "import production_policy.rollout.sources"),
    "shells-independent": ("audit/wiring.py", "from production_policy.rollout import wiring"),
    "api-below-engine": ("api/status.py", "import production_policy.engine.names"),
}


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", str(tree / ".importlinter")],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _copy(tmp_path: Path) -> Path:
    shutil.copytree(PACKAGE, tmp_path / "production_policy", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / ".importlinter", tmp_path / ".importlinter")
    return tmp_path


def _contract_names() -> dict[str, str]:
    names, current = {}, None
    for line in (REPO / ".importlinter").read_text().splitlines():
        if line.startswith("[importlinter:contract:"):
            current = line.removeprefix("[importlinter:contract:").rstrip("]")
        elif current and line.startswith("name = "):
            names[current] = line.removeprefix("name = ")
    return names


def test_every_contract_has_a_planted_violation() -> None:
    assert set(_contract_names()) == set(PLANTED)


def test_the_package_keeps_every_contract(tmp_path: Path) -> None:
    result = _lint(_copy(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Contracts: {len(PLANTED)} kept, 0 broken." in result.stdout


@pytest.mark.parametrize("contract", list(PLANTED))
def test_a_planted_violation_breaks_its_contract(tmp_path: Path, contract: str) -> None:
    tree = _copy(tmp_path)
    module, line = PLANTED[contract]
    path = tree / "production_policy" / module
    path.write_text(path.read_text() + f"\n{line}  # planted\n")
    result = _lint(tree)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{_contract_names()[contract]} BROKEN" in result.stdout
