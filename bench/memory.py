"""Scenario 4: the controller's memory at 2,000 and 10,000 workloads, and with 3,000 Secrets of 200 MB.

One control plane, filled step by step (bench.objects; every Deployment matched by a rollout
policy and referencing its own ConfigMap and Secret). At each step a fresh
``production-policy controller`` is started, left until it is idle (it has listed and indexed
everything and written what it had to), and its resident set (VmRSS) and peak (VmHWM) are read
from /proc, then it is stopped. Steps:

1. empty cluster (the policy only);
2. 2,000 Deployments + 2,000 ConfigMaps + 2,000 Secrets: first the controller that sees them first
   (and writes their baselines), then a restarted one (steady state: the number the goal is about);
3. + 3,000 small Secrets (16 bytes each) in a namespace of their own;
4. the same 3,000 Secrets grown to 200 MB of data in total (~66.7 kB each); then that namespace is
   deleted;
5. 10,000 Deployments, ConfigMaps and Secrets, first sight and restarted, as in step 2.

Steps 3 and 4 have the same number of objects: their difference is what the size of the data costs.
What the controller keeps per workload, by structure, is counted in this process (:mod:`bench.state`).
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

from bench import common, objects, state
from bench.common import KubeHttp, Process, log

NAMESPACE = "apps"
BULK = "bulk"


@dataclass(frozen=True)
class Scale:
    steps: tuple[int, ...] = (2000, 10000)
    secrets: int = 3000
    secret_bytes_total: int = 200_000_000
    settle_timeout: float = 240.0
    quiet_seconds: float = 4.0
    """Idle for this long (under 3% of a core) counts as done."""


FULL = Scale()
TINY = Scale(steps=(10, 20), secrets=5, secret_bytes_total=500_000, settle_timeout=60.0, quiet_seconds=1.0)


async def _measure(
    kubeconfig: Path,
    log_path: Path,
    label: str,
    objects_: dict[str, int],
    scale: Scale,
    api: KubeHttp,
    workloads: int,
) -> dict[str, Any]:
    argv = common.operator_argv(
        "controller", f"--namespace={common.OPERATOR_NAMESPACE}", "--metrics-port=0", "--log-format=json"
    )
    with Process(argv, log_path, env={"KUBECONFIG": str(kubeconfig)}) as controller:
        began = time.monotonic()
        baselines = None
        if workloads:
            # The first controller to see a workload writes its baseline, one workload at a time.
            timeout = scale.settle_timeout + objects.BASELINE_SECONDS_EACH * workloads
            baselines = await objects.wait_baselined(
                api, NAMESPACE, workloads, timeout=timeout, alive=controller.check_alive
            )
        idle_after = await common.settled(controller, scale.settle_timeout, scale.quiet_seconds)
        memory = common.memory_kib(controller.pid)
    row = {
        "step": label,
        "objects": objects_,
        "rss_mib": round(memory["VmRSS"] / 1024, 1),
        "peak_rss_mib": round(memory["VmHWM"] / 1024, 1),
        "ready_s": round(time.monotonic() - began, 1),
        "baselines_present_after_s": round(baselines, 1) if baselines is not None else None,
        "idle": idle_after is not None,
        "load_average": common.load_now(),
    }
    log(f"{label}: RSS {row['rss_mib']} MiB (peak {row['peak_rss_mib']} MiB)")
    return row


async def _scenario(kubeconfig: Path, scale: Scale, tmp: Path) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    populate: dict[str, float] = {}
    async with KubeHttp(kubeconfig, connections=64) as api:
        await common.create_namespace(api, NAMESPACE)
        name, spec = objects.rollout_policy("bench-rollout", [NAMESPACE, BULK])
        await common.create_policy(api, name, spec)
        counts = {"deployments": 0, "config_maps": 0, "secrets": 0}
        rows.append(await _measure(kubeconfig, tmp / "c0.log", "empty", dict(counts), scale, api, 0))
        made = 0
        for index, step in enumerate(scale.steps):
            populate[f"to_{step}"] = round(await objects.populate(api, NAMESPACE, made, step), 1)
            made = step
            counts = {"deployments": step, "config_maps": step, "secrets": step}
            # First sight: this controller writes the new workloads' baselines (its memory includes that).
            rows.append(
                await _measure(
                    kubeconfig,
                    tmp / f"first{step}.log",
                    f"{step} workloads, first sight",
                    dict(counts),
                    scale,
                    api,
                    step,
                )
            )
            # Steady state: a restarted controller on the same, already baselined, workloads.
            rows.append(
                await _measure(
                    kubeconfig, tmp / f"c{step}.log", f"{step} workloads", dict(counts), scale, api, step
                )
            )
            if index == 0:
                # The Secrets steps ride on the smallest workload step (their own namespace, deleted
                # after), so the larger steps stay pure workload counts and the run stays short.
                rows += await _secrets_steps(kubeconfig, scale, tmp, api, counts, made, populate)
    return {"steps": rows, "populate_s": populate}


async def _secrets_steps(
    kubeconfig: Path,
    scale: Scale,
    tmp: Path,
    api: KubeHttp,
    counts: dict[str, int],
    workloads: int,
    populate: dict[str, float],
) -> list[dict[str, Any]]:
    """3,000 small Secrets, then the same Secrets grown to 200 MB; the namespace is deleted after."""
    rows = []
    await common.create_namespace(api, BULK)
    secrets_path = common.ns_path(BULK, "secrets")
    await common.bounded_map(
        objects.CONCURRENCY,
        lambda i: api.create(secrets_path, objects.secret(f"bulk-{i}"), exist_ok=True),
        range(scale.secrets),
    )
    counts = {**counts, "secrets": counts["secrets"] + scale.secrets}
    rows.append(
        await _measure(
            kubeconfig,
            tmp / "small.log",
            f"{workloads} workloads + {scale.secrets} small Secrets",
            {**counts, "secret_data_bytes_added": 16 * scale.secrets},
            scale,
            api,
            workloads,
        )
    )
    each = scale.secret_bytes_total // scale.secrets
    began = time.monotonic()
    await common.bounded_map(
        8,
        lambda i: api.merge_patch(
            f"{secrets_path}/bulk-{i}", {"data": {"token": base64.b64encode(os.urandom(each)).decode()}}
        ),
        range(scale.secrets),
    )
    populate["grow_secrets"] = round(time.monotonic() - began, 1)
    log(f"{scale.secrets} Secrets grown to {each * scale.secrets / 1e6:.0f} MB in total")
    rows.append(
        await _measure(
            kubeconfig,
            tmp / "big.log",
            f"{workloads} workloads + {scale.secrets} Secrets of {each * scale.secrets / 1e6:.0f} MB",
            {**counts, "secret_data_bytes_added": each * scale.secrets},
            scale,
            api,
            workloads,
        )
    )
    await common.delete_namespace(api, BULK, wait=300)
    return rows


def run(out: Path, scale: Scale = FULL) -> dict[str, Any]:
    started = time.monotonic()
    load_before = common.load_now()
    with common.control_plane(nodes=1) as plane, tempfile.TemporaryDirectory(prefix="pp-bench-mem-") as tmp:
        result = asyncio.run(_scenario(plane.kubeconfig, scale, Path(tmp)))
    steps = result["steps"]
    at_max = next(r for r in steps if r["step"] == f"{scale.steps[-1]} workloads")
    small = next(r for r in steps if r["step"].endswith("small Secrets"))
    big = next(r for r in steps if r["step"].endswith(" MB"))
    data_mib = scale.secret_bytes_total / 2**20
    data = {
        "scenario": "memory",
        "title": "Scenario 4: controller memory (RSS) by number and size of objects",
        "machine": common.machine(plane.binaries),
        "load_average_before": load_before,
        "setup": {
            "controller": "`production-policy controller` (rollouts + audit), fresh process per step, "
            "measured once idle (listed, indexed, baselines written)",
            "workloads": "Deployments with replicas 0, each referencing its own ConfigMap key and Secret",
            "secret_data": f"{scale.secrets} Secrets, random data, {scale.secret_bytes_total / 1e6:.0f} MB "
            "in total (decoded)",
        },
        **result,
        "data_size_effect": {
            "secret_data_added_mib": round(data_mib, 1),
            "rss_increase_mib": round(big["rss_mib"] - small["rss_mib"], 1),
            "peak_rss_increase_mib": round(big["peak_rss_mib"] - small["peak_rss_mib"], 1),
        },
        "goals": {
            f"rss_at_{scale.steps[-1]}_workloads_mib": {
                "goal": "<= 150 MB (143 MiB)",
                "measured": at_max["rss_mib"],
                "met": at_max["rss_mib"] * 2**20 <= 150e6,
            },
            "grows_with_objects_not_data": {
                "goal": "RSS does not grow with the Secrets' data size",
                "measured": f"+{round(big['rss_mib'] - small['rss_mib'], 1)} MiB steady "
                f"(+{round(big['peak_rss_mib'] - small['peak_rss_mib'], 1)} MiB peak) for "
                f"+{round(data_mib, 1)} MiB of data",
                "met": (big["rss_mib"] - small["rss_mib"]) < 0.1 * data_mib,
            },
        },
        "state_per_workload": state.measure(scale.steps[-1]),
        "elapsed_s": round(time.monotonic() - started, 1),
    }
    common.write_json(out, "memory", data)
    return data
