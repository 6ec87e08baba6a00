"""Scenario 3: rollout reaction, from a ConfigMap update's response to each pod template being patched.

A control plane with 2,000 Deployments, 2,000 ConfigMaps and 2,000 Secrets (bench.objects), one
``production-policy controller`` process, and a policy with no debounce, no minimum interval and
no concurrency cap (maxConcurrent 1000, its maximum). A watch on the Deployments records when each
one's pod template changes; latency = that watch event's arrival - the update's response.

- one workload: ConfigMap ``cm-N`` (referenced by ``dep-N`` only) changed, for several N in turn;
- 100 workloads: ConfigMap ``shared`` (referenced by ``dep-0`` .. ``dep-99``) changed, a few times.

Also recorded: how long the controller took to give 2,000 first-seen Deployments their baseline,
and how long one LIST of the namespace's Deployments takes (what stakater/Reloader issues per
change for each workload kind; context only, it is not a Reloader measurement).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bench import common, objects
from bench.common import KubeHttp, Process, log

NAMESPACE = "apps"


@dataclass(frozen=True)
class Scale:
    workloads: int = 2000
    fanout: int = 100
    single_samples: int = 30
    fanout_rounds: int = 3
    timeout: float = 30.0
    """Longest wait for the patches of one change."""


FULL = Scale()
TINY = Scale(workloads=12, fanout=5, single_samples=2, fanout_rounds=1)


class TemplateWatch:
    """A watch of the namespace's Deployments: when each one's pod template was changed.

    A rollout is a new pod template (not a new ``metadata.generation``: a Deployment's grows with
    its annotations too), so the watch counts any controller's rollouts the same way: ours (the
    digest annotation), Reloader's (its own annotation or env var), anyone's.
    """

    def __init__(
        self, api: KubeHttp, namespace: str, resource_version: str, templates: dict[str, str]
    ) -> None:
        self.api = api
        self.path = common.ns_path(namespace, "deployments", group="apps/v1")
        self.resource_version = resource_version
        self.templates = dict(templates)
        self.changed: dict[str, list[float]] = {}
        self.paused: set[str] = set()
        """Deployments seen with ``spec.paused`` at least once."""
        self._task: asyncio.Task[None] | None = None
        self.events = 0

    async def __aenter__(self) -> TemplateWatch:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        # The API server ends a watch after its timeout (or when it restarts its watch cache): watch
        # again from the last event seen, so a long step never stops seeing rollouts unnoticed.
        while True:
            await self._watch()
            log(f"watch of {self.path} ended after {self.events} events; watching again")

    async def _watch(self) -> None:
        params = {"watch": "1", "resourceVersion": self.resource_version, "timeoutSeconds": "3600"}
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        async with self.api.session.get(
            self.api.server + self.path, params=params, timeout=timeout
        ) as response:
            if response.status != 200:
                raise common.ApiError(response.status, await response.text())
            async for line in response.content:
                arrived = time.perf_counter()
                if not line.strip():
                    continue
                event = json.loads(line)
                self.events += 1
                obj = event.get("object", {})
                if event.get("type") == "ERROR":
                    raise common.ApiError(obj.get("code", 0), obj.get("message", "watch error"))
                if event.get("type") not in ("ADDED", "MODIFIED"):
                    continue
                self.resource_version = obj["metadata"]["resourceVersion"]
                name = obj["metadata"]["name"]
                template = objects.template_hash(obj)
                if name in self.templates and template != self.templates[name]:
                    self.changed.setdefault(name, []).append(arrived)
                self.templates[name] = template
                if obj["spec"].get("paused"):
                    self.paused.add(name)

    def check_alive(self) -> None:
        """Raise what stopped the watch, if it failed: a dead watch would look like missed rollouts."""
        assert self._task is not None
        if self._task.done():
            self._task.result()
            raise RuntimeError(f"the watch of {self.path} stopped")

    def changed_since(self, names: list[str], since: float) -> dict[str, float]:
        self.check_alive()
        found = {}
        for name in names:
            times = [t for t in self.changed.get(name, []) if t >= since]
            if times:
                found[name] = times[0]
        return found

    def rollouts_since(self, since: float) -> dict[str, int]:
        """How many times each Deployment's template was changed since ``since``."""
        self.check_alive()
        counts = {name: sum(1 for t in times if t >= since) for name, times in self.changed.items()}
        return {name: n for name, n in counts.items() if n}


async def change_and_wait(
    api: KubeHttp, watch: TemplateWatch, config_map: str, referrers: list[str], round_: int, timeout: float
) -> dict[str, Any]:
    """Change one key of ``config_map``; wait (at most ``timeout``) for every referrer's template patch."""
    sent = time.perf_counter()
    await api.merge_patch(
        common.ns_path(NAMESPACE, "configmaps", config_map),
        {"data": {"level": f"debug-{round_}-{time.time_ns()}"}},
    )
    answered = time.perf_counter()
    deadline = answered + timeout
    found: dict[str, float] = {}
    while time.perf_counter() < deadline:
        found = watch.changed_since(referrers, sent)
        if len(found) == len(referrers):
            break
        await asyncio.sleep(0.01)
    latencies = sorted(t - answered for t in found.values())
    return {
        "config_map": config_map,
        "referrers": len(referrers),
        "patched": len(found),
        "update_call_ms": round((answered - sent) * 1000, 2),
        "all_patched_ms": round(latencies[-1] * 1000, 1) if len(found) == len(referrers) else None,
        "latencies_s": latencies,
    }


