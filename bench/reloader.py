"""Scenario 5: stakater/Reloader and our controller side by side, on the same control plane and objects.

Reloader is not built here: give the bench a binary (``make bench SCENARIOS=reloader
RELOADER_BIN=/path/to/reloader``; results record its version and commit, read from the meta-info
ConfigMap the binary itself publishes). Without one the scenario says so and exits cleanly.

One control plane (API server audit log on, so the requests of the controller under test can be
told from everyone else's by User-Agent), the objects of scenario 3 (``dep-N`` references ``cm-N``
key ``level`` and Secret ``sec-N``; ``dep-0`` .. ``dep-99`` also the ConfigMap ``shared``), plus a
StatefulSet and a DaemonSet. Each controller runs **alone in turn**: ours, then Reloader
(``--auto-reload-all --reload-strategy=annotations``: every referencing workload is reloaded, and
its annotation keeps GitOps diffs out of the containers). A rollout is a new pod template of the
workload, whoever wrote it. Reloader's own load-test scenarios are the checklist:

- reaction: one workload (S1's single change), fan-out of 100 (S2), a burst of 50 changes at once
  (S1/S7), a Secret change (S10), a StatefulSet and a DaemonSet (S9);
- spurious rollouts: a key no workload references, metadata-only changes (S4), a ConfigMap deleted
  and recreated with the same data;
- changes made while the controller was stopped (S6);
- API requests per change (S7), from the audit log;
- memory (RSS) idle and busy at 2,000 and 10,000 workloads (S3), and with 2,000 more Secrets of 16 B,
  then of 64 KiB (S8's large objects);
- workload churn (S5), in namespace ``churn``: each round changes the ConfigMap of one long-lived
  Deployment, creates a Deployment on that ConfigMap just after (its pods start with the new data:
  nothing to roll) and deletes the one created two rounds before. Counted: long-lived workloads
  not rolled, rolled more than once, and rollouts of the workloads created after the change;
- pause (S12), in namespace ``pause``: a burst of changes to one ConfigMap within a few seconds,
  Reloader with its ``pause-period`` annotation on the Deployment (it pauses the Deployment, writes
  the template at every change, and resumes it when an in-memory timer fires), ours with a
  debounce of the same length (it never pauses). Counted: new ReplicaSets (what really rolls),
  pod-template writes, whether the Deployment was paused on the way and is left paused. Also a
  Deployment its user paused (changed while paused, then resumed by the user), and a burst cut by
  a restart of the controller (Reloader's timer is lost with the process: its issue #1016).

Not covered: S13 (init containers, projected volumes: unit-tested in the engine).

Small mode, to try a change end to end: ``make bench SCENARIOS=reloader RELOADER_BIN=...
BENCH_ARGS="--tiny --out DIR"`` (TINY: 40 and 60 workloads, a few minutes with both peers).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import socket
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench import common, objects
from bench.common import KubeHttp, Process, log
from bench.rollout import NAMESPACE, TemplateWatch, change_and_wait

BULK = "bulk"
CHURN = "churn"
PAUSE = "pause"
PAUSE_PERIOD = "deployment.reloader.stakater.com/pause-period"
"""Reloader's annotation: pause the Deployment for this long after a change (Deployments only)."""
PAUSE_BURST, PAUSE_USER, PAUSE_RESTART = "pause-burst", "pause-user", "pause-restart"
RELOADER_FLAGS = ("--auto-reload-all", "--reload-strategy=annotations", "--log-format=json")
RELOADER_PORT = 9090
"""Reloader serves /metrics and /live on :9090, hard-coded; it exits if the port is taken."""
OTHERS = ("kube-controller-manager/", "kube-scheduler/", "kwok/", "kube-apiserver/", common.USER_AGENT)
"""User-Agents that are not the controller under test."""
AUDIT_POLICY = """apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived", "ResponseStarted"]
rules:
  - level: Metadata
"""


@dataclass(frozen=True)
class Scale:
    steps: tuple[int, ...] = (2000, 10000)
    fanout: int = 100
    singles: int = 20
    fanout_rounds: int = 2
    burst: int = 50
    spurious_each: int = 10
    secret_changes: int = 5
    restart_changes: int = 5
    bulk_secrets: int = 2000
    big_secret_bytes: int = 65536
    timeout: float = 90.0
    """Longest wait for the rollouts of one change (Reloader LISTs every workload kind per change)."""
    quiet_window: float = 8.0
    """After changes that must roll nothing, watch this long for rollouts anyway."""
    settle_timeout: float = 300.0
    quiet_seconds: float = 4.0
    churn_rounds: int = 20
    """S5: rounds of churn, each a ConfigMap changed, a Deployment created on it, one deleted."""
    churn_interval: float = 0.5
    pause_changes: int = 10
    """S12: changes to one ConfigMap, ``pause_interval`` apart (well within ``pause_seconds``)."""
    pause_interval: float = 0.5
    pause_seconds: int = 10
    """Reloader's pause-period and our debounce: the same length."""


FULL = Scale()
TINY = Scale(
    steps=(40, 60),
    fanout=5,
    singles=3,
    fanout_rounds=1,
    burst=5,
    spurious_each=2,
    secret_changes=2,
    restart_changes=2,
    bulk_secrets=20,
    big_secret_bytes=4096,
    timeout=60.0,
    quiet_window=4.0,
    settle_timeout=120.0,
    quiet_seconds=1.0,
    churn_rounds=4,
    pause_changes=3,
    pause_seconds=5,
)


@dataclass(frozen=True)
class Indexes:
    """Which ``dep-N`` each part of a run changes: disjoint, so every rollout has one cause."""

    singles: list[int]
    burst: list[int]
    unreferenced: list[int]
    metadata: list[int]
    recreated: list[int]
    secrets: list[int]
    restart: list[int]
    handover: list[int]

    @classmethod
    def of(cls, scale: Scale) -> Indexes:
        sizes = [
            scale.singles,
            scale.burst,
            scale.spurious_each,
            scale.spurious_each,
            scale.spurious_each,
            scale.secret_changes,
            scale.restart_changes,
            1,
        ]
        start, parts = scale.fanout, []
        for size in sizes:
            parts.append(list(range(start, start + size)))
            start += size
        if start > scale.steps[0]:
            raise ValueError(f"scale needs {start} workloads, its first step has {scale.steps[0]}")
        return cls(*parts)


