"""The kopf wiring of the compiled admission policies (only with ``admission.engine`` apiserver or both)."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import kopf

from production_policy import GROUP, PLURAL, VERSION, kube
from production_policy.apiserver.compiled import CompiledPolicies
from production_policy.audit.auditor import Auditor
from production_policy.engine.apiserver import InstallSettings
from production_policy.engine.names import SYSTEM_NAMESPACES
from production_policy.processes import runtime
from production_policy.processes.clusterview import ClusterView
from production_policy.processes.options import ControllerOptions


def register_compiled(
    registry: kopf.OperatorRegistry,
    view: ClusterView,
    options: ControllerOptions,
    audit: runtime.Started[Auditor],
) -> CompiledPolicies | None:
    """Keep the compiled admission policies applied as policies change, and their condition in every
    policy's status (``audit``: the audit, once started); None (nothing registered) with
    ``admission_engine`` webhook. Give the result's ``condition`` to the audit.

    ``view`` must be registered into ``registry`` before this, as for the audit.
    """
    if options.admission_engine == "webhook":
        return None
    settings = InstallSettings(
        options.operator_namespace,
        tuple(sorted(options.ignored_namespaces - SYSTEM_NAMESPACES)),
        options.validating_failure_policy,
        {},  # the chart created the objects and owns their labels (Helm checks its managed-by label)
    )
    compiled = CompiledPolicies(view, settings, functools.partial(_rewrite_all, audit))
    tasks: list[asyncio.Task[None]] = []

    @kopf.on.startup(registry=registry, id="compiled-startup")
    async def start(**_: Any) -> None:
        compiled.api = kube.api_client()
        tasks.append(asyncio.create_task(compiled.run(), name="compiled admission policies"))

    @kopf.on.cleanup(registry=registry, id="compiled-cleanup")
    async def stop(**_: Any) -> None:
        await runtime.cancelled(tasks)
        if compiled.api is not None:
            compiled.api.close()

    @kopf.on.event(GROUP, VERSION, PLURAL, registry=registry, id="compiled-policies")
    async def policy_event(**_: Any) -> None:
        compiled.policies_changed()

    return compiled


def _rewrite_all(audit: runtime.Started[Auditor]) -> None:
    # Before the audit's startup it has no policy yet (no watch runs): nothing to rewrite.
    auditor = audit.peek()
    if auditor is not None:
        auditor.rewrite_all()
