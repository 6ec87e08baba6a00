"""Scenario 1: pod creates end to end through kube-apiserver, with our webhooks registered and with none.

One control plane, one ``production-policy webhook`` process (10 policies, bench.workload), its
MutatingWebhookConfiguration and ValidatingWebhookConfiguration registered by URL exactly as
``run --dev`` registers them. For each concurrency, 2,000 creates of the bench pod with no webhook
configuration, then 2,000 with ours, one after the other, in the same namespace (emptied between
runs). Latency is from sending a create to its response, measured by an aiohttp client.

The pods name a scheduler that does not exist, so they stay Pending: kube-scheduler and KWOK do no
work during the runs, and the number measured is the create itself (admission + storage), not
background scheduling competing for the machine's 2 cores. Nothing is pinned.
"""

from __future__ import annotations

import asyncio
import base64
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import common, workload
from bench.common import ApiError, KubeHttp, Process, log

NAMESPACE = "shop"
INJECTED = "productionpolicy.dev/injected"
ADMISSION_API = "/apis/admissionregistration.k8s.io/v1"


@dataclass(frozen=True)
class Scale:
    pods: int = 2000
    concurrencies: tuple[int, ...] = (1, 16, 64)
    warmup: int = 200


FULL = Scale()
TINY = Scale(pods=20, concurrencies=(1, 4), warmup=5)


async def _create_pods(api: KubeHttp, count: int, concurrency: int) -> dict[str, Any]:
    latencies: list[float] = []
    injected = 0
    errors: dict[str, int] = {}
    body = workload.pod()
    path = common.ns_path(NAMESPACE, "pods")

    async def one() -> None:
        nonlocal injected
        began = time.perf_counter()
        try:
            created = await api.create(path, body)
        except (ApiError, TimeoutError, OSError) as exc:
            key = str(getattr(exc, "status", type(exc).__name__))
            errors[key] = errors.get(key, 0) + 1
            return
        latencies.append(time.perf_counter() - began)
        if INJECTED in (created.get("metadata", {}).get("annotations") or {}):
            injected += 1

    started = time.perf_counter()
    await common.bounded(concurrency, [one for _ in range(count)])
    elapsed = time.perf_counter() - started
    return {
        "created": len(latencies),
        "with_injected_defaults": injected,
        "errors": errors,
        "elapsed_s": round(elapsed, 2),
        "creates_per_s": round(len(latencies) / elapsed, 1),
        "latency": common.summary_ms(latencies),
    }


async def _delete_pods(api: KubeHttp) -> None:
    await api.request("DELETE", common.ns_path(NAMESPACE, "pods"), ok=(200, 202))

    async def empty() -> bool:
        page = await api.get(common.ns_path(NAMESPACE, "pods"), {"limit": "1"})
        return not page.get("items")

    await common.wait_until_async(empty, 300, "the pods to be deleted", interval=0.5)


async def _dry_run_injected(api: KubeHttp) -> bool:
    created = await api.request(
        "POST", common.ns_path(NAMESPACE, "pods"), workload.pod(), params={"dryRun": "All"}
    )
    return INJECTED in (created.get("metadata", {}).get("annotations") or {})


async def _register(api: KubeHttp, configs: list[dict[str, Any]]) -> None:
    for config in configs:
        plural = (
            "mutatingwebhookconfigurations"
            if config["kind"].startswith("Mutating")
            else ("validatingwebhookconfigurations")
        )
        await api.create(f"{ADMISSION_API}/{plural}", config)

    async def used() -> bool:
        return await _dry_run_injected(api)

    await common.wait_until_async(used, 60, "kube-apiserver to call our webhooks")


async def _unregister(api: KubeHttp) -> None:
    for plural in ("mutatingwebhookconfigurations", "validatingwebhookconfigurations"):
        await api.delete(f"{ADMISSION_API}/{plural}/production-policy")

    async def unused() -> bool:
        return not await _dry_run_injected(api)

    await common.wait_until_async(unused, 60, "kube-apiserver to stop calling our webhooks")


def _cpu(pids: dict[str, int]) -> dict[str, float]:
    return {name: common.cpu_seconds(pid) for name, pid in pids.items()}


