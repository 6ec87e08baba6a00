"""Scenario 6: what the probe watch costs the controller, per 1,000 pods with injected probes.

One local control plane (KWOK nodes: the pods are "Running" and their statuses fake — fine for a
cost, which is all this measures; what the watch decides is tested on kind). Pods are created with
the ``productionpolicy.dev/injected`` annotation and the probes it names, as the webhook leaves
them. At each step (0, then each count of pods) two fresh ``production-policy controller``
processes are measured in turn, with the probe watch and without (``--no-probe-watch``), each:

1. started and left until idle: CPU seconds used, resident set (VmRSS) once idle;
2. then one kubelet-style ``Unhealthy`` Event per pod is created (a readiness probe failing once),
   and again it is left until idle: the CPU those Events cost, and the RSS after.

Without the probe watch the audit still watches the same pods (kopf runs one stream per resource),
so the difference between the two is the probe watch's own cost: its pod facts and reports, its
two Event watches, its ticks.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import common
from bench.common import KubeHttp, Process, log

NAMESPACE = "probed"
INJECTED = "productionpolicy.dev/injected"
CONCURRENCY = 32


@dataclass(frozen=True)
class Scale:
    steps: tuple[int, ...] = (1000, 3000)
    settle_timeout: float = 240.0
    quiet_seconds: float = 5.0
    """Idle for this long (under 3% of a core) counts as done: longer than nothing, shorter than a tick."""


FULL = Scale()
TINY = Scale(steps=(10, 20), settle_timeout=60.0, quiet_seconds=1.0)


def pod(index: int) -> dict[str, Any]:
    """A pod as the webhook leaves it: an injected readiness and liveness probe, recorded."""
    probe = {"tcpSocket": {"port": 8080}, "periodSeconds": 10}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"probed-{index}",
            "labels": {"app": "probed"},
            "annotations": {INJECTED: "app:readiness,app:liveness"},
        },
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "image": "registry.example/app:v1",
                    "ports": [{"containerPort": 8080}],
                    "readinessProbe": probe,
                    "livenessProbe": probe,
                }
            ]
        },
    }


def unhealthy(body: dict[str, Any], serial: int) -> dict[str, Any]:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    metadata = body["metadata"]
    return {
        "metadata": {"name": f"{metadata['name']}.{serial}"},
        "involvedObject": {
            "apiVersion": "v1",
            "kind": "Pod",
            "name": metadata["name"],
            "namespace": NAMESPACE,
            "uid": metadata["uid"],
            "fieldPath": "spec.containers{app}",
        },
        "reason": "Unhealthy",
        "message": "Readiness probe failed: dial tcp 10.244.0.9:8080: connect: connection refused",
        "type": "Warning",
        "count": 1,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "source": {"component": "kubelet"},
    }


def _kept(port: int) -> float | None:
    """How many pods the controller's probe watch keeps (its index gauge); None without the watch."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith('production_policy_index_entries{index="probed_pods"}'):
                return float(line.split()[-1])
    return None


async def _measure(
    kubeconfig: Path,
    tmp: Path,
    api: KubeHttp,
    pods: list[dict[str, Any]],
    watch: bool,
    scale: Scale,
    serial: int,
) -> dict[str, Any]:
    port = common.free_port()
    argv = common.operator_argv(
        "controller",
        f"--namespace={common.OPERATOR_NAMESPACE}",
        f"--metrics-port={port}",
        "--log-format=json",
        "--no-leader-election",
        *([] if watch else ["--no-probe-watch"]),
    )
    label = f"{len(pods)} pods, probe watch {'on' if watch else 'off'}"
    with Process(argv, tmp / f"{label}.log", env={"KUBECONFIG": str(kubeconfig)}) as controller:
        started = await common.settled(controller, scale.settle_timeout, scale.quiet_seconds)
        cpu_start, memory = common.cpu_seconds(controller.pid), common.memory_kib(controller.pid)
        kept = _kept(port)
        began = time.monotonic()
        await common.bounded_map(
            CONCURRENCY,
            lambda body: api.create(common.ns_path(NAMESPACE, "events"), unhealthy(body, serial)),
            pods,
        )
        created_s = time.monotonic() - began
        after_events = await common.settled(controller, scale.settle_timeout, scale.quiet_seconds)
        cpu_events = common.cpu_seconds(controller.pid) - cpu_start
        memory_after = common.memory_kib(controller.pid)
    row = {
        "step": label,
        "pods": len(pods),
        "probe_watch": watch,
        "pods_kept": kept,
        "startup_cpu_s": round(cpu_start, 2),
        "rss_mib": round(memory["VmRSS"] / 1024, 1),
        "events_created": len(pods),
        "events_created_in_s": round(created_s, 1),
        "events_cpu_s": round(cpu_events, 2),
        "rss_after_events_mib": round(memory_after["VmRSS"] / 1024, 1),
        "idle": started is not None and after_events is not None,
        "load_average": common.load_now(),
    }
    log(
        f"{label}: startup {row['startup_cpu_s']} CPU s, RSS {row['rss_mib']} MiB; {len(pods)} Events "
        f"{row['events_cpu_s']} CPU s, RSS {row['rss_after_events_mib']} MiB (kept {kept})"
    )
    return row


