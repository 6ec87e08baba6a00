"""The engine is pure: no module under engine/ — nor anything it imports from the package — does I/O
or imports kopf, the Kubernetes client or aiohttp. Checked on the source, so no import is needed."""

from __future__ import annotations

import ast
from pathlib import Path

import production_policy

PACKAGE_ROOT = Path(production_policy.__file__).parent
ENGINE = PACKAGE_ROOT / "engine"

FORBIDDEN_MODULES = {
    "kopf",
    "kubernetes",
    "aiohttp",
    "requests",
    "urllib",
    "urllib3",
    "http",
    "socket",
    "ssl",
    "asyncio",
    "subprocess",
    "multiprocessing",
    "threading",
    "os",
    "shutil",
    "pathlib",
    "io",
    "tempfile",
    "logging",
    "sys",
    "time",
    "random",
    "secrets",
}
FORBIDDEN_CALLS = {"open", "print", "input", "exec", "eval", "compile", "breakpoint", "__import__"}


def _imported(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def _module_file(dotted: str) -> Path | None:
    """The file of a package module (``production_policy.api`` -> api/__init__.py), None for a name in one."""
    base = PACKAGE_ROOT.joinpath(*dotted.split(".")[1:])
    for candidate in (base / "__init__.py", base.parent / f"{base.name}.py"):
        if candidate.is_file():
            return candidate
    return None


def _closure() -> set[Path]:
    """The engine's modules, and every package module they import (with the packages around them)."""
    pending = list(ENGINE.rglob("*.py"))
    seen: set[Path] = set()
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in _imported(ast.parse(path.read_text(encoding="utf-8"))):
            parts = name.split(".")
            if parts[0] != "production_policy":
                continue
            for depth in range(1, len(parts) + 1):  # importing a.b.c runs a and a.b first
                found = _module_file(".".join(parts[:depth]))
                if found is not None:
                    pending.append(found)
    return seen


def test_the_closure_covers_the_engine_and_what_it_uses() -> None:
    names = {path.relative_to(PACKAGE_ROOT).as_posix() for path in _closure()}
    assert {
        "engine/__init__.py",
        "engine/mutation.py",
        "api/__init__.py",
        "quantity.py",
        "__init__.py",
    } <= names
    assert "api/crd.py" not in names and "cli.py" not in names


def test_no_forbidden_imports() -> None:
    offenders = {
        path.relative_to(PACKAGE_ROOT).as_posix(): sorted(
            name
            for name in _imported(ast.parse(path.read_text(encoding="utf-8")))
            if name.split(".")[0] in FORBIDDEN_MODULES
        )
        for path in _closure()
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_no_io_calls() -> None:
    offenders = []
    for path in _closure():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in FORBIDDEN_CALLS
            ):
                offenders.append(f"{path.relative_to(PACKAGE_ROOT)}:{node.lineno} {node.func.id}()")
    assert offenders == []


def test_the_check_catches_a_forbidden_import() -> None:
    tree = ast.parse("import kubernetes.client\nfrom kopf import on\nfrom os import path")
    assert {name.split(".")[0] for name in _imported(tree)} & FORBIDDEN_MODULES == {
        "kubernetes",
        "kopf",
        "os",
    }
