"""Every Prometheus metric of the operator, defined once; served on a plain-HTTP port of its own."""

from __future__ import annotations

import logging

from prometheus_client import Counter, Gauge, Histogram, start_http_server

from production_policy.engine.apiserver.report import REASONS

log = logging.getLogger(__name__)

ADMISSION_REQUESTS = Counter(
    "production_policy_admission_requests_total",
    "Admission requests answered, by webhook path, object kind, operation and decision.",
    ["webhook", "kind", "operation", "decision"],
)
ADMISSION_SECONDS = Histogram(
    "production_policy_admission_duration_seconds",
    "Time to answer one admission request, from body read to answer built.",
    ["webhook"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
ROLLOUTS = Counter(
    "production_policy_rollouts_total",
    "Workload rollouts started because referenced configuration changed, by reason.",
    ["reason"],
)
BREAKER_TRIPS = Counter(
    "production_policy_rollout_breaker_trips_total",
    "Times a workload's rollouts were stopped because its configuration source flapped.",
)
INDEX_ENTRIES = Gauge(
    "production_policy_index_entries",
    "Entries held in memory, by index (policies, namespaces, workloads, sources, probed_pods).",
    ["index"],
)
ERRORS = Counter(
    "production_policy_errors_total",
    "Errors handled without crashing, by component.",
    ["component"],
)
for _component in ("admission", "rollout", "audit", "probewatch"):
    ERRORS.labels(_component)  # present at 0 from the start, so a rate() has a baseline

INJECTED_PROBE_FAILURES = Gauge(
    "production_policy_injected_probe_failures",
    "Injected probes failing a workload now (restarting its containers, or keeping them unready), by probe "
    "kind: one per workload, container and probe.",
    ["probe"],
)
for _probe in ("readiness", "liveness", "startup"):
    INJECTED_PROBE_FAILURES.labels(_probe)

WITHDRAWN_PROBES = Gauge(
    "production_policy_withdrawn_probes",
    "Default probes withdrawn from a workload now (onInjectedFailure: Withdraw), by probe kind: one per "
    "workload, container and probe.",
    ["probe"],
)
for _probe in ("liveness", "startup"):
    WITHDRAWN_PROBES.labels(_probe)

LEADER = Gauge(
    "production_policy_leader",
    "1 while this controller replica holds the leader-election Lease and acts; 0 while it stands by.",
)
APISERVER_REASONS = REASONS
APISERVER_ENFORCEMENT = Gauge(
    "production_policy_apiserver_enforcement",
    "1 for the state of the compiled admission policies in the API server (the reason of the policies' "
    "CompiledToAPIServer condition), 0 for the others.",
    ["reason"],
)
APISERVER_SYNCS = Counter(
    "production_policy_apiserver_syncs_total",
    "Compilations of the policies applied to the API server and verified by the canary, by result.",
    ["result"],
)
APISERVER_SYNC_SECONDS = Histogram(
    "production_policy_apiserver_sync_seconds",
    "Time to compile, apply and verify the admission policies once.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
CERTIFICATE_EXPIRY = Gauge(
    "production_policy_serving_certificate_expiry_seconds",
    "Seconds until the webhook's serving certificate expires.",
)


HOST = "0.0.0.0"
"""Where /metrics listens by default: a pod serves them on its own IP."""


def serve(port: int, host: str = HOST) -> None:
    """Serve /metrics on ``port`` in a background thread; port 0 turns metrics off."""
    if port:
        start_http_server(port, addr=host)
        log.info("serving metrics on http://%s:%d/metrics", host, port)
