"""The README and docs/ cannot drift: every command in them is checked or run, and the
generated reference matches the models."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from production_policy import cli
from production_policy.api.reference import REFERENCE_FILE, reference_markdown

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def _commands(path: Path) -> list[str]:
    """The commands of every ```bash block, continuation lines joined, comments dropped."""
    commands: list[str] = []
    for block in re.findall(r"```bash\n(.*?)```", path.read_text(), re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #")[0].strip()
            if line and not line.startswith("#"):
                commands.append(line)
    return commands


ALL = [(path.name, command) for path in DOCS for command in _commands(path)]


def _makefile_targets() -> set[str]:
    return set(re.findall(r"^([a-z][\w-]*):", (REPO / "Makefile").read_text(), re.M))


def _values_has(values: dict[str, Any], dotted: str) -> bool:
    node: Any = values
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def test_the_readme_has_commands() -> None:
    assert len([c for name, c in ALL if name == "README.md"]) >= 6


@pytest.mark.parametrize(("doc", "command"), ALL, ids=[f"{d}:{c[:40]}" for d, c in ALL])
def test_every_documented_command_is_real(doc: str, command: str, capsys: pytest.CaptureFixture[str]) -> None:
    words = shlex.split(command)
    program = words[0]
    if program == "make":
        # `make test` is CI itself; `make demo` runs in tests/e2e/test_demo.py; the others run below.
        targets = [w for w in words[1:] if "=" not in w]
        assert set(targets) <= _makefile_targets(), command
    elif program == "production-policy":
        args = cli.build_parser().parse_args(words[1:])  # every flag is one the CLI has
        if args.command == "check":
            paths = [REPO / p for p in [*args.filename, *args.policy]]
            if all(p.exists() for p in paths):  # the README's example runs for real
                args.filename = [str(p) for p in paths[: len(args.filename)]]
                args.policy = [str(p) for p in paths[len(args.filename) :]]
                assert args.handler(args) in (0, 1)
                assert "compliant" in capsys.readouterr().out.lower()
    elif program == "helm":
        assert words[1] in ("install", "upgrade", "uninstall", "test")
        chart = next(w for w in words[2:] if w.startswith("charts/"))
        values = yaml.safe_load((REPO / chart / "values.yaml").read_text())
        for index, word in enumerate(words):
            if word == "--set":
                assert _values_has(values, words[index + 1].split("=")[0]), command
    elif program in ("docker", "kind"):
        assert (REPO / "Dockerfile").is_file()  # no Docker engine here: the image build is replayed in tests
    elif program == "kubectl":
        assert (REPO / words[-1]).exists() if words[-1].startswith("charts/") else True
    else:
        pytest.fail(f"{doc}: a command no test checks: {command}")


def test_the_policy_reference_is_generated_from_the_models() -> None:
    assert (REPO / REFERENCE_FILE).read_text() == reference_markdown(), (
        "docs/policy-reference.md is stale: run python -m production_policy.api.reference --write"
    )


def test_docs_link_to_files_that_exist() -> None:
    for path in DOCS:
        for target in re.findall(r"\]\(([^)#:]+)\)", path.read_text()):
            assert (path.parent / target).exists(), f"{path.name} links to missing {target}"
