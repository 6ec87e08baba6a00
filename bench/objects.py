"""Many Deployments, ConfigMaps and Secrets, made fast (scenarios 3 and 4).

Deployment ``dep-N`` references ConfigMap ``cm-N`` (one key, through env ``valueFrom``) and Secret
``sec-N`` (a volume); the first ``fanout`` Deployments also reference the shared ConfigMap
``shared`` (``envFrom``). Replicas are 0: the rollout controller reacts to the pod template, and
pods would only make kube-controller-manager and KWOK compete for the 2 cores.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from collections.abc import Callable
from typing import Any

from bench import common
from bench.common import KubeHttp, log

SHARED = "shared"
BASELINE = "productionpolicy.dev/config-baseline"
CONCURRENCY = 32
BASELINE_SECONDS_EACH = 0.25
"""The longest a controller may take per first-seen workload to write its baseline (a bound, not a goal)."""


def rollout_policy(name: str, namespaces: list[str]) -> tuple[str, dict[str, Any]]:
    """A policy that rolls every workload of ``namespaces`` at once: no debounce, no interval, no cap."""
    return name, {
        "enforcement": "Audit",
        "match": {"namespaces": namespaces},
        "configRollout": {
            "enabled": True,
            "debounceSeconds": 0,
            "minIntervalSeconds": 0,
            "maxConcurrent": 1000,
            "maxRolloutsPerWindow": 1000,
            "windowSeconds": 60,
        },
    }


def deployment(index: int, shared: bool) -> dict[str, Any]:
    name = f"dep-{index}"
    container: dict[str, Any] = {
        "name": "app",
        "image": "registry.example/app:v1",
        "ports": [{"containerPort": 8080}],
        "env": [{"name": "LEVEL", "valueFrom": {"configMapKeyRef": {"name": f"cm-{index}", "key": "level"}}}],
        "volumeMounts": [{"name": "secret", "mountPath": "/etc/secret", "readOnly": True}],
    }
    if shared:
        container["envFrom"] = [{"configMapRef": {"name": SHARED}}]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [container],
                    "volumes": [{"name": "secret", "secret": {"secretName": f"sec-{index}"}}],
                },
            },
        },
    }


def config_map(name: str, value: str = "info") -> dict[str, Any]:
    return {"metadata": {"name": name}, "data": {"level": value, "other": "unchanged"}}


def secret(name: str, size: int = 16) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "type": "Opaque",
        "data": {"token": base64.b64encode(os.urandom(size)).decode()},
    }


async def populate(api: KubeHttp, namespace: str, start: int, stop: int, fanout: int = 0) -> float:
    """ConfigMaps, Secrets and Deployments ``start`` .. ``stop - 1``; returns the seconds it took."""
    began = time.monotonic()
    if start == 0 and fanout:
        await api.create(common.ns_path(namespace, "configmaps"), config_map(SHARED), exist_ok=True)
    configmaps, secrets = common.ns_path(namespace, "configmaps"), common.ns_path(namespace, "secrets")
    await common.bounded_map(
        CONCURRENCY,
        lambda i: api.create(configmaps, config_map(f"cm-{i}"), exist_ok=True),
        range(start, stop),
    )
    await common.bounded_map(
        CONCURRENCY, lambda i: api.create(secrets, secret(f"sec-{i}"), exist_ok=True), range(start, stop)
    )
    deployments = common.ns_path(namespace, "deployments", group="apps/v1")
    await common.bounded_map(
        CONCURRENCY,
        lambda i: api.create(deployments, deployment(i, i < fanout), exist_ok=True),
        range(start, stop),
    )
    took = time.monotonic() - began
    log(f"{namespace}: {stop - start} Deployments, ConfigMaps and Secrets made in {took:.0f}s")
    return took


METADATA_ONLY = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"


async def list_deployments(
    api: KubeHttp, namespace: str, metadata_only: bool = False
) -> tuple[list[dict[str, Any]], str]:
    """Every Deployment of ``namespace`` (or only their metadata), and the resourceVersion of the list."""
    items: list[dict[str, Any]] = []
    params = {"limit": "1000"}
    resource_version = ""
    accept = METADATA_ONLY if metadata_only else "application/json"
    for _ in range(100):
        page = await api.get(common.ns_path(namespace, "deployments", group="apps/v1"), params, accept)
        items.extend(page.get("items", []))
        resource_version = resource_version or page["metadata"].get("resourceVersion", "")
        token = page["metadata"].get("continue")
        if not token:
            break
        params = {"limit": "1000", "continue": token}
    return items, resource_version


def template_hash(workload: dict[str, Any]) -> str:
    """A digest of a workload's pod template: it changes exactly when the workload rolls."""
    text = json.dumps(workload["spec"]["template"], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def template_hashes(items: list[dict[str, Any]]) -> dict[str, str]:
    return {d["metadata"]["name"]: template_hash(d) for d in items}


async def count_baselined(api: KubeHttp, namespace: str) -> tuple[int, int]:
    """(Deployments with a baseline, Deployments)."""
    items, _ = await list_deployments(api, namespace, metadata_only=True)
    return sum(1 for d in items if BASELINE in (d["metadata"].get("annotations") or {})), len(items)


async def wait_baselined(
    api: KubeHttp,
    namespace: str,
    expected: int,
    timeout: float,
    alive: Callable[[], object] | None = None,
    stalled_after: float = 600.0,
) -> float:
    """Wait until the controller has given every Deployment its baseline; returns the seconds waited.

    ``alive`` (the controller's ``check_alive``) is called at every look, so a controller that died
    fails the wait at once instead of at ``timeout``; no progress for ``stalled_after`` seconds fails
    it too. Progress is logged every minute: a long wait is never silent.
    """
    began = time.monotonic()
    deadline = began + timeout
    done, total = 0, 0
    progressed, logged = began, began
    while time.monotonic() < deadline:
        if alive is not None:
            alive()
        now_done, total = await count_baselined(api, namespace)
        now = time.monotonic()
        if now_done > done:
            done, progressed = now_done, now
        if total >= expected and done >= expected:
            return now - began
        if now - progressed > stalled_after:
            raise TimeoutError(
                f"{namespace}: {done} of {expected} Deployments have a baseline, none more for "
                f"{stalled_after:.0f}s ({now - began:.0f}s in all)"
            )
        if now - logged >= 60:
            log(f"{namespace}: {done} of {expected} Deployments have a baseline after {now - began:.0f}s")
            logged = now
        await _sleep(min(10.0, 0.5 + expected / 1000))
    raise TimeoutError(
        f"{namespace}: only {done} of {expected} Deployments have a baseline after {timeout:.0f}s"
    )


async def _sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)