async def _scenario(
    kubeconfig: Path, url: str, ca_pem: bytes, scale: Scale, pids: dict[str, int]
) -> list[dict[str, Any]]:
    from production_policy.admission import configuration

    settings = configuration.WebhookSettings(operator_namespace=common.OPERATOR_NAMESPACE)
    configs = configuration.build_configurations(
        settings, configuration.url_client_config(url, base64.b64encode(ca_pem).decode())
    )
    runs: list[dict[str, Any]] = []
    async with KubeHttp(kubeconfig, connections=max(scale.concurrencies) + 4) as api:
        # Warm up both paths (connections, caches, the webhook's first requests).
        await _create_pods(api, scale.warmup, max(scale.concurrencies))
        await _register(api, configs)
        await _create_pods(api, scale.warmup, max(scale.concurrencies))
        await _delete_pods(api)
        registered = True
        for concurrency in scale.concurrencies:
            for mode in ("none", "webhooks"):
                if (mode == "webhooks") != registered:
                    await (_register(api, configs) if mode == "webhooks" else _unregister(api))
                    registered = mode == "webhooks"
                log(f"{scale.pods} pod creates at concurrency {concurrency}, webhooks: {mode}")
                before = _cpu(pids)
                result = await _create_pods(api, scale.pods, concurrency)
                after = _cpu(pids)
                # Where the CPU went: milliseconds of CPU per pod create, per process.
                result["cpu_ms_per_create"] = {
                    name: round(1000 * (after[name] - before[name]) / max(1, result["created"]), 3)
                    for name in pids
                }
                result.update(
                    {"concurrency": concurrency, "webhooks": mode, "load_average_after": common.load_now()}
                )
                runs.append(result)
                await _delete_pods(api)
        if registered:
            await _unregister(api)
    return runs


def _compare(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for concurrency in sorted({r["concurrency"] for r in runs}):
        none = next(r for r in runs if r["concurrency"] == concurrency and r["webhooks"] == "none")
        ours = next(r for r in runs if r["concurrency"] == concurrency and r["webhooks"] == "webhooks")
        row: dict[str, Any] = {"concurrency": concurrency}
        for q in ("p50_ms", "p95_ms", "p99_ms"):
            row[q] = {
                "none": none["latency"].get(q),
                "webhooks": ours["latency"].get(q),
                "ratio": common.ratio(ours["latency"].get(q, 0), none["latency"].get(q, 0)),
            }
        row["creates_per_s"] = {"none": none["creates_per_s"], "webhooks": ours["creates_per_s"]}
        row["cpu_ms_per_create"] = {
            "none": none.get("cpu_ms_per_create"),
            "webhooks": ours.get("cpu_ms_per_create"),
        }
        rows.append(row)
    return rows


def run(out: Path, scale: Scale = FULL) -> dict[str, Any]:
    from production_policy import certs

    started = time.monotonic()
    load_before = common.load_now()
    with common.control_plane(nodes=2) as plane, tempfile.TemporaryDirectory(prefix="pp-bench-e2e-") as tmp_:
        tmp = Path(tmp_)

        async def prepare() -> None:
            async with KubeHttp(plane.kubeconfig) as api:
                await common.create_namespace(api, NAMESPACE, workload.NAMESPACE_LABELS)
                for name, spec in workload.policies(NAMESPACE).items():
                    await common.create_policy(api, name, spec)

        asyncio.run(prepare())
        ca = certs.make_ca("pp-bench-ca")
        certs.issue_serving(ca, ("127.0.0.1", "localhost")).write(tmp / "tls.crt", tmp / "tls.key")
        port = common.free_port()
        argv = common.webhook_argv(port, tmp / "tls.crt", tmp / "tls.key")
        with Process(argv, tmp / "webhook.log", env={"KUBECONFIG": str(plane.kubeconfig)}) as webhook:
            url = f"https://127.0.0.1:{port}"
            webhook.wait_https(f"{url}/readyz", 60)
            pids = {**plane.pids(), "webhook": webhook.pid, "client (this process)": os.getpid()}
            pids = {n: p for n, p in pids.items() if n not in ("kwok", "kube-scheduler")}
            runs = asyncio.run(_scenario(plane.kubeconfig, url, ca.cert_pem, scale, pids))
            webhook.check_alive()

    comparison = _compare(runs)
    top = comparison[-1]
    data = {
        "scenario": "admission_e2e",
        "title": "Scenario 1: pod creates through kube-apiserver, our webhooks vs none",
        "machine": common.machine(plane.binaries),
        "load_average_before": load_before,
        "setup": {
            "pods_per_run": scale.pods,
            "policies": 10,
            "webhook": "one `production-policy webhook` process (log format json, as the chart), "
            "registered by URL; mutating + validating webhook called on every pod create",
            "pods": "bench.workload.pod(): 3 containers + 1 init container; an unknown schedulerName "
            "keeps them Pending, so no scheduling or KWOK work competes during the runs",
            "order": "per concurrency: no webhooks, then webhooks; pods deleted between runs",
            "pinning": "none (API server, etcd, webhook and client share the 2 cores)",
        },
        "runs": runs,
        "comparison": comparison,
        "goals": {
            f"p50_at_concurrency_{top['concurrency']}": {
                "goal": "<= 1.10x no-webhook",
                "ratio": top["p50_ms"]["ratio"],
                "met": bool(top["p50_ms"]["ratio"] is not None and top["p50_ms"]["ratio"] <= 1.10),
            },
            f"p99_at_concurrency_{top['concurrency']}": {
                "goal": "<= 1.25x no-webhook",
                "ratio": top["p99_ms"]["ratio"],
                "met": bool(top["p99_ms"]["ratio"] is not None and top["p99_ms"]["ratio"] <= 1.25),
            },
        },
        "elapsed_s": round(time.monotonic() - started, 1),
    }
    common.write_json(out, "admission_e2e", data)
    return data
