"""The kopf wiring of the config-rollout controller.

kopf's sharp edges, avoided on purpose: the workloads are only *watched* with ``on.event`` (no
diff-base annotation, no finalizer), ConfigMaps and Secrets are not handed to kopf at all (the
controller lists and watches them itself, keeping per-key digests only: see
:mod:`production_policy.rollout.sources`), and the rollout timers live in one task of our own
started at startup.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf

from production_policy import GROUP, PLURAL, VERSION, kube
from production_policy.engine import kinds, rollout
from production_policy.processes import runtime
from production_policy.processes.clusterview import ClusterView
from production_policy.processes.options import ControllerOptions
from production_policy.rollout.controller import WRITE_CONCURRENCY, Controller
from production_policy.rollout.key import load_or_create_key

log = logging.getLogger(__name__)


def register_controller(
    registry: kopf.OperatorRegistry, view: ClusterView, options: ControllerOptions
) -> None:
    """Register the config-rollout controller into ``registry``.

    ``view`` must be kept current by :func:`production_policy.processes.clusterview.register_views`,
    registered into the same registry *before* this (kopf runs a resource's handlers in
    registration order, so the view is updated before the controller looks at it).
    """
    started: runtime.Started[Controller] = runtime.Started("the config-rollout controller")
    ignored = options.all_ignored_namespaces
    tasks: list[asyncio.Task[None]] = []

    @kopf.on.startup(registry=registry, id="rollout-startup")
    async def start(**_: Any) -> None:
        # The writes in flight, and the two long-lived watches of ConfigMaps and Secrets.
        api = kube.api_client(connections=WRITE_CONCURRENCY + 2)
        hmac_key = await asyncio.to_thread(
            load_or_create_key, api, options.operator_namespace, options.key_secret
        )
        controller = started.set(Controller(view, options, api, hmac_key))
        controller.start()
        tasks.append(asyncio.create_task(controller.run(), name="config-rollout loop"))
        log.info(
            "config rollouts: digest key id %s; ignored namespaces: %s",
            controller.key_id,
            ", ".join(sorted(ignored)),
        )

    @kopf.on.cleanup(registry=registry, id="rollout-cleanup")
    async def stop(**_: Any) -> None:
        await runtime.cancelled(tasks)
        controller = started.take()
        if controller is not None:
            controller.close()

    for kind in kinds.ROLLABLE:
        _register_workload(registry, started, kind, ignored)

    @kopf.on.event(GROUP, VERSION, PLURAL, registry=registry, id="rollout-policies")
    async def policy_event(**_: Any) -> None:
        started.get().policies_changed()

    @kopf.on.event("", "v1", "namespaces", registry=registry, id="rollout-namespaces")
    async def namespace_event(name: str, **_: Any) -> None:
        started.get().namespace_changed(name)


def _register_workload(
    registry: kopf.OperatorRegistry,
    started: runtime.Started[Controller],
    kind: kinds.WorkloadKind,
    ignored: frozenset[str],
) -> None:
    def wanted(namespace: str | None, **_: Any) -> bool:
        return namespace not in ignored

    @kopf.on.event(
        kind.group, kind.version, kind.plural, registry=registry, id=f"rollout-{kind.plural}", when=wanted
    )
    async def workload_event(type: str, namespace: str | None, name: str, body: kopf.Body, **_: Any) -> None:
        if type == "DELETED":
            started.get().workload_gone((kind.kind, namespace or "", name))
            return
        facts = rollout.workload_facts(body)
        if facts is not None:
            # kopf gives type None for what its listing found, ADDED for a creation it watched.
            await started.get().workload_arrived(facts, created=type == "ADDED")
