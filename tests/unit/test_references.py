"""No prose points at something that is not there: the paths and module names in Markdown files,
Python docstrings and comments, and the comments of the Makefile, Dockerfile and YAML files all
exist in the repository. A rename that forgets a comment fails here.

What counts as a reference: a path with a slash and a file extension (``engine/pods.py``,
``templates/rbac.yaml``), a directory path that starts at the top of the repository or of the
package (``tests/support/``, ``engine/rollout/``), a bare file name (``values.yaml``), and a
dotted name under one of our packages (``production_policy.rollout.sources``). Paths resolve from
the repository, the package (``operator/production_policy``), the chart, or the referring file's
directory; a bare name must be some file's name.
"""

from __future__ import annotations

import ast
import io
import os
import re
import tokenize
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

from tests.support.paths import REPO

PACKAGE = REPO / "operator" / "production_policy"
BASES = (REPO, PACKAGE, REPO / "operator", REPO / "charts" / "production-policy")

# Written as the shape of a path, not a path of ours.
PLACEHOLDERS = {
    "path/file.py": "how py-spy names a frame (bench/webhook.py)",
    "path/to/file.py": "how py-spy names a frame (bench/webhook.py)",
    "file.py": "the same, shortened (bench/webhook.py)",
}

_EXT = r"(?:py|md|yaml|yml|json|tpl|toml|lock|txt|sh|cfg|tsv|png|svg)"
_BEFORE = r"(?<![\w./~:$-])"  # not inside a longer path, a URL, $VAR/... or ~/...
_WITH_SLASH = re.compile(rf"{_BEFORE}((?:[\w.-]+/)+[\w.-]+\.{_EXT})\b")
_DIRECTORY = re.compile(rf"{_BEFORE}((?:[\w-]+/)+)(?![\w.])")
_BARE = re.compile(rf"{_BEFORE}([\w-][\w.-]*\.{_EXT})\b(?!/)")
_DOTTED = re.compile(r"(?<![\w.])((?:production_policy|devtools|bench|tests)(?:\.[a-z_]\w*)+)")
_COMMENTED = {".yaml", ".yml", ".tpl", ".toml"}
_COMMENTED_NAMES = {"Makefile", "Dockerfile", ".dockerignore", "run"}


def _files() -> Iterator[Path]:
    """Every file of the repository's tree, without hidden directories (.git, .venv...) but .ci."""
    for root, directories, files in os.walk(REPO):
        directories[:] = sorted(
            d
            for d in directories
            if (not d.startswith(".") or d == ".ci") and d != "__pycache__" and not d.endswith(".egg-info")
        )
        yield from (Path(root) / name for name in sorted(files))


FILES = list(_files())
NAMES = {path.name for path in FILES}


def _python_prose(source: str) -> Iterator[tuple[int, str]]:
    """Comments, and docstrings of modules, classes, functions and attributes."""
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            yield token.start[0], token.string
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            for index, statement in enumerate(node.body):
                if not (
                    isinstance(statement, ast.Expr)
                    and isinstance(statement.value, ast.Constant)
                    and isinstance(statement.value.value, str)
                ):
                    continue
                if index == 0 or isinstance(node.body[index - 1], ast.Assign | ast.AnnAssign):
                    yield statement.lineno, statement.value.value


def _prose(path: Path) -> Iterator[tuple[int, str]]:
    if path.suffix == ".py":
        yield from _python_prose(path.read_text())
    elif path.suffix == ".md":
        yield from enumerate(path.read_text().splitlines(), 1)
    elif path.suffix in _COMMENTED or path.name in _COMMENTED_NAMES:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if "#" in line:
                yield number, line[line.index("#") :]


def _top_names() -> set[str]:
    return {p.name for p in REPO.iterdir()} | {p.name for p in PACKAGE.iterdir() if p.is_dir()}


def _path_exists(reference: str, referrer: Path) -> bool:
    return any((base / reference).exists() for base in (*BASES, referrer.parent))


def _module_file(parts: list[str]) -> Path | None:
    root = PACKAGE.parent if parts[0] == "production_policy" else REPO
    module = root.joinpath(*parts)
    for candidate in (module.with_suffix(".py"), module / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


@cache
def _top_level_names(module: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.parse(module.read_text()).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
    return names


def _dotted_exists(dotted: str) -> bool:
    """The longest prefix that is a module of ours exists, and what follows it, if anything, is in it.

    Read from the source, not imported: a comment may name a module that is slow to import.
    """
    parts = dotted.split(".")
    for length in range(len(parts), 0, -1):
        module = _module_file(parts[:length])
        if module is not None:
            if length == len(parts):
                return True
            subpackage = module.name == "__init__.py" and _module_file(parts[: length + 1]) is not None
            return subpackage or parts[length] in _top_level_names(module)
    return False


def _dangling(path: Path, shown_as: str) -> Iterator[str]:
    for number, text in _prose(path):
        where = f"{shown_as}:{number}"
        for match in _WITH_SLASH.finditer(text):
            reference = match.group(1)
            if reference not in PLACEHOLDERS and not _path_exists(reference, path):
                yield f"{where}: {reference}"
        for match in _DIRECTORY.finditer(text):
            reference = match.group(1)
            if reference.split("/")[0] in _top_names() and not _path_exists(reference, path):
                yield f"{where}: {reference}"
        for match in _BARE.finditer(text):
            if match.group(1) not in NAMES and match.group(1) not in PLACEHOLDERS:
                yield f"{where}: {match.group(1)}"
        for match in _DOTTED.finditer(text):
            if not _dotted_exists(match.group(1)):
                yield f"{where}: {match.group(1)}"


def test_no_prose_names_a_file_or_module_that_is_not_there() -> None:
    dangling = [reference for path in FILES for reference in _dangling(path, str(path.relative_to(REPO)))]
    assert not dangling, "\n".join(dangling)


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("see rollout/workloads.py", True),  # renamed to rollout/store.py
        ("See design.md", True),  # lives outside the repository
        ("`tests/unit/engine_support.py`", True),
        ("the kopf wiring in rollout/wiring.py", False),
        ("helpers in tests/support/", False),
        ("see tests/nothing/", True),
        ("production_policy.rollout.sources.SourceCache", False),
        ("production_policy.rollout.workloads", True),
        ("production_policy.engine.no_such_name", True),
        ("https://example.org/a/b.py and ~/.cache/x/y.py and $HOME/z/w.py", False),
        ("path/to/file.py", False),
    ],
)
def test_what_counts_as_dangling(tmp_path: Path, text: str, found: bool) -> None:
    note = tmp_path / "note.md"
    note.write_text(text + "\n")
    assert bool(list(_dangling(note, "note.md"))) is found
