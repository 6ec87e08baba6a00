"""The plumbing of devtools/kind that runs without a Docker engine: the runc wrapper, apt sources,
the kind config, ELF and rootfs helpers."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest

from devtools.kind.cluster import KindRun, kind_config
from devtools.kind.engine import WRAPPER_SOURCE, Engine
from devtools.kind.host import mirror_in
from devtools.kind.images import ImageError, _is_dynamic, _resolve_in

SPEC_CAPS = ["CAP_CHOWN", "CAP_SYS_RESOURCE", "CAP_SYS_ADMIN"]


@pytest.fixture
def wrapper(tmp_path: Path) -> tuple[Path, Path]:
    """The runc wrapper with a fake runc that records its arguments; (wrapper, record file)."""
    jq = shutil.which("jq")
    if jq is None:
        pytest.skip("jq is not installed (the wrapper needs it; Debian: jq)")
    record = tmp_path / "runc-args"
    fake = tmp_path / "runc"
    fake.write_text(f'#!/bin/sh\necho "$@" > {record}\n')
    fake.chmod(0o755)
    script = tmp_path / "runc-nosysres"
    script.write_text(WRAPPER_SOURCE.read_text().replace("@REAL_RUNC@", str(fake)).replace("@JQ@", jq))
    script.chmod(0o755)
    return script, record


def _caps() -> dict[str, list[str]]:
    return {k: list(SPEC_CAPS) for k in ("bounding", "effective", "permitted")}


def test_the_wrapper_drops_cap_sys_resource_from_a_bundle_and_runs_the_real_runc(
    wrapper: tuple[Path, Path], tmp_path: Path
) -> None:
    script, record = wrapper
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "config.json").write_text(json.dumps({"process": {"capabilities": _caps()}}))
    subprocess.run([script, "--root", "/run/x", "create", "--bundle", bundle, "c1"], check=True)
    caps = json.loads((bundle / "config.json").read_text())["process"]["capabilities"]
    assert caps == {k: ["CAP_CHOWN", "CAP_SYS_ADMIN"] for k in ("bounding", "effective", "permitted")}
    assert record.read_text().split() == ["--root", "/run/x", "create", "--bundle", str(bundle), "c1"]


def test_the_wrapper_drops_it_from_an_exec_process_and_leaves_other_commands_alone(
    wrapper: tuple[Path, Path], tmp_path: Path
) -> None:
    script, record = wrapper
    process = tmp_path / "process.json"
    process.write_text(json.dumps({"capabilities": _caps(), "args": ["sh"]}))
    subprocess.run([script, "exec", f"--process={process}", "c1"], check=True)
    assert "CAP_SYS_RESOURCE" not in process.read_text()
    assert json.loads(process.read_text())["args"] == ["sh"]
    untouched = tmp_path / "config.json"
    untouched.write_text(json.dumps({"process": {"capabilities": _caps()}}))
    # Without --bundle the wrapper's create would edit the bundle spec in the working directory; delete
    # must leave it as it is.
    subprocess.run([script, "delete", "c1"], cwd=tmp_path, check=True)
    assert "CAP_SYS_RESOURCE" in untouched.read_text()
    assert record.read_text().split() == ["delete", "c1"]


def test_the_mirror_comes_from_one_line_and_deb822_sources() -> None:
    one_line = (
        "# comment\ndeb [arch=amd64 signed-by=/k.gpg] http://mirror.test/debian bookworm main contrib\n"
        "deb http://security.test/debian-security bookworm-security main\n"
    )
    assert mirror_in(one_line, "bookworm") == "http://mirror.test/debian"
    deb822 = (
        "Types: deb\nURIs: http://other.test/node\nSuites: nodistro\nComponents: main\n\n"
        "Types: deb\nURIs: http://deb.test/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
    )
    assert mirror_in(deb822, "bookworm") == "http://deb.test/debian"
    assert mirror_in(deb822, "trixie") is None
    disabled = "Types: deb\nURIs: http://off.test/debian\nSuites: bookworm\nComponents: main\nEnabled: no\n"
    assert mirror_in(disabled, "bookworm") is None


class _InfoEngine(Engine):
    def __init__(self, cgroup_version: str, drops: bool) -> None:
        super().__init__("unix:///nowhere", drops_sys_resource=drops)
        self.info = json.dumps({"CgroupVersion": cgroup_version})

    def docker(self, *args: str, **_: object) -> object:  # type: ignore[override]
        from devtools.kind.engine import Docker

        assert args[0] == "info"
        return Docker(0, self.info, "")


def test_the_kind_config_carries_only_what_the_host_needs() -> None:
    plain = kind_config(_InfoEngine("2", drops=False))
    assert plain == "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n"
    this_vm = kind_config(_InfoEngine("1", drops=True))
    assert "failCgroupV1: false" in this_vm
    assert "restrict_oom_score_adj = true" in this_vm


def test_elf_interpreter_detection(tmp_path: Path) -> None:
    busybox = Path("/bin/busybox")
    if busybox.is_file():
        assert _is_dynamic(busybox.read_bytes()[:4096], busybox) is (
            b"/lib64/ld-linux" in busybox.read_bytes()
        )
    assert _is_dynamic(Path(sys.executable).resolve().read_bytes()[:4096], Path(sys.executable))
    not_elf = tmp_path / "script"
    not_elf.write_text("#!/bin/sh\n")
    with pytest.raises(ImageError, match="not a 64-bit ELF"):
        _is_dynamic(not_elf.read_bytes(), not_elf)


def test_symlinks_resolve_inside_the_rootfs_not_on_the_host(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "usr/lib/x86_64-linux-gnu").mkdir(parents=True)
    (root / "usr/lib64").mkdir()
    (root / "usr/lib/x86_64-linux-gnu/ld.so").write_text("loader")
    (root / "lib").symlink_to("usr/lib")
    (root / "lib64").symlink_to("usr/lib64")
    # Absolute, as Debian ships it: on the host this would name the host's own loader.
    (root / "usr/lib64/ld-linux-x86-64.so.2").symlink_to("/lib/x86_64-linux-gnu/ld.so")
    resolved = _resolve_in(root, "/lib64/ld-linux-x86-64.so.2")
    assert resolved == root / "usr/lib/x86_64-linux-gnu/ld.so"
    assert resolved.read_text() == "loader"
    assert not stat.S_ISLNK(resolved.lstat().st_mode)


def _recording(tmp_path: Path, name: str, script: str) -> Path:
    """A stand-in for ``name`` that appends its arguments to ``name.calls`` and runs ``script``."""
    path = tmp_path / name
    path.write_text(f'#!/bin/sh\necho "$*" >> {tmp_path / (name + ".calls")}\n{script}\n')
    path.chmod(0o755)
    return path


def test_a_failed_install_leaves_nothing_behind_and_says_what_the_pods_did(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from devtools.kind import release

    helm = _recording(
        tmp_path,
        "helm",
        'case "$1" in install) echo "Error: context deadline exceeded" >&2; exit 1 ;; esac',
    )
    kubectl = _recording(
        tmp_path, "kubectl", 'case "$*" in *"get pods"*) echo "pp-webhook-1   0/1   CrashLoopBackOff" ;; esac'
    )
    loaded: list[str] = []

    class Run:
        prepared = SimpleNamespace(engine=None, kubectl=kubectl)
        kubeconfig = tmp_path / "kubeconfig"

        def load(self, image: str) -> None:
            loaded.append(image)

    monkeypatch.setattr(release, "build_image", lambda engine, tag: tag)
    monkeypatch.setattr(release, "find_binary", lambda name: helm)
    with pytest.raises(release.ReleaseError) as failed:
        release.install(cast(KindRun, Run()), tmp_path / "helm-home")
    assert "context deadline exceeded" in str(failed.value)
    assert "CrashLoopBackOff" in str(failed.value)
    assert loaded == ["production-policy:dev"]
    helm_calls = (tmp_path / "helm.calls").read_text().splitlines()
    assert helm_calls[0] == " ".join(release.INSTALL[1:])
    assert helm_calls[1:] == [
        "status production-policy --namespace production-policy",
        "uninstall production-policy --namespace production-policy --wait",
    ]
    deleted = (tmp_path / "kubectl.calls").read_text().splitlines()[-1].split()
    assert deleted[2:] == [
        "delete",
        "--ignore-not-found",
        "mutatingwebhookconfiguration,validatingwebhookconfiguration",
        "production-policy",
    ]