async def _scenario(kubeconfig: Path, scale: Scale, log_path: Path) -> dict[str, Any]:
    result: dict[str, Any] = {}
    async with KubeHttp(kubeconfig, connections=64) as api:
        await common.create_namespace(api, NAMESPACE)
        name, spec = objects.rollout_policy("bench-rollout", [NAMESPACE])
        await common.create_policy(api, name, spec)
        result["populate_s"] = round(
            await objects.populate(api, NAMESPACE, 0, scale.workloads, scale.fanout), 1
        )
        controller = Process(
            common.operator_argv(
                "controller",
                f"--namespace={common.OPERATOR_NAMESPACE}",
                "--metrics-port=0",
                "--log-format=json",
            ),
            log_path,
            env={"KUBECONFIG": str(kubeconfig)},
        )
        with controller:
            timeout = 120 + objects.BASELINE_SECONDS_EACH * scale.workloads
            took = await objects.wait_baselined(
                api, NAMESPACE, scale.workloads, timeout=timeout, alive=controller.check_alive
            )
            result["controller_first_baselines_s"] = round(took, 1)
            log(f"controller gave {scale.workloads} Deployments their baseline in {took:.1f}s")
            await asyncio.sleep(2)  # let the baseline writes' own watch events pass
            items, version = await objects.list_deployments(api, NAMESPACE)
            list_times = []
            for _ in range(5):
                began = time.perf_counter()
                await api.get(common.ns_path(NAMESPACE, "deployments", group="apps/v1"))
                list_times.append(time.perf_counter() - began)
            result["list_all_deployments_ms"] = common.summary_ms(list_times)
            async with TemplateWatch(api, NAMESPACE, version, objects.template_hashes(items)) as watch:
                await asyncio.sleep(1)
                singles = []
                # cm-N for N beyond the fan-out: each is referenced by dep-N only.
                step = max(1, (scale.workloads - scale.fanout) // scale.single_samples)
                for sample in range(scale.single_samples):
                    index = scale.fanout + sample * step
                    singles.append(
                        await change_and_wait(
                            api, watch, f"cm-{index}", [f"dep-{index}"], sample, scale.timeout
                        )
                    )
                    await asyncio.sleep(0.3)
                fanouts = []
                for round_ in range(scale.fanout_rounds):
                    log(f"changing the ConfigMap shared by {scale.fanout} Deployments (round {round_ + 1})")
                    fanouts.append(
                        await change_and_wait(
                            api,
                            watch,
                            objects.SHARED,
                            [f"dep-{i}" for i in range(scale.fanout)],
                            round_,
                            scale.timeout,
                        )
                    )
                    await asyncio.sleep(2)
            controller.check_alive()
            result["controller_rss_kib"] = common.memory_kib(controller.pid)
    single_latencies = [t for s in singles for t in s["latencies_s"]]
    fanout_latencies = [t for f in fanouts for t in f["latencies_s"]]
    result["one_workload"] = {
        "samples": len(singles),
        "missed": sum(1 for s in singles if s["patched"] < s["referrers"]),
        "latency": common.summary_ms(single_latencies),
        "update_call_ms": common.summary_ms([s["update_call_ms"] / 1000 for s in singles]),
    }
    result["fanout"] = {
        "workloads": scale.fanout,
        "rounds": [{k: v for k, v in f.items() if k != "latencies_s"} for f in fanouts],
        "per_workload_latency": common.summary_ms(fanout_latencies),
        "all_patched_ms": [f["all_patched_ms"] for f in fanouts],
        "sorted_latencies_ms_per_round": [[round(t * 1000, 1) for t in f["latencies_s"]] for f in fanouts],
    }
    return result


def run(out: Path, scale: Scale = FULL) -> dict[str, Any]:
    started = time.monotonic()
    load_before = common.load_now()
    with common.control_plane(nodes=2) as plane, tempfile.TemporaryDirectory(prefix="pp-bench-ro-") as tmp:
        result = asyncio.run(_scenario(plane.kubeconfig, scale, Path(tmp) / "controller.log"))
    one = result["one_workload"]["latency"]
    alls = [x for x in result["fanout"]["all_patched_ms"] if x is not None]
    worst_all = max(alls) if len(alls) == len(result["fanout"]["all_patched_ms"]) and alls else None
    data = {
        "scenario": "rollout",
        "title": "Scenario 3: rollout reaction, ConfigMap update -> pod templates patched",
        "machine": common.machine(plane.binaries),
        "load_average_before": load_before,
        "load_average_after": common.load_now(),
        "setup": {
            "deployments": scale.workloads,
            "config_maps": scale.workloads + 1,
            "secrets": scale.workloads,
            "replicas": 0,
            "policy": "configRollout: debounceSeconds 0, minIntervalSeconds 0, maxConcurrent 1000 (no cap)",
            "controller": "`production-policy controller` (rollouts + audit), log format json",
            "measured": "from the ConfigMap PATCH response to the arrival of the watch event in which the "
            "Deployment's pod template changed",
        },
        **result,
        "goals": {
            "one_workload_p99_ms": {
                "goal": "<= 250 ms",
                "measured": one.get("p99_ms"),
                "met": bool(one.get("p99_ms") is not None and one["p99_ms"] <= 250),
            },
            f"all_{scale.fanout}_patched_ms": {
                "goal": "<= 2000 ms (every round)",
                "measured": worst_all,
                "met": bool(worst_all is not None and worst_all <= 2000),
            },
        },
        "elapsed_s": round(time.monotonic() - started, 1),
    }
    common.write_json(out, "rollout", data)
    return data
