"""``production-policy run --dev``: the whole operator in one process, for a local cluster.

It makes a throwaway CA and a serving certificate for 127.0.0.1, serves the webhooks there,
registers the webhook configurations by URL, and removes them again on the way out, Ctrl-C
included: a configuration left pointing at a dead process would block every pod create.
"""

from __future__ import annotations

import asyncio
import base64
import tempfile
from pathlib import Path

from production_policy import certs, kube
from production_policy.admission import configuration, server
from production_policy.apiserver import register_compiled
from production_policy.audit import Auditor, register_audit
from production_policy.probewatch import register_probewatch
from production_policy.processes import runtime, webhook
from production_policy.processes.options import ControllerOptions
from production_policy.rollout import register_controller


async def run_dev(port: int, settings: configuration.WebhookSettings, controller: ControllerOptions) -> None:
    """Serve, register, run the controller too, until a signal; then unregister."""
    with tempfile.TemporaryDirectory(prefix="production-policy-dev-") as tmp:
        ca = certs.make_ca("production-policy-dev-ca")
        tls = server.TLSFiles(Path(tmp) / "tls.crt", Path(tmp) / "tls.key")
        certs.issue_serving(ca, ("127.0.0.1", "localhost")).write(tls.cert, tls.key)
        options = webhook.WebhookOptions(host="127.0.0.1", port=port, tls=tls)
        client_config = configuration.url_client_config(
            f"https://127.0.0.1:{port}", base64.b64encode(ca.cert_pem).decode()
        )
        configs = configuration.build_configurations(settings, client_config, controller.admission_engine)
        loop = asyncio.get_running_loop()
        api = kube.api_client()
        registry = runtime.new_registry()
        try:
            # In a cluster Helm creates it; locally it holds the controller's digest key.
            await loop.run_in_executor(None, kube.ensure_namespace, api, controller.operator_namespace)
            async with webhook.admission_served(registry, options) as served:
                view = served.view
                register_controller(registry, view, controller)
                audit: runtime.Started[Auditor] = runtime.Started("the audit")
                compiled = register_compiled(registry, view, controller, audit)
                probes = register_probewatch(
                    registry, view, controller, audit, compiled.withdrawals_applied if compiled else None
                )
                register_audit(
                    registry,
                    view,
                    controller,
                    audit,
                    compiled.condition if compiled else None,
                    probes.tally if probes else None,
                    probes.pod_event if probes else None,
                )
                await loop.run_in_executor(None, kube.register_configurations, api, configs)
                try:
                    await runtime.run_operator(registry)
                finally:
                    await loop.run_in_executor(
                        None, kube.remove_configurations, api, configuration.CONFIGURATION_NAME
                    )
        finally:
            api.close()
