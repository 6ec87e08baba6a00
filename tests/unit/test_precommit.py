""".pre-commit-config.yaml runs what `make lint` and `make check-generated` run, with tools that exist."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.support.paths import REPO

CONFIG = REPO / ".pre-commit-config.yaml"


def _hooks() -> list[dict[str, Any]]:
    config = yaml.safe_load(CONFIG.read_text())
    assert [repo["repo"] for repo in config["repos"]] == ["local"], "local hooks only: nothing is fetched"
    return [hook for repo in config["repos"] for hook in repo["hooks"]]


def test_the_hooks_are_the_checks_of_make_lint_and_check_generated() -> None:
    ids = {hook["id"] for hook in _hooks()}
    assert {"ruff", "ruff-format", "mypy", "check-generated"} <= ids
    if (REPO / ".importlinter").exists():  # the layer contracts, once they are written down
        assert "import-linter" in ids, (
            "add a local hook 'import-linter' (entry: .venv/bin/lint-imports) to .pre-commit-config.yaml"
        )


def test_every_hook_runs_a_tool_or_target_that_exists() -> None:
    targets = set(re.findall(r"^([a-z][\w-]*):", (REPO / "Makefile").read_text(), re.M))
    for hook in _hooks():
        words = shlex.split(hook["entry"])
        assert hook["language"] == "system", hook["id"]
        if words[0] == "make":
            assert next(w for w in words[1:] if not w.startswith("-")) in targets, hook["id"]
        else:
            assert words[0].startswith(".venv/bin/"), f"{hook['id']}: the project's own tools only"
            assert (Path(sys.executable).parent / Path(words[0]).name).is_file(), hook["id"]
