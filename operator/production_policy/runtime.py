"""What every kopf process of ours shares: login, settings, and how it runs."""

from __future__ import annotations

import kopf

from production_policy import kube


def new_registry() -> kopf.OperatorRegistry:
    """An empty registry that logs in as our processes do."""
    registry = kopf.OperatorRegistry()
    kopf.on.login(registry=registry)(kube.kopf_login)
    return registry


def configure(settings: kopf.OperatorSettings) -> None:
    """Settings shared by our kopf processes: bounded timeouts, and kopf never posts events."""
    settings.posting.enabled = False
    settings.scanning.disabled = True
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.request_timeout = 30
    # After SIGTERM, give the shutdown (unregistering webhooks, say) a minute, not kopf's ten.
    settings.process.ultimate_exiting_timeout = 60


async def run_operator(registry: kopf.OperatorRegistry) -> None:
    """Run kopf standalone and cluster-wide until SIGINT/SIGTERM."""
    settings = kopf.OperatorSettings()
    configure(settings)
    await kopf.operator(registry=registry, settings=settings, standalone=True, clusterwide=True)
