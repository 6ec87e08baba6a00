"""Scenario 2: the webhook process alone, AdmissionReviews over TLS on loopback.

One ``production-policy webhook`` process, pinned to CPU 0 (``taskset -c 0``), with 10 policies
(bench.workload) loaded from a real API server; the load generator (bench.loadgen) is a separate
process pinned to CPU 1. The requests alternate between /mutate-pods (the pod as the API server
sends it: defaulted, with its service-account volume) and /validate-pods (the same pod after our
patch), as the API server does for each pod create.

Runs: fixed rates (open loop, latency from each request's due time) and flat out. Baseline in the
same run: bench.nullserver, the same aiohttp + TLS + JSON work with no decision, same pinning.
With py-spy installed, one more flat-out run is profiled and its top functions are recorded.
"""

from __future__ import annotations

import asyncio
import collections
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import common, workload
from bench.common import KubeHttp, Process, log

NAMESPACE = "shop"
WEBHOOK_CPU = "0"
LOADGEN_CPU = "1"


@dataclass(frozen=True)
class Scale:
    rates: tuple[float, ...] = (100, 500, 1000)
    duration: float = 10.0
    connections: int = 32
    profile_seconds: float = 10.0
    """0: no profile."""


FULL = Scale()
TINY = Scale(rates=(20,), duration=1.0, connections=4, profile_seconds=0)