@dataclass(frozen=True)
class Peer:
    name: str
    argv: list[str]
    env: dict[str, str]
    writes_baselines: bool
    """Ours gives every first-seen workload a baseline (a metadata annotation, not a rollout)."""


def _peers(binary: Path | None) -> list[Peer]:
    ours = Peer(
        "ours",
        common.operator_argv(
            "controller", f"--namespace={common.OPERATOR_NAMESPACE}", "--metrics-port=0", "--log-format=json"
        ),
        {},
        True,
    )
    peers = [ours]
    if binary is not None:
        # RELOADER_NAMESPACE: it publishes its build info there (read back for the results).
        env = {"RELOADER_NAMESPACE": common.OPERATOR_NAMESPACE}
        peers.append(Peer("reloader", [str(binary), *RELOADER_FLAGS], env, False))
    return peers


# ---- measuring ------------------------------------------------------------------------------------


class AuditLog:
    """The API server's audit log: requests made by the controller under test since a mark."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def mark(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0

    def since(self, mark: int) -> Counter[str]:
        """``verb resource`` -> count, for every request not made by the bench or the control plane."""
        counts: Counter[str] = Counter()
        with self.path.open("rb") as f:
            f.seek(mark)
            for line in f:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue  # the line being written right now
                agent = event.get("userAgent") or ""
                if agent.startswith(OTHERS) or event.get("stage") != "ResponseComplete":
                    continue
                ref = event.get("objectRef") or {}
                counts[f"{event.get('verb')} {ref.get('resource') or event.get('requestURI', '?')}"] += 1
        return counts


class RssSampler:
    """The highest VmRSS of a process while the block runs, sampled four times a second."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.max_kib = 0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(OSError, KeyError):
                self.max_kib = max(self.max_kib, common.memory_kib(self.pid)["VmRSS"])
            await asyncio.sleep(0.25)

    async def __aenter__(self) -> RssSampler:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    @property
    def max_mib(self) -> float:
        return round(self.max_kib / 1024, 1)


def _rss_mib(pid: int) -> float:
    return round(common.memory_kib(pid)["VmRSS"] / 1024, 1)


async def _start(peer: Peer, kubeconfig: Path, log_path: Path, api: KubeHttp, scale: Scale, n: int) -> Any:
    """Start a peer and wait until it is idle; returns (process, seconds to idle, idle?)."""
    if peer.name == "reloader":
        _port_free_or_fail(RELOADER_PORT)
    process = Process(peer.argv, log_path, env={"KUBECONFIG": str(kubeconfig), **peer.env}).start()
    began = time.monotonic()
    try:
        if peer.writes_baselines:
            await objects.wait_baselined(
                api,
                NAMESPACE,
                n,
                timeout=scale.settle_timeout + objects.BASELINE_SECONDS_EACH * n,
                alive=process.check_alive,
            )
        idle = await common.settled(process, scale.settle_timeout, scale.quiet_seconds)
    except BaseException:
        process.stop()
        raise
    return process, round(time.monotonic() - began, 1), idle is not None


def _port_free_or_fail(port: int) -> None:
    with socket.socket() as probe:
        try:
            probe.bind(("0.0.0.0", port))
        except OSError as exc:
            raise RuntimeError(
                f"port {port} is in use on this machine; Reloader hard-codes its metrics port and would exit"
            ) from exc


async def _templates(api: KubeHttp) -> tuple[dict[str, str], str]:
    items, version = await objects.list_deployments(api, NAMESPACE)
    return objects.template_hashes(items), version


async def _wait_rolled(watch: TemplateWatch, names: list[str], since: float, timeout: float) -> float | None:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if len(watch.changed_since(names, since)) == len(names):
            return max(watch.changed_since(names, since).values()) - since
        await asyncio.sleep(0.02)
    return None


def _cm(name: str, namespace: str = NAMESPACE) -> str:
    return common.ns_path(namespace, "configmaps", name)


def _deployments(namespace: str, name: str = "") -> str:
    return common.ns_path(namespace, "deployments", name, group="apps/v1")


# ---- the parts of a run ---------------------------------------------------------------------------


async def _reaction(
    api: KubeHttp, watch: TemplateWatch, audit: AuditLog, scale: Scale, ix: Indexes, rounds: int
) -> dict[str, Any]:
    mark = audit.mark()
    singles = []
    for k, i in enumerate(ix.singles):
        singles.append(await change_and_wait(api, watch, f"cm-{i}", [f"dep-{i}"], k, scale.timeout))
        await asyncio.sleep(0.3)
    await asyncio.sleep(1)  # the Events of the last change
    requests = audit.since(mark)
    fanouts = []
    for r in range(rounds):
        referrers = [f"dep-{i}" for i in range(scale.fanout)]
        fanouts.append(await change_and_wait(api, watch, objects.SHARED, referrers, 1000 + r, scale.timeout))
        await asyncio.sleep(2)
    latencies = [t for s in singles for t in s["latencies_s"]]
    return {
        "one_workload": {
            "samples": len(singles),
            "missed": sum(1 for s in singles if s["patched"] < 1),
            "latency": common.summary_ms(latencies),
        },
        "api_requests_per_change": {
            "total": round(sum(requests.values()) / max(1, len(singles)), 2),
            "by_verb_resource": {k: round(v / max(1, len(singles)), 2) for k, v in requests.most_common()},
        },
        "fanout": {
            "workloads": scale.fanout,
            "all_patched_ms": [f["all_patched_ms"] for f in fanouts],
            "patched": [f["patched"] for f in fanouts],
            "per_workload_latency": common.summary_ms([t for f in fanouts for t in f["latencies_s"]]),
        },
    }


