"""Not collected by itself: test_cleanup.py runs one of these tests in a pytest session of its own,
which passes, fails or is interrupted with the kind cluster up, and then looks for leftovers."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.support.cluster import KindNodes

pytestmark = pytest.mark.kind


def _record(kind_cluster: KindNodes) -> None:
    (node,) = kind_cluster.cluster.core.list_node().items
    Path(os.environ["PP_SESSION_PROBE_MARK"]).write_text(f"{kind_cluster.run.name} {node.metadata.name}\n")


def test_passes(kind_cluster: KindNodes) -> None:
    _record(kind_cluster)


def test_fails(kind_cluster: KindNodes) -> None:
    _record(kind_cluster)
    pytest.fail("this session is meant to fail")


def test_interrupted(kind_cluster: KindNodes) -> None:
    _record(kind_cluster)
    time.sleep(600)  # the outer test sends SIGINT (Ctrl-C) long before this ends