async def _scenario(kubeconfig: Path, scale: Scale, tmp: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    async with KubeHttp(kubeconfig, connections=64) as api:
        await common.create_namespace(api, NAMESPACE)
        path = common.ns_path(NAMESPACE, "pods")
        pods: list[dict[str, Any]] = []
        serial = 0
        for step in (0, *scale.steps):
            began = time.monotonic()
            pods += await common.bounded_map(
                CONCURRENCY, lambda i: api.create(path, pod(i)), range(len(pods), step)
            )
            log(f"{step} pods created in {time.monotonic() - began:.0f}s")
            for watch in (True, False):  # with the watch first: it then lists none of this step's Events
                serial += 1
                rows.append(await _measure(kubeconfig, tmp, api, pods, watch, scale, serial))
    return rows


def state_kib_per_1000(count: int = 1000) -> float:
    """What the probe watch's own state keeps per 1,000 pods, counted by tracemalloc: each pod (as
    :func:`pod` makes it, with a Running and Ready status) and one kubelet report each are made,
    fed and dropped, as kopf and the Event threads drop theirs, so only what the watch keeps counts.
    The process's RSS moves by more than this between two runs, so it is counted here, exactly."""
    import tracemalloc

    from production_policy.engine import probewatch

    def one(index: int) -> tuple[dict[str, Any], dict[str, Any]]:
        body = pod(index)
        body["metadata"].update(
            namespace=NAMESPACE, uid=f"uid-{index}", creationTimestamp="2026-12-02T00:00:00Z"
        )
        running = {"running": {"startedAt": "2026-12-02T00:00:01Z"}}
        body["status"] = {
            "startTime": "2026-12-02T00:00:00Z",
            "containerStatuses": [
                {"name": "app", "ready": True, "started": True, "restartCount": 0, "state": running}
            ],
        }
        return body, {**unhealthy(body, 1), "lastTimestamp": "2026-12-02T00:01:00Z"}

    watch = probewatch.ProbeWatch()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for index in range(count):
        body, event = one(index)
        facts, report = probewatch.pod_facts(body), probewatch.kubelet_report(event)
        assert facts is not None and report is not None
        watch.pod(facts, 0.0)
        watch.report(report)
        del body, event, facts, report
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    assert len(watch) == count
    return round(grown / 1024 * 1000 / count, 1)


def _per_thousand(rows: list[dict[str, Any]], key: str) -> dict[str, float | None]:
    """The probe watch's share of ``key`` (on minus off) at each step, and its growth per 1,000 pods
    from the empty step to each other."""
    by = {(r["pods"], r["probe_watch"]): r[key] for r in rows}
    added = {pods: by[(pods, True)] - by[(pods, False)] for pods in sorted({r["pods"] for r in rows})}
    result: dict[str, float | None] = {
        f"added_at_{pods}_pods": round(value, 2) for pods, value in added.items()
    }
    for pods, value in added.items():
        if pods:
            result[f"per_1000_pods_to_{pods}"] = round((value - added[0]) * 1000 / pods, 2)
    return result


def run(out: Path, scale: Scale = FULL) -> dict[str, Any]:
    started = time.monotonic()
    load_before = common.load_now()
    with common.control_plane(nodes=1) as plane, tempfile.TemporaryDirectory(prefix="pp-bench-probe-") as tmp:
        rows = asyncio.run(_scenario(plane.kubeconfig, scale, Path(tmp)))
    data = {
        "scenario": "probewatch",
        "title": "Scenario 6: the probe watch's cost in the controller, by pods with injected probes",
        "machine": common.machine(plane.binaries),
        "load_average_before": load_before,
        "setup": {
            "controller": "`production-policy controller --no-leader-election`, a fresh process per row, "
            "with the probe watch and with --no-probe-watch",
            "pods": "bare pods on KWOK (fake statuses, Running and Ready) with an injected readiness and "
            "liveness probe recorded in the annotation",
            "events": "one kubelet-style Unhealthy Event per pod, created once the controller is idle",
        },
        "rows": rows,
        "rss_mib": _per_thousand(rows, "rss_after_events_mib"),
        "startup_cpu_s": _per_thousand(rows, "startup_cpu_s"),
        "events_cpu_s": _per_thousand(rows, "events_cpu_s"),
        "state_kib_per_1000_pods": state_kib_per_1000(),
        "elapsed_s": round(time.monotonic() - started, 1),
    }
    common.write_json(out, "probewatch", data)
    log(
        json.dumps(
            {k: data[k] for k in ("rss_mib", "startup_cpu_s", "events_cpu_s", "state_kib_per_1000_pods")}
        )
    )
    return data