async def _correctness(api: KubeHttp, watch: TemplateWatch, scale: Scale, ix: Indexes) -> dict[str, Any]:
    result: dict[str, Any] = {}
    # S1/S7: a burst, every change at once.
    sent = time.perf_counter()
    await asyncio.gather(
        *(api.merge_patch(_cm(f"cm-{i}"), {"data": {"level": f"burst-{time.time_ns()}"}}) for i in ix.burst)
    )
    took = await _wait_rolled(watch, [f"dep-{i}" for i in ix.burst], sent, scale.timeout)
    result["burst"] = {
        "changes": len(ix.burst),
        "all_patched_ms": None if took is None else round(took * 1000, 1),
        "patched": len(watch.changed_since([f"dep-{i}" for i in ix.burst], sent)),
    }
    # S10: a Secret's data.
    sent = time.perf_counter()
    for i in ix.secrets:
        token = base64.b64encode(os.urandom(16)).decode()
        await api.merge_patch(common.ns_path(NAMESPACE, "secrets", f"sec-{i}"), {"data": {"token": token}})
    took = await _wait_rolled(watch, [f"dep-{i}" for i in ix.secrets], sent, scale.timeout)
    result["secret_change"] = {
        "changes": len(ix.secrets),
        "patched": len(watch.changed_since([f"dep-{i}" for i in ix.secrets], sent)),
        "all_patched_ms": None if took is None else round(took * 1000, 1),
    }
    # S9: the other workload kinds (their pod template, read back).
    result["other_kinds"] = await _other_kinds(api, scale)
    # Changes that must roll nothing.
    spurious: dict[str, Any] = {}
    for case, indexes in (
        ("unreferenced_key", ix.unreferenced),
        ("metadata_only", ix.metadata),
        ("delete_and_recreate_same_data", ix.recreated),
    ):
        sent = time.perf_counter()
        for i in indexes:
            await _no_op_change(api, case, f"cm-{i}")
        await asyncio.sleep(scale.quiet_window)
        rolled = watch.rollouts_since(sent)
        spurious[case] = {"changes": len(indexes), "rollouts": sum(rolled.values())}
    result["spurious"] = spurious
    return result


async def _no_op_change(api: KubeHttp, case: str, name: str) -> None:
    if case == "unreferenced_key":
        await api.merge_patch(_cm(name), {"data": {"other": f"changed-{time.time_ns()}"}})
    elif case == "metadata_only":
        await api.merge_patch(_cm(name), {"metadata": {"labels": {"touched": str(time.time_ns())}}})
    else:
        body = await api.get(_cm(name))
        await api.delete(_cm(name))
        await api.create(
            common.ns_path(NAMESPACE, "configmaps"), {"metadata": {"name": name}, "data": body.get("data")}
        )


OTHER_KINDS = {"StatefulSet": "statefulsets", "DaemonSet": "daemonsets"}


def _workload(kind: str, name: str, config_map: str, annotations: dict[str, str] | None = None) -> Any:
    """A workload (replicas 0) whose one container reads key ``level`` of ``config_map``."""
    template = objects.deployment(0, False)["spec"]["template"]
    template["metadata"]["labels"] = {"app": name}
    container = template["spec"]["containers"][0]
    container["env"][0]["valueFrom"]["configMapKeyRef"]["name"] = config_map
    template["spec"]["volumes"] = []
    container["volumeMounts"] = []
    spec: dict[str, Any] = {"selector": {"matchLabels": {"app": name}}, "template": template}
    if kind == "StatefulSet":
        spec |= {"replicas": 0, "serviceName": name}
    elif kind == "Deployment":
        spec |= {"replicas": 0}
    metadata: dict[str, Any] = {"name": name} | ({"annotations": annotations} if annotations else {})
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": metadata, "spec": spec}


async def _make(api: KubeHttp, namespace: str, kind: str, name: str, **annotations: str) -> None:
    """A workload and its own ConfigMap ``cm-<name>``."""
    await api.create(common.ns_path(namespace, "configmaps"), objects.config_map(f"cm-{name}"), exist_ok=True)
    plural = f"{kind.lower()}s"
    body = _workload(kind, name, f"cm-{name}", annotations)
    await api.create(common.ns_path(namespace, plural, group="apps/v1"), body, exist_ok=True)


async def _make_other_kinds(api: KubeHttp) -> None:
    for kind in OTHER_KINDS:
        await _make(api, NAMESPACE, kind, f"{kind.lower()}-0")


async def _make_churn_and_pause(api: KubeHttp, scale: Scale) -> None:
    """The namespaces of S5 and S12, each with a policy of its own for ours."""
    for namespace, debounce in ((CHURN, 0), (PAUSE, scale.pause_seconds)):
        await common.create_namespace(api, namespace)
        name, spec = objects.rollout_policy(f"bench-{namespace}", [namespace])
        spec["configRollout"]["debounceSeconds"] = debounce
        await common.create_policy(api, name, spec)
    for i in range(scale.churn_rounds):
        await _make(api, CHURN, "Deployment", f"stay-{i}")
    for name in (PAUSE_BURST, PAUSE_RESTART):
        await _make(api, PAUSE, "Deployment", name, **{PAUSE_PERIOD: f"{scale.pause_seconds}s"})
    await _make(api, PAUSE, "Deployment", PAUSE_USER)


async def _other_kinds(api: KubeHttp, scale: Scale) -> dict[str, Any]:
    found = {}
    for kind, plural in OTHER_KINDS.items():
        name = f"{kind.lower()}-0"
        path = common.ns_path(NAMESPACE, plural, name, group="apps/v1")
        before = objects.template_hash(await api.get(path))
        sent = time.perf_counter()
        await api.merge_patch(_cm(f"cm-{name}"), {"data": {"level": f"kind-{time.time_ns()}"}})
        rolled_ms = None
        while time.perf_counter() - sent < scale.timeout:
            if objects.template_hash(await api.get(path)) != before:
                rolled_ms = round((time.perf_counter() - sent) * 1000)
                break
            await asyncio.sleep(0.1)
        found[kind] = {"rolled": rolled_ms is not None, "within_ms": rolled_ms}
    return found


