"""`kind load`: an image built here, never pushed anywhere, runs in the cluster."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from devtools.kind.images import docker_build
from tests.support.cluster import KindNodes
from tests.support.pods import pod, wait_finished

pytestmark = pytest.mark.kind


def test_kind_load_puts_a_locally_built_image_into_the_node(
    kind_cluster: KindNodes, namespace: str, tmp_path: Path
) -> None:
    # KWOK pulls nothing and runs nothing, so it would "run" an image that exists nowhere.
    token = uuid.uuid4().hex[:12]
    tag = f"production-policy/kind-load-test:{token}"
    (tmp_path / "token").write_text(token)
    docker_build(kind_cluster.engine, tag, tmp_path, f"FROM {kind_cluster.busybox}\nCOPY token /token\n")
    try:
        kind_cluster.run.load(tag)
        core = kind_cluster.cluster.core
        core.create_namespaced_pod(namespace, pod("loaded", tag, "cat /token", restart_policy="Never"))
        assert wait_finished(core, namespace, "loaded").strip() == token
    finally:
        kind_cluster.engine.docker("rmi", tag, check=False)
