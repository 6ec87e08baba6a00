"""tests/kind: what only a kubelet can show, on a kind cluster (one per session, shared by all)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devtools.kind.release import Release, install
from tests.support.cluster import Cluster, KindNodes
from tests.support.helm import removed_after


@pytest.fixture(scope="session")
def cluster(kind_cluster: KindNodes) -> Cluster:
    """Here ``cluster`` (and so ``namespace``) is the kind cluster, whatever --cluster says."""
    return kind_cluster.cluster


@pytest.fixture(scope="module")
def chart_release(kind_cluster: KindNodes, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Release]:
    """The operator installed for one test module as the README says (devtools/kind/release.py):
    its image built and loaded, ``helm install --wait``. Removed after the module whatever happened,
    webhook configurations included: one left pointing at no pod would break every later pod create."""
    with removed_after(
        install(kind_cluster.run, tmp_path_factory.mktemp("helm")), kind_cluster.cluster
    ) as release:
        yield release