def _loadgen(url: str, files: dict[str, Path], rate: float, scale: Scale, cafile: Path) -> dict[str, Any]:
    argv = [
        "taskset",
        "-c",
        LOADGEN_CPU,
        sys.executable,
        "-m",
        "bench.loadgen",
        f"--url={url}",
        f"--rate={rate}",
        f"--duration={scale.duration}",
        f"--connections={scale.connections}",
        f"--cafile={cafile}",
    ]
    argv += [f"--request={path}={file}" for path, file in files.items()]
    done = subprocess.run(
        argv, capture_output=True, text=True, cwd=common.REPO, timeout=scale.duration + 120, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"loadgen failed ({done.returncode}): {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


COMPONENTS = (
    # py-spy names frames "function (path/file.py:line)", paths relative to sys.path.
    ("production_policy/engine", "engine (policy decisions)"),
    ("production_policy/quantity", "engine (policy decisions)"),
    ("production_policy/api", "engine (policy decisions)"),
    ("production_policy/admission/wire.py", "JSON encode/decode"),
    ("production_policy/admission", "admission shell (ours)"),
    ("production_policy/metrics", "metrics"),
    ("prometheus_client/", "metrics"),
    ("json/", "JSON encode/decode"),
    ("(ssl.py", "TLS"),
    ("asyncio/sslproto.py", "TLS"),
    ("aiohttp/", "aiohttp (HTTP server)"),
    ("multidict/", "aiohttp (HTTP server)"),
    ("yarl/", "aiohttp (HTTP server)"),
    ("logging/", "logging"),
    ("production_policy/logs.py", "logging"),
    ("kopf/", "kopf (watching policies)"),
    ("asyncio/", "asyncio event loop"),
    ("selectors.py", "asyncio event loop"),
    ("socket.py", "asyncio event loop"),
)


def _component(frames: list[str]) -> str:
    """What a sample was busy with: the innermost frame that belongs to a known component."""
    for frame in reversed(frames):
        for marker, name in COMPONENTS:
            if marker in frame:
                return name
    return "other"


def _short(frame: str) -> str:
    # "name (path/to/file.py:12)" -> "name (file.py)"
    name, _, where = frame.partition(" (")
    return f"{name} ({where.split(':')[0].split('/')[-1]})" if where else frame


def _profile_summary(raw: Path, top: int = 15) -> dict[str, Any]:
    """Where the webhook spends its time, from py-spy's collapsed stacks: by component, by function."""
    own: collections.Counter[str] = collections.Counter()
    ours: collections.Counter[str] = collections.Counter()
    components: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        own[_short(frames[-1])] += count
        components[_component(frames)] += count
        for frame in {_short(f) for f in frames if "production_policy/" in f}:
            ours[frame] += count

    def share(counter: collections.Counter[str], n: int) -> list[dict[str, Any]]:
        return [
            {"function": name, "percent": round(100 * c / total, 1)} for name, c in counter.most_common(n)
        ]

    return {
        "samples": total,
        "by_component": {name: round(100 * c / total, 1) for name, c in components.most_common()},
        "self_time_top": share(own, top),
        "production_policy_inclusive_top": share(ours, top),
    }


def write_collapsed(raw: Path, target: Path) -> None:
    """py-spy's collapsed stacks without line numbers (far fewer distinct stacks), for flamegraph tools."""
    merged: collections.Counter[str] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if stack and count_text.isdigit():
            frames = [re.sub(r":-?\d+\)$", ")", frame) for frame in stack.split(";")]
            merged[";".join(frames)] += int(count_text)
    target.write_text("".join(f"{stack} {count}\n" for stack, count in merged.most_common()))


async def _prepare(kubeconfig: Path) -> dict[str, Any]:
    async with KubeHttp(kubeconfig) as api:
        await common.create_namespace(api, NAMESPACE, workload.NAMESPACE_LABELS)
        for name, spec in workload.policies(NAMESPACE).items():
            await common.create_policy(api, name, spec)
        # The pod exactly as the API server hands it to a mutating webhook: defaulted, with its
        # service-account token volume. (No webhook is registered in this scenario.)
        defaulted: dict[str, Any] = await api.request(
            "POST",
            common.ns_path(NAMESPACE, "pods"),
            workload.pod(name="cart-5d8f9c7b6-x2x7q"),
            params={"dryRun": "All"},
        )
    for field in ("uid", "resourceVersion", "creationTimestamp", "managedFields"):
        defaulted["metadata"].pop(field, None)
    defaulted.pop("status", None)
    return defaulted


def run(out: Path, scale: Scale = FULL) -> dict[str, Any]:
    from production_policy import certs

    started = time.monotonic()
    out.mkdir(parents=True, exist_ok=True)
    load_before = common.load_now()
    with common.control_plane(nodes=1) as plane, tempfile.TemporaryDirectory(prefix="pp-bench-wh-") as tmp_:
        tmp = Path(tmp_)
        pod = asyncio.run(_prepare(plane.kubeconfig))
        specs = workload.policies(NAMESPACE)
        patched = workload.mutated(pod, NAMESPACE, specs)
        files = {}
        for path, obj in (("/mutate-pods", pod), ("/validate-pods", patched)):
            file = tmp / f"{path.strip('/')}.json"
            file.write_text(json.dumps(workload.admission_review(str(uuid.uuid4()), NAMESPACE, obj)))
            files[path] = file
        review_bytes = {path: file.stat().st_size for path, file in files.items()}
        ca = certs.make_ca("pp-bench-ca")
        (tmp / "ca.crt").write_bytes(ca.cert_pem)
        certs.issue_serving(ca, ("127.0.0.1", "localhost")).write(tmp / "tls.crt", tmp / "tls.key")

        # Baseline: the framework alone.
        null_port = common.free_port()
        null = Process(
            [
                sys.executable,
                "-m",
                "bench.nullserver",
                str(null_port),
                str(tmp / "tls.crt"),
                str(tmp / "tls.key"),
            ],
            tmp / "null.log",
            cpus=WEBHOOK_CPU,
        )
        with null:
            null.wait_https(f"https://127.0.0.1:{null_port}/readyz", 30)
            baseline_runs = []
            for rate in (*scale.rates, 0.0):
                log(f"baseline: null aiohttp server at {rate or 'flat out'}/s for {scale.duration:g}s")
                baseline_runs.append(
                    _loadgen(f"https://127.0.0.1:{null_port}", files, rate, scale, tmp / "ca.crt")
                )
            baseline = baseline_runs[-1]

        port = common.free_port()
        argv = common.webhook_argv(port, tmp / "tls.crt", tmp / "tls.key")
        webhook = Process(
            argv, tmp / "webhook.log", env={"KUBECONFIG": str(plane.kubeconfig)}, cpus=WEBHOOK_CPU
        )
        runs: list[dict[str, Any]] = []
        profile: dict[str, Any] | None = None
        with webhook:
            webhook.wait_https(f"https://127.0.0.1:{port}/readyz", 60)
            url = f"https://127.0.0.1:{port}"
            # Warm up (imports, caches), then measure.
            _loadgen(
                url,
                files,
                0,
                Scale(duration=min(2.0, scale.duration), connections=scale.connections),
                tmp / "ca.crt",
            )
            for rate in (*scale.rates, 0.0):
                log(f"webhook at {rate or 'flat out'}/s for {scale.duration:g}s")
                cpu_before = common.cpu_seconds(webhook.pid)
                result = _loadgen(url, files, rate, scale, tmp / "ca.crt")
                result["webhook_cpu_seconds"] = round(common.cpu_seconds(webhook.pid) - cpu_before, 2)
                result["load_average_after"] = common.load_now()
                runs.append(result)
            rss = common.memory_kib(webhook.pid)
            pyspy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
            if scale.profile_seconds and Path(pyspy).exists():
                log(f"profiling a flat-out run with py-spy for {scale.profile_seconds:g}s")
                raw = tmp / "profile.txt"
                spy = subprocess.Popen(
                    [
                        pyspy,
                        "record",
                        "--nonblocking",
                        "--format",
                        "raw",
                        "--rate",
                        "200",
                        "-d",
                        str(int(scale.profile_seconds)),
                        "-o",
                        str(raw),
                        "-p",
                        str(webhook.pid),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                _loadgen(url, files, 0, scale, tmp / "ca.crt")
                spy.wait(timeout=scale.profile_seconds + 60)
                if raw.exists():
                    profile = _profile_summary(raw)
                    write_collapsed(raw, out / "webhook-profile.collapsed.txt")
                    profile["collapsed_stacks"] = "webhook-profile.collapsed.txt (flamegraph.pl / speedscope)"
            webhook_log_lines = len(webhook.log().splitlines())

    flat = runs[-1]
    at_500 = next((r for r in runs if r["rate"] == 500), None)
    data = {
        "scenario": "webhook",
        "title": "Scenario 2: one webhook process, AdmissionReviews over TLS on loopback",
        "machine": common.machine(plane.binaries),
        "load_average_before": load_before,
        "setup": {
            "policies": len(specs),
            "policies_matching_the_pod": 5,
            "pod": "app + proxy + log shipper + init container, as defaulted by kube-apiserver",
            "review_bytes": review_bytes,
            "mix": "requests alternate /mutate-pods and /validate-pods",
            "pinning": f"webhook and null server: taskset -c {WEBHOOK_CPU}; load generator: taskset -c "
            f"{LOADGEN_CPU}; control plane unpinned (idle during the runs)",
            "connections": scale.connections,
            "duration_s_per_run": scale.duration,
            "webhook_log": "INFO, json (as the Helm chart): one line per mutated pod",
            "webhook_log_lines": webhook_log_lines,
        },
        "baseline_null_server_flat_out": baseline,
        "baseline_null_server_runs": baseline_runs,
        "runs": runs,
        "webhook_rss_kib": rss,
        "profile_flat_out": profile,
        "goals": {
            "throughput_per_s": {
                "goal": ">= 1500 on one core",
                "measured": flat["throughput_per_s"],
                "met": flat["throughput_per_s"] >= 1500,
                "ratio_to_null_server": common.ratio(flat["throughput_per_s"], baseline["throughput_per_s"]),
            },
            "p99_ms_at_500_per_s": {
                "goal": "<= 5 ms",
                "measured": at_500["latency"].get("p99_ms") if at_500 else None,
                "null_server": next(
                    (r["latency"].get("p99_ms") for r in baseline_runs if r["rate"] == 500), None
                ),
                "met": bool(at_500 and at_500["latency"].get("p99_ms", 1e9) <= 5),
            },
        },
        "elapsed_s": round(time.monotonic() - started, 1),
    }
    common.write_json(out, "webhook", data)
    return data
