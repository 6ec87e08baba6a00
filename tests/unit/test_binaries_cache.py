"""The binaries cache (devtools/devcluster/binaries.provide): a build is made once, in a scratch
directory, and published whole; a failed one leaves nothing a later run could take for a build."""

from __future__ import annotations

from pathlib import Path

import pytest

from devtools.devcluster.binaries import BinaryError, provide
from devtools.kind.binaries import _provide


def test_a_build_is_published_once_then_found_in_the_cache(tmp_path: Path) -> None:
    scratch: list[Path] = []

    def make(work: Path, out: Path) -> None:
        scratch.append(work)
        (out / "tool").write_text("built")

    target = tmp_path / "cache" / "tool-v1"
    assert provide(target, ("tool",), "tool v1", make) == target
    assert provide(target, ("tool",), "tool v1", make) == target
    assert len(scratch) == 1, "the second call found the cached build"
    assert (target / "tool").read_text() == "built"
    assert not scratch[0].exists(), "the scratch directory is gone"


def test_a_failed_build_leaves_nothing_in_the_cache(tmp_path: Path) -> None:
    def make(work: Path, out: Path) -> None:
        (out / "tool").write_text("half")
        raise BinaryError("go build failed")

    target = tmp_path / "cache" / "tool-v1"
    with pytest.raises(BinaryError, match="go build failed"):
        provide(target, ("tool",), "tool v1", make)
    assert not target.exists()


def test_a_kind_binary_that_may_not_be_built_says_how_to_build_it(tmp_path: Path) -> None:
    def make(work: Path, out: Path) -> None:
        raise AssertionError("not to be built")

    with pytest.raises(BinaryError, match="make kind-bins"):
        _provide(tmp_path / "kind-v0", "kind", False, "kind v0", make)
    (tmp_path / "kind-v0").mkdir()
    (tmp_path / "kind-v0" / "kind").write_text("cached")
    assert _provide(tmp_path / "kind-v0", "kind", False, "kind v0", make) == tmp_path / "kind-v0" / "kind"
