"""The kopf wiring of the config-rollout controller.

kopf's sharp edges, avoided on purpose: ConfigMaps and Secrets are only *indexed* (per-key
digests, never values; kopf writes nothing to them), the workloads only *watched* with
``on.event`` (no diff-base annotation, no finalizer), and the rollout timers live in one task of
our own started at startup. kopf runs every ``on.event`` handler only once all indexes are
filled, so no workload is ever judged against a half-listed set of ConfigMaps and Secrets.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any

import kopf

from production_policy import GROUP, PLURAL, VERSION, kube
from production_policy.clusterview import ClusterView
from production_policy.engine import rollout as engine
from production_policy.engine.digests import key_digests
from production_policy.rollout import kubeio
from production_policy.rollout.controller import SOURCE_INDEX, Controller
from production_policy.rollout.options import ControllerOptions

log = logging.getLogger(__name__)

WORKLOAD_RESOURCES = {"Deployment": "deployments", "StatefulSet": "statefulsets", "DaemonSet": "daemonsets"}


def source_data(
    hmac_key: bytes, body: Mapping[str, Any], annotations: Mapping[str, str]
) -> engine.SourceData:
    """The digests of a ConfigMap's or Secret's keys; the values are not kept, not even decoded."""
    data: dict[str, str] = {**(body.get("binaryData") or {}), **(body.get("data") or {})}
    return engine.SourceData(engine.compact(key_digests(hmac_key, data)), engine.source_ignored(annotations))


def register_controller(
    registry: kopf.OperatorRegistry, view: ClusterView, options: ControllerOptions
) -> None:
    """Register the config-rollout controller into ``registry``.

    ``view`` must be kept current by :func:`production_policy.clusterview.register_views`,
    registered into the same registry *before* this (kopf runs a resource's handlers in
    registration order, so the view is updated before the controller looks at it).
    """
    controller = Controller(view, options)
    ignored = options.all_ignored_namespaces
    tasks: list[asyncio.Task[None]] = []

    @kopf.on.startup(registry=registry, id="rollout-startup")
    async def start(**kwargs: Any) -> None:
        controller.api = kube.api_client()
        controller.hmac_key = await asyncio.to_thread(
            kubeio.load_or_create_key, controller.api, options.operator_namespace, options.key_secret
        )
        controller.key_id = engine.key_id(controller.hmac_key)
        controller.indices = {name: kwargs[name] for name in SOURCE_INDEX.values()}
        tasks.append(asyncio.create_task(controller.run(), name="config-rollout loop"))
        log.info(
            "config rollouts: digest key id %s; ignored namespaces: %s",
            controller.key_id,
            ", ".join(sorted(ignored)),
        )

    @kopf.on.cleanup(registry=registry, id="rollout-cleanup")
    async def stop(**_: Any) -> None:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        controller.close()

    for kind, index_id in SOURCE_INDEX.items():
        plural = "configmaps" if kind == "ConfigMap" else "secrets"
        _register_source(registry, controller, kind, plural, index_id, ignored)

    for kind, plural in WORKLOAD_RESOURCES.items():
        _register_workload(registry, controller, kind, plural, ignored)

    @kopf.on.event(GROUP, VERSION, PLURAL, registry=registry, id="rollout-policies")
    async def policy_event(**_: Any) -> None:
        controller.policies_changed()

    @kopf.on.event("", "v1", "namespaces", registry=registry, id="rollout-namespaces")
    async def namespace_event(name: str, **_: Any) -> None:
        controller.namespace_changed(name)


def _register_source(
    registry: kopf.OperatorRegistry,
    controller: Controller,
    kind: str,
    plural: str,
    index_id: str,
    ignored: frozenset[str],
) -> None:
    def wanted(namespace: str | None, **_: Any) -> bool:
        return namespace not in ignored

    @kopf.index("", "v1", plural, registry=registry, id=index_id, when=wanted)
    async def digests(
        namespace: str | None, name: str, body: kopf.Body, annotations: kopf.Annotations, **_: Any
    ) -> dict[tuple[str, str], engine.SourceData]:
        return {(namespace or "", name): source_data(controller.hmac_key, body, annotations)}

    @kopf.on.event("", "v1", plural, registry=registry, id=f"{index_id}-changed", when=wanted)
    async def changed(namespace: str | None, name: str, **_: Any) -> None:
        controller.source_changed(namespace or "", kind, name)


def _register_workload(
    registry: kopf.OperatorRegistry, controller: Controller, kind: str, plural: str, ignored: frozenset[str]
) -> None:
    def wanted(namespace: str | None, **_: Any) -> bool:
        return namespace not in ignored

    @kopf.on.event("apps", "v1", plural, registry=registry, id=f"rollout-{plural}", when=wanted)
    async def workload_event(type: str, namespace: str | None, name: str, body: kopf.Body, **_: Any) -> None:
        if type == "DELETED":
            controller.workload_gone((kind, namespace or "", name))
            return
        facts = engine.workload_facts(body)
        if facts is not None:
            controller.workload_seen(facts)