async def _restart(
    peer: Peer,
    kubeconfig: Path,
    log_path: Path,
    api: KubeHttp,
    watch: TemplateWatch,
    scale: Scale,
    ix: Indexes,
    n: int,
    cut: Counter[str],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """S6: changes made while the controller is stopped; then it starts again.

    Also the end of a pause cut by the stop (``cut``: the ReplicaSets before it, see :func:`_pause`):
    what the restarted controller does with it. Returns (the restart, the cut pause).
    """
    sent = time.perf_counter()
    for i in ix.restart:
        await api.merge_patch(_cm(f"cm-{i}"), {"data": {"level": f"offline-{time.time_ns()}"}})
    process, ready_s, _ = await _start(peer, kubeconfig, log_path, api, scale, n)
    try:
        await asyncio.sleep(scale.quiet_window)
        # Ours debounces again from when it first sees the change after the restart.
        resolved = await _rolled_and_resumed(
            api, PAUSE_RESTART, cut, scale.pause_seconds + scale.quiet_window
        )
        if resolved is not None:
            await asyncio.sleep(scale.quiet_window)
    finally:
        process.stop()
    cut_pause = await _pause_outcome(api, PAUSE_RESTART, cut)
    await api.merge_patch(_deployments(PAUSE, PAUSE_RESTART), {"spec": {"paused": False}})
    rolled = watch.rollouts_since(sent)
    expected = {f"dep-{i}" for i in ix.restart}
    return {
        "changes_while_stopped": len(ix.restart),
        "rolled_after_restart": sum(1 for name in expected if rolled.get(name)),
        "other_rollouts_at_restart": sum(n for name, n in rolled.items() if name not in expected),
        "ready_s": ready_s,
    }, cut_pause


def _errors_logged(process: Process, mark: int) -> int:
    """Lines the process logged at level error (or worse) after byte ``mark`` of its JSON log."""
    count = 0
    with process.log_path.open("rb") as f:
        f.seek(mark)
        for line in f:
            with contextlib.suppress(ValueError, AttributeError):
                count += json.loads(line).get("level", "").lower() in ("error", "fatal", "panic")
    return count


async def _churn(api: KubeHttp, peer: Peer, process: Process, scale: Scale) -> dict[str, Any]:
    """S5, in the shape of tests/e2e/test_rollout.py's churn test: long-lived ``stay-N`` roll once
    each; ``new-<peer>-N``, made on ``cm-stay-N`` just after its change, must not roll."""
    stay = [f"stay-{i}" for i in range(scale.churn_rounds)]
    if peer.writes_baselines:
        await objects.wait_baselined(api, CHURN, len(stay), scale.settle_timeout)
    items, version = await objects.list_deployments(api, CHURN)
    newcomers: list[str] = []
    mark = process.log_path.stat().st_size
    async with TemplateWatch(api, CHURN, version, objects.template_hashes(items)) as watch:
        began = time.perf_counter()
        for r, name in enumerate(stay):
            await api.merge_patch(_cm(f"cm-{name}", CHURN), {"data": {"level": f"churn-{time.time_ns()}"}})
            newcomers.append(f"new-{peer.name}-{r}")
            await api.create(_deployments(CHURN), _workload("Deployment", newcomers[-1], f"cm-{name}"))
            if r >= 2:
                await api.delete(_deployments(CHURN, newcomers[r - 2]))
            await asyncio.sleep(scale.churn_interval)
        took = await _wait_rolled(watch, stay, began, scale.timeout)
        await asyncio.sleep(scale.quiet_window)
        rolled = watch.rollouts_since(began)
    for name in newcomers[-2:]:
        await api.delete(_deployments(CHURN, name))
    return {
        "rounds": len(stay),
        "long_lived_all_rolled_ms": None if took is None else round(took * 1000, 1),
        "long_lived_missed": sum(1 for name in stay if not rolled.get(name)),
        "long_lived_extra_rollouts": sum(rolled[name] - 1 for name in stay if rolled.get(name, 0) > 1),
        "newcomers": len(newcomers),
        "newcomers_rolled": sum(1 for name in newcomers if rolled.get(name)),
        "newcomer_rollouts": sum(rolled.get(name, 0) for name in newcomers),
        "errors_logged": _errors_logged(process, mark),
    }


async def _replica_sets(api: KubeHttp) -> Counter[str]:
    """ReplicaSets of namespace ``pause`` by owning Deployment: one more is one real rollout."""
    items = await api.list_all(common.ns_path(PAUSE, "replicasets", group="apps/v1"))
    return Counter(
        ref["name"]
        for rs in items
        for ref in rs["metadata"].get("ownerReferences") or []
        if ref["kind"] == "Deployment"
    )


async def _rolled_and_resumed(api: KubeHttp, name: str, before: Counter[str], timeout: float) -> float | None:
    """Seconds until ``name`` has a new ReplicaSet and is not paused; None if not within ``timeout``."""
    began = time.perf_counter()
    while time.perf_counter() - began < timeout:
        paused = (await api.get(_deployments(PAUSE, name)))["spec"].get("paused")
        if not paused and (await _replica_sets(api))[name] > before[name]:
            return time.perf_counter() - began
        await asyncio.sleep(0.25)
    return None


async def _pause_outcome(api: KubeHttp, name: str, before: Counter[str]) -> dict[str, Any]:
    deployment = await api.get(_deployments(PAUSE, name))
    return {
        "replica_sets_created": (await _replica_sets(api))[name] - before[name],
        "left_paused": bool(deployment["spec"].get("paused")),
    }


async def _events(api: KubeHttp, name: str) -> dict[str, str]:
    """The Events about Deployment ``name`` of namespace ``pause``: uid -> reason."""
    params = {"fieldSelector": f"involvedObject.name={name}"}
    items = (await api.get(common.ns_path(PAUSE, "events"), params))["items"]
    return {e["metadata"]["uid"]: e.get("reason", "") for e in items}


async def _change_pause_cm(api: KubeHttp, name: str, value: str) -> None:
    await api.merge_patch(_cm(f"cm-{name}", PAUSE), {"data": {"level": f"{value}-{time.time_ns()}"}})


async def _pause(api: KubeHttp, peer: Peer, scale: Scale) -> tuple[dict[str, Any], Counter[str]]:
    """S12: a burst of changes to one ConfigMap; a Deployment its user paused; and a burst that the
    caller cuts by stopping the controller (returned: the ReplicaSets before it, for :func:`_restart`)."""
    if peer.writes_baselines:
        await objects.wait_baselined(api, PAUSE, 3, scale.settle_timeout)
    items, version = await objects.list_deployments(api, PAUSE)
    async with TemplateWatch(api, PAUSE, version, objects.template_hashes(items)) as watch:
        before = await _replica_sets(api)
        began = time.perf_counter()
        for k in range(scale.pause_changes):
            if k:
                await asyncio.sleep(scale.pause_interval)
            await _change_pause_cm(api, PAUSE_BURST, f"burst-{k}")
        last = time.perf_counter()
        rolled = await _rolled_and_resumed(api, PAUSE_BURST, before, scale.pause_seconds + scale.timeout)
        await asyncio.sleep(scale.quiet_window)
        burst = {
            "changes": scale.pause_changes,
            "within_s": round(last - began, 1),
            "pause_seconds": scale.pause_seconds,
            **await _pause_outcome(api, PAUSE_BURST, before),
            "template_writes": watch.rollouts_since(began).get(PAUSE_BURST, 0),
            "paused_on_the_way": PAUSE_BURST in watch.paused,
            "rolled_after_last_change_s": None if rolled is None else round(rolled, 1),
        }
        # A Deployment its user paused: the change waits for the user's resume.
        before, events = await _replica_sets(api), await _events(api, PAUSE_USER)
        await api.merge_patch(_deployments(PAUSE, PAUSE_USER), {"spec": {"paused": True}})
        await asyncio.sleep(1)
        began = time.perf_counter()
        await _change_pause_cm(api, PAUSE_USER, "user")
        await asyncio.sleep(scale.pause_seconds + scale.quiet_window)  # past our debounce: reported
        writes = watch.rollouts_since(began).get(PAUSE_USER, 0)
        still_paused = bool((await api.get(_deployments(PAUSE, PAUSE_USER)))["spec"].get("paused"))
        await api.merge_patch(_deployments(PAUSE, PAUSE_USER), {"spec": {"paused": False}})
        rolled = await _rolled_and_resumed(api, PAUSE_USER, before, scale.timeout)
        await asyncio.sleep(scale.quiet_window)
        user = {
            "template_writes_while_paused": writes,
            "still_paused_until_resumed": still_paused,
            "replica_sets_created_after_resume": (await _replica_sets(api))[PAUSE_USER] - before[PAUSE_USER],
            "rolled_after_resume_s": None if rolled is None else round(rolled, 1),
            "events": sorted(v for k, v in (await _events(api, PAUSE_USER)).items() if k not in events),
        }
        # The start of a burst the caller cuts short: Reloader has paused the Deployment by now.
        cut = await _replica_sets(api)
        await _change_pause_cm(api, PAUSE_RESTART, "cut")
        await asyncio.sleep(2)
    return {"burst": burst, "user_paused": user}, cut


LEASE = (
    f"/apis/coordination.k8s.io/v1/namespaces/{common.OPERATOR_NAMESPACE}/leases/production-policy-controller"
)


async def _handover(
    peer: Peer,
    kubeconfig: Path,
    tmp: Path,
    api: KubeHttp,
    watch: TemplateWatch,
    scale: Scale,
    ix: Indexes,
    n: int,
) -> dict[str, Any]:
    """Ours only: a leader and a standby; the leader is killed (SIGKILL) and a change made at once.

    (Reloader's ``--enable-ha`` cannot be run twice on one machine: both would bind port 9090.)
    """
    leader = replace(peer, env={**peer.env, "POD_NAME": "bench-leader"})
    standby = replace(peer, env={**peer.env, "POD_NAME": "bench-standby"})
    first, _, _ = await _start(leader, kubeconfig, tmp / "ours-leader.log", api, scale, n)
    second = Process(
        standby.argv, tmp / "ours-standby.log", env={"KUBECONFIG": str(kubeconfig), **standby.env}
    )
    try:
        second.start()
        await asyncio.sleep(5)  # the standby is up and trying for the Lease
        second.check_alive()
        assert first.popen is not None
        first.popen.kill()
        killed = time.perf_counter()
        name = f"cm-{ix.handover[0]}"
        await api.merge_patch(_cm(name), {"data": {"level": f"handover-{time.time_ns()}"}})
        lease_s = None
        while time.perf_counter() - killed < scale.timeout:
            holder = ((await api.get(LEASE)).get("spec") or {}).get("holderIdentity")
            if holder == "bench-standby":
                lease_s = round(time.perf_counter() - killed, 1)
                break
            await asyncio.sleep(0.1)
        rolled = await _wait_rolled(watch, [f"dep-{ix.handover[0]}"], killed, scale.timeout + 60)
    finally:
        first.stop()
        second.stop()
    return {
        "lease_taken_after_s": lease_s,
        "change_made_at_the_kill_rolled_after_s": None if rolled is None else round(rolled, 1),
        "workloads": n,
    }


def _exactly_once(watch: TemplateWatch, since: float, expected: dict[str, int]) -> dict[str, Any]:
    rolled = watch.rollouts_since(since)
    extra = {name: n for name, n in rolled.items() if name not in expected}
    extra |= {name: rolled[name] - n for name, n in expected.items() if rolled.get(name, 0) > n}
    return {
        "expected_rollouts": sum(expected.values()),
        "workloads_rolled_as_expected": sum(1 for name, n in expected.items() if rolled.get(name, 0) == n),
        "workloads_expected": len(expected),
        "unexpected_rollouts": sum(extra.values()),
        "unexpected_examples": dict(sorted(extra.items())[:10]),
    }


async def _peer_full(
    peer: Peer, kubeconfig: Path, tmp: Path, api: KubeHttp, audit: AuditLog, scale: Scale, n: int
) -> dict[str, Any]:
    """Everything at the first step: idle and busy memory, reaction, correctness, a restart."""
    ix = Indexes.of(scale)
    templates, version = await _templates(api)
    async with TemplateWatch(api, NAMESPACE, version, templates) as watch:
        began = time.perf_counter()
        process, ready_s, idle = await _start(peer, kubeconfig, tmp / f"{peer.name}-{n}.log", api, scale, n)
        try:
            row: dict[str, Any] = {"ready_s": ready_s, "idle": idle, "rss_idle_mib": _rss_mib(process.pid)}
            async with RssSampler(process.pid) as sampler:
                row |= await _reaction(api, watch, audit, scale, ix, scale.fanout_rounds)
                row |= await _correctness(api, watch, scale, ix)
            row["rss_busy_mib"] = sampler.max_mib
            # Outside the busy sample and in namespaces of their own: the rows above keep their meaning.
            row["churn"] = await _churn(api, peer, process, scale)
            row["pause"], cut = await _pause(api, peer, scale)
            process.check_alive()
        finally:
            process.stop()
        expected = {f"dep-{i}": 1 for i in ix.singles + ix.burst + ix.secrets}
        expected |= {f"dep-{i}": scale.fanout_rounds for i in range(scale.fanout)}
        row["exactly_once"] = _exactly_once(watch, began, expected)
        row["restart"], row["pause"]["cut_by_a_restart"] = await _restart(
            peer, kubeconfig, tmp / f"{peer.name}-restart.log", api, watch, scale, ix, n, cut
        )
        if peer.name == "ours":
            row["handover"] = await _handover(peer, kubeconfig, tmp, api, watch, scale, ix, n)
    log(f"{peer.name} at {n}: {json.dumps({k: row[k] for k in ('rss_idle_mib', 'rss_busy_mib')})}")
    return row


async def _peer_memory(
    peer: Peer, kubeconfig: Path, log_path: Path, api: KubeHttp, scale: Scale, n: int, singles: int
) -> dict[str, Any]:
    """Idle, then busy (a few single changes and one fan-out) memory, and their reaction."""
    templates, version = await _templates(api)
    async with TemplateWatch(api, NAMESPACE, version, templates) as watch:
        process, ready_s, idle = await _start(peer, kubeconfig, log_path, api, scale, n)
        try:
            row: dict[str, Any] = {"ready_s": ready_s, "idle": idle, "rss_idle_mib": _rss_mib(process.pid)}
            async with RssSampler(process.pid) as sampler:
                few = Indexes.of(scale).singles[:singles]
                changes = [
                    await change_and_wait(api, watch, f"cm-{i}", [f"dep-{i}"], 2000 + k, scale.timeout)
                    for k, i in enumerate(few)
                ]
                referrers = [f"dep-{i}" for i in range(scale.fanout)]
                fan = await change_and_wait(api, watch, objects.SHARED, referrers, 3000, scale.timeout)
            row["rss_busy_mib"] = sampler.max_mib
            row["one_workload_latency"] = common.summary_ms([t for c in changes for t in c["latencies_s"]])
            row["fanout_all_patched_ms"] = fan["all_patched_ms"]
            process.check_alive()
        finally:
            process.stop()
    log(f"{peer.name} {log_path.stem}: RSS idle {row['rss_idle_mib']} MiB, busy {row['rss_busy_mib']} MiB")
    return row


async def _bulk_secrets(api: KubeHttp, scale: Scale, size: int) -> float:
    began = time.monotonic()
    path = common.ns_path(BULK, "secrets")
    await common.create_namespace(api, BULK)

    async def one(i: int) -> None:
        body = objects.secret(f"bulk-{i}", size)
        if size == 16:
            await api.create(path, body, exist_ok=True)
        else:
            await api.merge_patch(f"{path}/bulk-{i}", {"data": body["data"]})

    await common.bounded_map(8, one, range(scale.bulk_secrets))
    return round(time.monotonic() - began, 1)


async def _scenario(
    kubeconfig: Path, audit: AuditLog, peers: list[Peer], scale: Scale, tmp: Path
) -> dict[str, Any]:
    steps: list[dict[str, Any]] = []
    async with KubeHttp(kubeconfig, connections=64) as api:
        await common.create_namespace(api, NAMESPACE)
        name, spec = objects.rollout_policy("bench-rollout", [NAMESPACE])
        await common.create_policy(api, name, spec)
        await _make_other_kinds(api)
        await _make_churn_and_pause(api, scale)
        made = 0
        for index, n in enumerate(scale.steps):
            try:
                populate_s = await objects.populate(api, NAMESPACE, made, n, scale.fanout)
                made = n
                step: dict[str, Any] = {"workloads": n, "populate_s": round(populate_s, 1), "peers": {}}
                for peer in peers:
                    log(f"--- {peer.name} alone, {n} workloads")
                    if index == 0:
                        step["peers"][peer.name] = await _peer_full(
                            peer, kubeconfig, tmp, api, audit, scale, n
                        )
                    else:
                        step["peers"][peer.name] = await _peer_memory(
                            peer, kubeconfig, tmp / f"{peer.name}-{n}.log", api, scale, n, singles=5
                        )
                steps.append(step)
                if index == 0:
                    steps += await _large_objects(api, kubeconfig, peers, scale, tmp, n)
            except Exception as exc:
                if not steps:
                    raise  # nothing measured to keep
                # Keep what the earlier steps measured, and say plainly which step failed and why.
                log(f"FAILED: the step at {n} workloads: {traceback.format_exc()}")
                steps.append({"workloads": n, "error": f"{type(exc).__name__}: {exc}"[:2000]})
                break
        meta = await _reloader_meta(api) if len(peers) > 1 else None
    return {"steps": steps, "reloader_build_info": meta}


async def _large_objects(
    api: KubeHttp, kubeconfig: Path, peers: list[Peer], scale: Scale, tmp: Path, n: int
) -> list[dict[str, Any]]:
    """S8: the same number of extra Secrets, 16 B each, then 64 KiB each; their namespace goes after."""
    steps = []
    for size in (16, scale.big_secret_bytes):
        took = await _bulk_secrets(api, scale, size)
        step: dict[str, Any] = {
            "workloads": n,
            "extra_secrets": scale.bulk_secrets,
            "extra_secret_bytes": size,
            "extra_secret_data_mib": round(scale.bulk_secrets * size / 2**20, 1),
            "populate_s": took,
            "peers": {},
        }
        for peer in peers:
            log(f"--- {peer.name} alone, {n} workloads + {scale.bulk_secrets} Secrets of {size} B")
            step["peers"][peer.name] = await _peer_memory(
                peer, kubeconfig, tmp / f"{peer.name}-bulk-{size}.log", api, scale, n, singles=3
            )
        steps.append(step)
    await common.delete_namespace(api, BULK, wait=300)
    return steps


async def _reloader_meta(api: KubeHttp) -> dict[str, Any] | None:
    with contextlib.suppress(common.ApiError, KeyError, ValueError):
        cm = await api.get(common.ns_path(common.OPERATOR_NAMESPACE, "configmaps", "reloader-meta-info"))
        info: dict[str, Any] = json.loads(cm["data"]["buildInfo"])
        return info
    return None


# ---- the results --------------------------------------------------------------------------------


def _row(
    what: str, reloader: Any, ours: Any, lower_is_better: bool = True, right: int | None = None
) -> dict[str, Any]:
    """One side-by-side row; with ``right`` (the correct count), no worse means no farther from it."""
    better = None
    if isinstance(reloader, int | float) and isinstance(ours, int | float):
        if right is not None:
            better = abs(ours - right) <= abs(reloader - right)
        else:
            better = ours <= reloader if lower_is_better else ours >= reloader
    ratio = common.ratio(ours, reloader) if isinstance(reloader, int | float) and reloader else None
    return {
        "what": what,
        "reloader": reloader,
        "ours": ours,
        "ratio_ours_to_reloader": ratio,
        "ours_no_worse": better,
    }


def comparison(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The side-by-side rows (the README's table), from the steps of a run with both peers."""
    first = steps[0]
    o, r = first["peers"]["ours"], first["peers"]["reloader"]
    rows = [
        _row(
            "one workload: p50 ms",
            r["one_workload"]["latency"].get("p50_ms"),
            o["one_workload"]["latency"].get("p50_ms"),
        ),
        _row(
            "one workload: p99 ms",
            r["one_workload"]["latency"].get("p99_ms"),
            o["one_workload"]["latency"].get("p99_ms"),
        ),
        _row(
            f"{o['fanout']['workloads']} workloads sharing a ConfigMap: all patched, worst round ms",
            _worst(r["fanout"]["all_patched_ms"]),
            _worst(o["fanout"]["all_patched_ms"]),
        ),
        _row(
            f"burst of {o['burst']['changes']} changes at once: all patched ms",
            r["burst"]["all_patched_ms"],
            o["burst"]["all_patched_ms"],
        ),
        _row(
            "API requests per change (one workload)",
            r["api_requests_per_change"]["total"],
            o["api_requests_per_change"]["total"],
        ),
    ]
    for case in ("unreferenced_key", "metadata_only", "delete_and_recreate_same_data"):
        rows.append(
            _row(
                f"spurious rollouts: {o['spurious'][case]['changes']} changes, {case.replace('_', ' ')}",
                r["spurious"][case]["rollouts"],
                o["spurious"][case]["rollouts"],
            )
        )
    rows.append(
        _row(
            f"changes made while stopped ({o['restart']['changes_while_stopped']}): rolled after restart",
            r["restart"]["rolled_after_restart"],
            o["restart"]["rolled_after_restart"],
            lower_is_better=False,
        )
    )
    rows.append(
        _row(
            "rollouts besides those at restart",
            r["restart"]["other_rollouts_at_restart"],
            o["restart"]["other_rollouts_at_restart"],
        )
    )
    rows.append(
        _row(
            "unexpected or double rollouts in the whole run",
            r["exactly_once"]["unexpected_rollouts"],
            o["exactly_once"]["unexpected_rollouts"],
        )
    )
    handover = o.get("handover") or {}
    rows.append(
        _row(
            "leader killed (SIGKILL): the standby holds the Lease after s (Reloader: two replicas cannot "
            "run on one machine, both bind :9090)",
            None,
            handover.get("lease_taken_after_s"),
        )
    )
    rows.append(
        _row(
            "leader killed: a change made at the kill rolled after s",
            None,
            handover.get("change_made_at_the_kill_rolled_after_s"),
        )
    )
    for kind in OTHER_KINDS:
        rows.append(
            _row(
                f"{kind} rolled",
                r["other_kinds"][kind]["rolled"],
                o["other_kinds"][kind]["rolled"],
                lower_is_better=False,
            )
        )
    rows += _churn_rows(o["churn"], r["churn"]) + _pause_rows(o["pause"], r["pause"])
    for step in steps:
        label = f"{step['workloads']:,} workloads"
        if "extra_secrets" in step:
            label += f" + {step['extra_secrets']:,} Secrets of {_bytes(step['extra_secret_bytes'])}"
        if "error" in step:
            rows.append(
                _row(f"{label}: the step failed: {step['error'][:300]}", None, None) | {"failed": True}
            )
            continue
        so, sr = step["peers"]["ours"], step["peers"]["reloader"]
        rows.append(_row(f"RSS idle MiB, {label}", sr["rss_idle_mib"], so["rss_idle_mib"]))
        rows.append(_row(f"RSS busy MiB, {label}", sr["rss_busy_mib"], so["rss_busy_mib"]))
    return rows


def _churn_rows(o: dict[str, Any], r: dict[str, Any]) -> list[dict[str, Any]]:
    what = (
        f"workload churn, {o['rounds']} rounds (a ConfigMap changed, a Deployment created on it at once, "
        "one deleted)"
    )
    return [
        _row(f"{what}: long-lived workloads not rolled", r["long_lived_missed"], o["long_lived_missed"]),
        _row(
            f"{what}: extra rollouts of long-lived workloads",
            r["long_lived_extra_rollouts"],
            o["long_lived_extra_rollouts"],
        ),
        _row(
            f"{what}: rollouts of the {o['newcomers']} workloads created after their ConfigMap changed",
            r["newcomer_rollouts"],
            o["newcomer_rollouts"],
        ),
        _row(f"{what}: lines logged at level error", r["errors_logged"], o["errors_logged"]),
    ]


def _pause_rows(o: dict[str, Any], r: dict[str, Any]) -> list[dict[str, Any]]:
    ob, rb = o["burst"], r["burst"]
    what = (
        f"{ob['changes']} changes to one ConfigMap within {ob['within_s']:.0f} s (Reloader pause-period "
        f"{ob['pause_seconds']} s, ours debounce {ob['pause_seconds']} s)"
    )
    ou, ru = o["user_paused"], r["user_paused"]
    oc, rc = o["cut_by_a_restart"], r["cut_by_a_restart"]
    cut = "a change, the controller stopped within the pause/debounce and started again"
    return [
        _row(
            f"{what}: rollouts (new ReplicaSets; one is right)",
            rb["replica_sets_created"],
            ob["replica_sets_created"],
            right=1,
        ),
        _row(f"{what}: pod-template writes", rb["template_writes"], ob["template_writes"]),
        _row(f"{what}: Deployment paused on the way", rb["paused_on_the_way"], ob["paused_on_the_way"]),
        _row(f"{what}: Deployment left paused", rb["left_paused"], ob["left_paused"]),
        _row(
            "paused by its user, its ConfigMap changed: still paused until the user resumed it",
            ru["still_paused_until_resumed"],
            ou["still_paused_until_resumed"],
            lower_is_better=False,
        ),
        _row(
            "paused by its user: rollouts (new ReplicaSets) once resumed (one is right)",
            ru["replica_sets_created_after_resume"],
            ou["replica_sets_created_after_resume"],
            right=1,
        ),
        _row(f"{cut}: Deployment left paused", rc["left_paused"], oc["left_paused"]),
        _row(
            f"{cut}: rollouts (new ReplicaSets; one is right)",
            rc["replica_sets_created"],
            oc["replica_sets_created"],
            right=1,
        ),
    ]


def _worst(values: list[Any]) -> Any:
    return None if not values or any(v is None for v in values) else max(values)


def _bytes(n: int) -> str:
    return f"{n // 1024} KiB" if n >= 1024 else f"{n} B"


def binary_info(path: Path) -> dict[str, Any]:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return {"path": str(path), "sha256": digest, "bytes": path.stat().st_size}


def run(out: Path, scale: Scale = FULL) -> dict[str, Any]:
    started = time.monotonic()
    given = os.environ.get("RELOADER_BIN", "")
    binary = Path(given).expanduser() if given else None
    if binary is None or not (binary.is_file() and os.access(binary, os.X_OK)):
        why = (
            "not run: no Reloader binary given (make bench SCENARIOS=reloader RELOADER_BIN=/path/to/reloader)"
            if binary is None
            else f"not run: RELOADER_BIN={given} is not an executable file"
        )
        log(why)
        data = {
            "scenario": "reloader",
            "title": TITLE,
            "machine": common.machine(),
            "outcome": why,
            "built": False,
        }
        common.write_json(out, "reloader", data)
        return data
    load_before = common.load_now()
    peers = _peers(binary)
    with tempfile.TemporaryDirectory(prefix="pp-bench-reloader-") as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "audit-policy.yaml").write_text(AUDIT_POLICY)
        audit = AuditLog(tmp / "audit.log")
        args = (f"--audit-policy-file={tmp / 'audit-policy.yaml'}", f"--audit-log-path={audit.path}")
        with common.control_plane(nodes=1, apiserver_args=args) as plane:
            result = asyncio.run(_scenario(plane.kubeconfig, audit, peers, scale, tmp))
    data = {
        "scenario": "reloader",
        "title": TITLE,
        "machine": common.machine(plane.binaries),
        "load_average_before": load_before,
        "load_average_after": common.load_now(),
        "built": True,
        "reloader": {
            **binary_info(binary),
            "flags": list(RELOADER_FLAGS),
            "build_info": result["reloader_build_info"],
        },
        "setup": {
            "order": "each step: ours alone, then Reloader alone, on the same objects",
            "workloads": "Deployments with replicas 0: dep-N references ConfigMap cm-N (key 'level', "
            f"env valueFrom) and Secret sec-N (a volume); dep-0..dep-{scale.fanout - 1} also ConfigMap "
            "'shared' (envFrom); one StatefulSet and one DaemonSet",
            "rollout": "a new pod template of the workload, whoever wrote it",
            "ours": "`production-policy controller`, policy with no debounce, no interval, no cap; when it "
            "starts after Reloader's turn it also rolls what changed during that turn (not counted)",
            "api_requests": "from the API server's audit log: every request whose User-Agent is neither "
            "the bench's nor a control-plane component's, during the one-workload changes",
            "churn": f"namespace {CHURN}: {scale.churn_rounds} long-lived Deployments stay-N on cm-stay-N; "
            f"each round ({scale.churn_interval} s apart) changes cm-stay-N, creates new-<peer>-N on it "
            "at once and deletes new-<peer>-(N-2); counted from a watch of the pod templates",
            "pause": f"namespace {PAUSE}: {scale.pause_changes} changes {scale.pause_interval} s apart "
            f"to one ConfigMap; Reloader: annotation {PAUSE_PERIOD}={scale.pause_seconds}s on the "
            f"Deployment; ours: policy bench-{PAUSE} with debounceSeconds {scale.pause_seconds}; a rollout "
            "is a new ReplicaSet (kube-controller-manager makes none while a Deployment is paused)",
            "scale": scale.__dict__,
        },
        "steps": result["steps"],
        "rows": comparison(result["steps"]),
        "elapsed_s": round(time.monotonic() - started, 1),
    }
    common.write_json(out, "reloader", data)
    return data


TITLE = "Scenario 5: stakater/Reloader and our controller, each alone on the same objects"
