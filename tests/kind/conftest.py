"""tests/kind: what only a kubelet can show, on a kind cluster (one per session, shared by all)."""

from __future__ import annotations

import pytest

from tests.support.cluster import Cluster, KindNodes


@pytest.fixture(scope="session")
def cluster(kind_cluster: KindNodes) -> Cluster:
    """Here ``cluster`` (and so ``namespace``) is the kind cluster, whatever --cluster says."""
    return kind_cluster.cluster
