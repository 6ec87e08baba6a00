"""The Markdown files cannot drift: every command in them is checked or run, every file they name
exists, and the generated reference matches the models.

Commands are the lines of ```bash blocks and the inline code spans that start with a program
below. Each program has a check that can fail (a target, subcommand or flag that does not exist,
a file that is not there, an image that no step builds); a command shown only as a shape is in
``NOT_CHECKED`` with the reason, and any other command fails the test.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
import subprocess
import sys
import tomllib
from functools import cache
from typing import Any

import pytest
import yaml

from devtools.reference import REFERENCE_FILE, reference_markdown
from production_policy import cli
from production_policy.api.crd import CRD_FILE
from tests.support.helm import binary
from tests.support.paths import REPO

DOCS = sorted(
    path
    for path in REPO.rglob("*.md")
    if not any(part.startswith(".") or part == "node_modules" for part in path.relative_to(REPO).parts)
)
PROGRAMS = ("make", "production-policy", "helm", "kubectl", "docker", "kind", "python")

# Commands written as a shape, not to be run as they stand.
NOT_CHECKED = {
    "KUBECONFIG=.cluster/kubeconfig kubectl …": "stands for any kubectl command against the local cluster",
}

# Built-in resource names the docs use with kubectl (ours come from the CRD).
BUILTIN_RESOURCES = {
    "mutatingwebhookconfiguration",
    "validatingwebhookconfiguration",
    "pods",
    "deployments",
    "events",
    "namespaces",
}


def _block_commands(text: str) -> list[str]:
    """The commands of every ```bash block, continuation lines joined, comments dropped."""
    commands: list[str] = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #")[0].strip()
            if line and not line.startswith("#"):
                commands.append(line)
    return commands


def _inline_commands(text: str) -> list[str]:
    """Inline code spans of two words or more that start (after any VAR=value) with one of PROGRAMS.

    One word alone is a name (the `production-policy` webhook configuration), not a command.
    """
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    spans = re.findall(r"`([^`\n]+)`", text)
    return [span for span in spans if len(words := _program_words(span)) > 1 and words[0] in PROGRAMS]


def _program_words(command: str) -> list[str]:
    words = command.split()
    while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):
        words = words[1:]
    return words


ALL = [
    (path.relative_to(REPO).as_posix(), where, command)
    for path in DOCS
    for where, commands in (
        ("block", _block_commands(path.read_text())),
        ("inline", _inline_commands(path.read_text())),
    )
    for command in commands
]


def _docker_images(doc: str) -> set[str]:
    """The images the ``docker build`` and ``make image`` commands of this document tag."""
    from devtools.image import DEFAULT_TAG

    images: set[str] = set()
    for _, _, command in (c for c in ALL if c[0] == doc):
        words = shlex.split(command)
        if words[:2] == ["make", "image"]:
            images.add(DEFAULT_TAG)
        if words[:2] == ["docker", "build"]:
            images |= {words[i + 1] for i, w in enumerate(words) if w in ("-t", "--tag")}
    return images


def _makefile() -> str:
    return (REPO / "Makefile").read_text()


def _crd() -> dict[str, Any]:
    crd: dict[str, Any] = yaml.safe_load((REPO / CRD_FILE).read_text())
    return crd


def _our_resource_names() -> set[str]:
    names = _crd()["spec"]["names"]
    return {names["plural"], names["singular"], names["kind"].lower(), *names.get("shortNames", [])}


def _flags(words: list[str]) -> list[str]:
    return [w.split("=")[0] for w in words if w.startswith("-") and w != "-"]


def _values_has(values: dict[str, Any], dotted: str) -> bool:
    node: Any = values
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def _cobra_help(program: str, words: list[str]) -> str:
    """``program WORDS --help``: cobra parses every flag first (an unknown one fails), then prints help."""
    done = _run_help(str(binary(program)), tuple(words))
    assert done.returncode == 0, f"{program} {' '.join(words)}: {done.stderr.strip()}"
    # An unknown subcommand with --help prints the parent's help: the usage must name this one.
    assert re.search(rf"^\s+{program} {re.escape(words[0])}\b", done.stdout, re.M), (
        f"{program} has no {words[0]!r} command"
    )
    return done.stdout


@cache
def _run_help(program: str, words: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    # Several pages show the same command: ask each binary once.
    return subprocess.run([program, *words, "--help"], capture_output=True, text=True, timeout=60)


def _check_make(words: list[str], where: str) -> None:
    targets = [w for w in words[1:] if "=" not in w]
    defined = set(re.findall(r"^([a-z][\w-]*):", _makefile(), re.M))
    assert set(targets) <= defined, f"no such make target: {set(targets) - defined}"
    variables = set(re.findall(r"^([A-Z_]+) \?=", _makefile(), re.M))
    for assignment in (w for w in words[1:] if "=" in w):
        assert assignment.split("=")[0] in variables, f"the Makefile takes no {assignment.split('=')[0]}"


def _check_production_policy(words: list[str], where: str, capsys: pytest.CaptureFixture[str]) -> None:
    parser = cli.build_parser()
    with pytest.raises(SystemExit) as shown:
        parser.parse_args([words[1], "--help"])
    assert shown.value.code == 0, f"production-policy has no {words[1]!r} command"
    help_text = capsys.readouterr().out
    for flag in _flags(words[2:]):
        assert re.search(rf"(^|[\s,]){re.escape(flag)}\b", help_text), (
            f"production-policy {words[1]}: no {flag}"
        )
    if where == "inline":
        return  # a mention of the command: its flags exist, the rest of its arguments are not given
    args = parser.parse_args(words[1:])
    if args.command == "check":
        paths = [REPO / p for p in [*args.filename, *args.policy]]
        if all(p.exists() for p in paths):  # the README's example runs for real
            args.filename = [str(p) for p in paths[: len(args.filename)]]
            args.policy = [str(p) for p in paths[len(args.filename) :]]
            assert args.handler(args) in (0, 1)
            assert "compliant" in capsys.readouterr().out.lower()


def _check_helm(words: list[str], where: str, doc: str) -> None:
    _cobra_help("helm", words[1:])
    charts = [w for w in words[2:] if w.startswith("charts/")]
    for chart in charts:
        assert (REPO / chart / "Chart.yaml").is_file(), f"no chart at {chart}"
    if words[1] in ("install", "upgrade"):
        assert where == "inline" or charts, "an install names the chart"
        for chart in charts:
            values = yaml.safe_load((REPO / chart / "values.yaml").read_text())
            sets = dict(words[i + 1].split("=", 1) for i, w in enumerate(words) if w == "--set")
            for key in sets:
                assert _values_has(values, key), f"{chart}/values.yaml has no {key}"
            if "image.repository" in sets and _docker_images(doc):
                image = f"{sets['image.repository']}:{sets.get('image.tag', '')}"
                assert image in _docker_images(doc), f"{image} is not the image this page builds"


def _check_kubectl(words: list[str], where: str) -> None:
    _cobra_help("kubectl", words[1:])
    for i, word in enumerate(words):
        if word in ("-f", "--filename") and words[i + 1] != "-":
            assert (REPO / words[i + 1]).exists(), f"kubectl -f {words[i + 1]}: no such path"
    positional = [w for w in words[2:] if not w.startswith("-")]
    if words[1] in ("get", "describe", "explain", "delete") and positional and "-f" not in words:
        resource, *field = positional[0].split(".")
        for name in resource.split(","):
            assert name in _our_resource_names() | BUILTIN_RESOURCES, f"kubectl knows no {name!r} here"
        if words[1] == "explain" and resource in _our_resource_names():
            node = _crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
            for part in field:
                assert part in node.get("properties", {}), f"the CRD has no field {positional[0]}"
                node = node["properties"][part]


def _check_docker(words: list[str], where: str) -> None:
    assert words[1] == "build", f"a docker command this test does not check: {' '.join(words)}"
    context = REPO / words[-1]
    options = dict(zip(words[2:-1:2], words[3:-1:2], strict=False))
    assert set(options) <= {"-t", "--tag", "-f", "--file"}, f"unchecked docker build options: {options}"
    dockerfile = context / options.get("-f", options.get("--file", "Dockerfile"))
    assert dockerfile.is_file(), f"no {dockerfile.relative_to(REPO)}"
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    from devtools.image import DEFAULT_TAG

    tag = options.get("-t", options.get("--tag", ""))
    assert tag.rpartition(":")[2] == version or tag == DEFAULT_TAG, (
        f"{tag}: the tag is neither the package version {version} nor make image's {DEFAULT_TAG}"
    )


def _check_kind(words: list[str], where: str, doc: str) -> None:
    assert words[1:3] == ["load", "docker-image"], f"a kind command this test does not check: {words}"
    for image in words[3:]:
        assert image in _docker_images(doc), f"{image} is not the image this page builds"


def _check_python(words: list[str], where: str) -> None:
    assert words[1] == "-m", f"python runs a module here: {words}"
    assert importlib.util.find_spec(words[2]) is not None, f"no module {words[2]}"
    done = subprocess.run(
        [sys.executable, "-m", words[2], "--help"], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert done.returncode == 0, done.stderr
    for flag in _flags(words[3:]):
        assert flag in done.stdout, f"python -m {words[2]}: no {flag}"


def test_the_readme_has_commands() -> None:
    assert len([c for doc, where, c in ALL if doc == "README.md" and where == "block"]) >= 6


def test_every_not_checked_command_is_still_in_the_docs() -> None:
    assert set(NOT_CHECKED) <= {command for _, _, command in ALL}


@pytest.mark.parametrize(("doc", "where", "command"), ALL, ids=[f"{d}:{c[:40]}" for d, _, c in ALL])
def test_every_documented_command_is_real(
    doc: str, where: str, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    if command in NOT_CHECKED:
        return
    for part in command.split(" | "):
        words = _program_words(part) if where == "inline" else shlex.split(part)
        program = words[0]
        if program == "make":
            _check_make(words, where)
        elif program == "production-policy":
            _check_production_policy(words, where, capsys)
        elif program == "helm":
            _check_helm(words, where, doc)
        elif program == "kubectl":
            _check_kubectl(words, where)
        elif program == "docker":
            _check_docker(words, where)
        elif program == "kind":
            _check_kind(words, where, doc)
        elif program == "python":
            _check_python(words, where)
        else:
            pytest.fail(f"{doc}: a command no test checks: {command}")


def test_the_readme_helm_section_is_what_the_kind_tests_run() -> None:
    from devtools.kind.release import README_COMMANDS

    readme = (REPO / "README.md").read_text()
    section = readme.split("## Installing on a cluster with Helm", 1)[1].split("\n## ", 1)[0]
    shown = [tuple(shlex.split(command)) for command in _block_commands(section)]
    assert shown == list(README_COMMANDS), "README.md and devtools/kind/release.py disagree"


def test_the_policy_reference_is_generated_from_the_models() -> None:
    assert (REPO / REFERENCE_FILE).read_text() == reference_markdown(), (
        "docs/policy-reference.md is stale: run python -m devtools.reference --write"
    )


def test_docs_link_to_files_that_exist() -> None:
    for path in DOCS:
        for target in re.findall(r"\]\(([^)#:]+)\)", path.read_text()):
            assert (path.parent / target).exists(), f"{path.name} links to missing {target}"


def test_the_readme_benchmark_table_is_the_committed_summary() -> None:
    """The README shows the numbers of bench/results/SUMMARY.md (generated by `make bench`), no others."""

    def table(text: str) -> list[str]:
        return [line for line in text.splitlines() if line.startswith("|")]

    section = (REPO / "README.md").read_text().split("## Benchmarks", 1)[1].split("\n## ", 1)[0]
    summary = table((REPO / "bench" / "results" / "SUMMARY.md").read_text())
    assert summary, "SUMMARY.md has a table"
    assert table(section) == summary
