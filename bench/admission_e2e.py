"""Scenario 1: pod creates end to end through kube-apiserver, with each admission engine side by side.

One control plane, one ``production-policy webhook`` process (10 policies, bench.workload) and the
same policies compiled into the API server's admission policies (``engine.apiserver``, the objects
the controller applies). Four namespaces, identical but for one label, each seeing one engine:

- ``none``: no admission of ours;
- ``webhook``: our mutating and validating webhooks, registered by URL as ``run --dev`` does;
- ``apiserver``: the compiled MutatingAdmissionPolicy and ValidatingAdmissionPolicies only;
- ``both``: both, the validating webhooks failing open (``admission.engine: both``).

The webhook configurations and the policy bindings carry the chart's namespaceSelector plus that
label, so all four engines are in force at once and the runs can be interleaved: for each pod
size and concurrency, ``rounds`` rounds, each creating ``pods / rounds`` pods per engine in an
order rotated every round (every engine runs first once), pods deleted after each round. The
same pod body everywhere: bench.workload.pod() (3 containers + 1 init container) and a
30-container variant. Latency is from sending a create to its response, measured by an aiohttp
client.

Then the policy edit: the controller (``production-policy controller --admission-engine
apiserver``) takes over the compiled objects, and a policy is edited back and forth while a
dry-run create is polled until the API server's answer changes. Each sample is split at the
moment the changed ValidatingAdmissionPolicy is written (seen on a watch): before it, the
controller (watch event, compile, server-side apply, during which the API server compiles the
CEL); after it, the API server (its policy informer, refreshed once a second, compiling again).
Measured with the 10 policies, and again with one (a smaller CEL program).

The pods name a scheduler that does not exist, so they stay Pending: kube-scheduler and KWOK do no
work during the runs, and the number measured is the create itself (admission + storage), not
background scheduling competing for the machine's 2 cores. Nothing is pinned.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import gzip
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bench import common, workload
from bench.common import ApiError, KubeHttp, Process, log

ENGINES = ("none", "webhook", "apiserver", "both")
ENGINE_LABEL = "bench.productionpolicy.dev/engine"
INJECTED = "productionpolicy.dev/injected"
ADMISSION_API = "/apis/admissionregistration.k8s.io/v1"
BENCH_MANAGER = "production-policy-bench"
EDITED_POLICY = "bench-baseline"
EDITED_MAX = ("500m", "4")
"""bench-baseline's max cpu, in turn: the bench pod's proxy (limit 1 cpu) is refused, then admitted."""


def namespace(engine: str) -> str:
    return f"shop-{engine}"


@dataclass(frozen=True)
class Scale:
    pods: int = 1000
    """Creates per engine and concurrency (3-container pod)."""
    concurrencies: tuple[int, ...] = (1, 16, 64)
    big_pods: int = 1000
    """The same for the 30-container pod."""
    big_concurrencies: tuple[int, ...] = (64,)
    big_containers: int = 30
    rounds: int = 4
    warmup: int = 100
    """Creates per engine and pod size before measuring (connections, caches, the webhook's warm-up)."""
    edits: int = 6
    """Policy edits measured per compiled size."""
    cost_pods: int = 200
    """Without the creates: pods created per pod size and engine to compare the per-create cost of the
    compiled policies with the baseline's (BASELINE), at concurrency 8."""
    creates: bool = True
    """Whether to measure the creates; without them only the policy edit is (``EDIT``: minutes, not an
    hour), and its result replaces the edit part of the last full run's JSON, marked as such."""


FULL = Scale()
TINY = Scale(
    pods=8,
    concurrencies=(1, 4),
    big_pods=4,
    big_concurrencies=(4,),
    big_containers=6,
    rounds=2,
    warmup=2,
    edits=2,
)
EDIT = Scale(creates=False, edits=10, rounds=4)
TINY_EDIT = Scale(creates=False, edits=2, rounds=2, cost_pods=8, big_containers=6)
BASELINE_PREFIX = "bench-76992b9-"
BASELINE = Path(__file__).parent / "baselines" / "compiled-76992b9.json.gz"
"""The compiled policies of the bench's policy sets as the compiler made them before the CEL was
shrunk (commit 76992b9): the API server compiles them in the same run as ours, for the ratio."""


# ---- the engines -------------------------------------------------------------------------------------


def _only(selector: dict[str, Any], engines: tuple[str, ...]) -> dict[str, Any]:
    """``selector`` narrowed to the namespaces of ``engines``."""
    narrowed = copy.deepcopy(selector)
    narrowed.setdefault("matchExpressions", []).append(
        {"key": ENGINE_LABEL, "operator": "In", "values": list(engines)}
    )
    return narrowed


def webhook_configurations(url: str, ca_pem: bytes) -> list[dict[str, Any]]:
    """Our webhook configurations for the ``webhook`` namespace and, failing open, for ``both``
    (the pod and workload webhooks only: the policy-object one is not called on pod creates)."""
    from production_policy.admission import configuration

    settings = configuration.WebhookSettings(operator_namespace=common.OPERATOR_NAMESPACE)
    client = configuration.url_client_config(url, base64.b64encode(ca_pem).decode())
    configs = []
    for engine in ("webhook", "both"):
        for config in configuration.build_configurations(settings, client, engine):
            config["metadata"]["name"] = f"production-policy-{engine}"
            config["webhooks"] = [
                {**hook, "namespaceSelector": _only(hook["namespaceSelector"], (engine,))}
                for hook in config["webhooks"]
                if "namespaceSelector" in hook
            ]
            configs.append(config)
    return configs


def compiled_objects(
    specs: dict[str, dict[str, Any]], only: tuple[str, ...] | None = None
) -> list[dict[str, Any]]:
    """The compiled admission policies of ``specs`` (as the controller applies them); with ``only``
    (engines), the bindings narrowed to those engines' namespaces."""
    from production_policy import engine
    from production_policy.api import parse_policy
    from production_policy.engine.apiserver import InstallSettings, compile_policies

    policies = [
        engine.compile_policy(parse_policy(_policy(name, spec))) for name, spec in sorted(specs.items())
    ]
    objects = compile_policies(policies, InstallSettings(common.OPERATOR_NAMESPACE)).objects
    if only is not None:
        for obj in objects:
            if obj["kind"].endswith("Binding"):
                resources = obj["spec"]["matchResources"]
                resources["namespaceSelector"] = _only(resources["namespaceSelector"], only)
    return objects


def _policy(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "productionpolicy.dev/v1alpha1",
        "kind": "ProductionPolicy",
        "metadata": {"name": name},
        "spec": spec,
    }


def _admission_path(obj: dict[str, Any]) -> str:
    kind = obj["kind"].lower()
    plural = kind[:-1] + "ies" if kind.endswith("policy") else kind + "s"
    return f"{ADMISSION_API}/{plural}/{obj['metadata']['name']}"


async def _apply(api: KubeHttp, obj: dict[str, Any]) -> None:
    await api.request(
        "PATCH",
        _admission_path(obj),
        obj,
        content_type="application/apply-patch+yaml",
        params={"fieldManager": BENCH_MANAGER, "force": "true"},
    )


def _bad_pod() -> dict[str, Any]:
    """The bench pod with a memory limit every engine refuses (bench-baseline: max 8Gi, Enforce)."""
    pod = workload.pod(generate_name="too-big-")
    pod["spec"]["containers"][1]["resources"]["limits"]["memory"] = "16Gi"
    return pod


async def _dry_run(api: KubeHttp, ns: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """(HTTP status, the pod or the Status) of a dry-run create."""
    answer: dict[str, Any] = await api.request(
        "POST", common.ns_path(ns, "pods"), body, params={"dryRun": "All"}, ok=(200, 201, 400, 403, 422)
    )
    return (int(answer.get("code", 0)) if answer.get("kind") == "Status" else 201), answer


EXPECTED = {
    "none": "defaults: no; the bad pod: admitted",
    "webhook": "defaults: yes; the bad pod: refused by our webhook",
    "apiserver": "defaults: yes; the bad pod: refused by the ValidatingAdmissionPolicy",
    "both": "defaults: yes; the bad pod: refused by the ValidatingAdmissionPolicy",
}
"""What a dry run in each engine's namespace shows once that engine, and only it, is in force (with
``both`` the VAP refuses first: validating admission policies run before validating webhooks)."""


async def _seen(api: KubeHttp, engine: str) -> str:
    """What the namespace of ``engine`` shows now, in the words of EXPECTED."""
    ns = namespace(engine)
    status, good = await _dry_run(api, ns, workload.pod())
    if status != 201:
        return f"the good pod: {status} {good.get('message', '')}"
    injected = INJECTED in (good.get("metadata", {}).get("annotations") or {})
    status, bad = await _dry_run(api, ns, _bad_pod())
    message = str(bad.get("message", ""))
    verdict = (
        "admitted"
        if status == 201
        else "refused by our webhook"
        if status == 403 and 'admission webhook "pods.validate.productionpolicy.dev"' in message
        else "refused by the ValidatingAdmissionPolicy"
        if status == 403 and "ValidatingAdmissionPolicy 'productionpolicy.dev-enforce'" in message
        else f"{status} {message[:300]}"
    )
    return f"defaults: {'yes' if injected else 'no'}; the bad pod: {verdict}"


async def _wait_in_force(api: KubeHttp, engine: str) -> None:
    last = ""

    async def in_force() -> bool:
        nonlocal last
        last = await _seen(api, engine)
        return last == EXPECTED[engine]

    try:
        await common.wait_until_async(in_force, 60, f"engine {engine} to be in force in its namespace")
    except TimeoutError as exc:
        raise TimeoutError(f"{exc}; last seen: {last}") from None


# ---- pod creates -------------------------------------------------------------------------------------


@dataclass
class Tally:
    """What one engine's creates added up to over the rounds of one (pod, concurrency)."""

    latencies: list[float]
    round_p50_ms: list[float]
    injected: int = 0
    elapsed: float = 0.0
    errors: dict[str, int] | None = None
    cpu: dict[str, float] | None = None
    load_before: list[float] | None = None


async def _create_pods(
    api: KubeHttp, ns: str, body: dict[str, Any], count: int, concurrency: int, tally: Tally
) -> None:
    path = common.ns_path(ns, "pods")
    errors = tally.errors if tally.errors is not None else {}
    tally.errors = errors
    latencies: list[float] = []

    async def one() -> None:
        began = time.perf_counter()
        try:
            created = await api.create(path, body)
        except (ApiError, TimeoutError, OSError) as exc:
            key = str(getattr(exc, "status", type(exc).__name__))
            errors[key] = errors.get(key, 0) + 1
            return
        latencies.append(time.perf_counter() - began)
        if INJECTED in (created.get("metadata", {}).get("annotations") or {}):
            tally.injected += 1

    started = time.perf_counter()
    await common.bounded(concurrency, [one for _ in range(count)])
    tally.elapsed += time.perf_counter() - started
    tally.latencies += latencies
    if latencies:
        tally.round_p50_ms.append(common.summary_ms(latencies)["p50_ms"])


async def _delete_pods(api: KubeHttp) -> None:
    for engine in ENGINES:
        await api.request("DELETE", common.ns_path(namespace(engine), "pods"), ok=(200, 202))

    async def empty() -> bool:
        for engine in ENGINES:
            page = await api.get(common.ns_path(namespace(engine), "pods"), {"limit": "1"})
            if page.get("items"):
                return False
        return True

    await common.wait_until_async(empty, 300, "the pods to be deleted", interval=0.5)


def _cpu(pids: dict[str, int]) -> dict[str, float]:
    return {name: common.cpu_seconds(pid) for name, pid in pids.items()}


async def _measure(
    api: KubeHttp,
    body: dict[str, Any],
    label: str,
    count: int,
    concurrency: int,
    scale: Scale,
    pids: dict[str, int],
) -> list[dict[str, Any]]:
    """``count`` creates of ``body`` per engine at ``concurrency``, interleaved over the rounds."""
    tallies = {engine: Tally([], []) for engine in ENGINES}
    per_round = max(1, count // scale.rounds)
    for r in range(scale.rounds):
        order = ENGINES[r % len(ENGINES) :] + ENGINES[: r % len(ENGINES)]
        for engine in order:
            tally = tallies[engine]
            if tally.load_before is None:
                tally.load_before = common.load_now()
            before = _cpu(pids)
            await _create_pods(api, namespace(engine), body, per_round, concurrency, tally)
            after = _cpu(pids)
            tally.cpu = {n: (tally.cpu or {}).get(n, 0.0) + after[n] - before[n] for n in pids}
        await _delete_pods(api)
    runs = []
    for engine, tally in tallies.items():
        created = len(tally.latencies)
        runs.append(
            {
                "pod": label,
                "containers": len(body["spec"]["containers"]),
                "concurrency": concurrency,
                "engine": engine,
                "created": created,
                "with_injected_defaults": tally.injected,
                "errors": tally.errors or {},
                "elapsed_s": round(tally.elapsed, 2),
                "creates_per_s": round(created / tally.elapsed, 1) if tally.elapsed else None,
                "latency": common.summary_ms(tally.latencies),
                "p50_ms_per_round": tally.round_p50_ms,
                # Where the CPU went: milliseconds of CPU per pod create, per process.
                "cpu_ms_per_create": {
                    n: round(1000 * s / max(1, created), 3) for n, s in (tally.cpu or {}).items()
                },
                "load_average_before": tally.load_before,
                "load_average_after": common.load_now(),
            }
        )
        latency = common.summary_ms(tally.latencies)
        log(
            f"{label}, concurrency {concurrency}, {engine}: p50 {latency.get('p50_ms')} ms, "
            f"p99 {latency.get('p99_ms')} ms"
        )
    return runs


async def _creates(kubeconfig: Path, scale: Scale, pids: dict[str, int]) -> list[dict[str, Any]]:
    pods = [
        (workload.pod(), "3 containers + 1 init", scale.pods, scale.concurrencies),
        (
            workload.pod(containers=scale.big_containers),
            f"{scale.big_containers} containers + 1 init",
            scale.big_pods,
            scale.big_concurrencies,
        ),
    ]
    runs: list[dict[str, Any]] = []
    async with KubeHttp(kubeconfig, connections=max(scale.concurrencies) + 4) as api:
        for body, _, _, concurrencies in pods:
            for engine in ENGINES:
                await _create_pods(
                    api, namespace(engine), body, scale.warmup, max(concurrencies), Tally([], [])
                )
        await _delete_pods(api)
        for body, label, count, concurrencies in pods:
            for concurrency in concurrencies:
                log(f"{count} creates per engine of the {label} pod at concurrency {concurrency}")
                runs += await _measure(api, body, label, count, concurrency, scale, pids)
    return runs


# ---- per-create cost, against the baseline's compiled policies -------------------------------------------


def _baseline_objects(specs: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The baseline's compiled policies (BASELINE) under names of their own, bound to the ``both``
    namespace only (this phase uses it for them): its bindings are ours, renamed."""
    objects = []
    for obj in _baseline("10 policies"):
        objects.append(
            {**obj, "metadata": {**obj["metadata"], "name": BASELINE_PREFIX + obj["metadata"]["name"]}}
        )
        binding = next(
            o
            for o in compiled_objects(specs, only=("both",))
            if o["kind"] == obj["kind"] + "Binding" and o["metadata"]["name"] == obj["metadata"]["name"]
        )
        name = BASELINE_PREFIX + binding["metadata"]["name"]
        objects.append(
            {**binding, "metadata": {"name": name}, "spec": {**binding["spec"], "policyName": name}}
        )
    return objects


async def _admission_metrics(api: KubeHttp) -> dict[str, float]:
    """The API server's admission policy evaluations so far, ``<mutating|validating> <policy> count|sum``."""
    found: dict[str, float] = {}
    async with api.session.get(f"{api.server}/metrics") as response:
        for line in (await response.text()).splitlines():
            for kind in ("mutating", "validating"):
                head = f"apiserver_{kind}_admission_policy_check_duration_seconds_"
                if not line.startswith(head):
                    continue
                stat, _, rest = line[len(head) :].partition("{")
                if stat not in ("count", "sum"):
                    continue
                policy = rest.split('policy="', 1)[1].split('"', 1)[0]
                key = f"{kind} {policy} {stat}"
                found[key] = found.get(key, 0.0) + float(line.rsplit(" ", 1)[1])
    return found


async def _create_costs(
    kubeconfig: Path, specs: dict[str, dict[str, Any]], scale: Scale, apiserver: int
) -> list[dict[str, Any]]:
    """Pods created in turn with no admission (``none``), with our compiled policies (``apiserver``)
    and with the baseline's (in the ``both`` namespace): kube-apiserver CPU per create, and the MAP
    evaluations per create and their time (the API server's own metrics)."""
    engines = {"none": "", "apiserver": "", "both": BASELINE_PREFIX}
    theirs = _baseline_objects(specs)
    ours = compiled_objects(specs, only=("apiserver",))
    results = []
    async with KubeHttp(kubeconfig, connections=12) as api:
        for obj in ours + theirs:
            await _apply(api, obj)
        await _wait_in_force(api, "apiserver")

        async def baseline_in_force() -> bool:
            status, good = await _dry_run(api, namespace("both"), workload.pod())
            injected = INJECTED in (good.get("metadata", {}).get("annotations") or {})
            status, bad = await _dry_run(api, namespace("both"), _bad_pod())
            return injected and status == 403 and BASELINE_PREFIX in str(bad.get("message", ""))

        await common.wait_until_async(baseline_in_force, 60, "the baseline's compiled policies in force")
        pods = [
            (workload.pod(), "3 containers + 1 init"),
            (workload.pod(containers=scale.big_containers), ""),
        ]
        for body, label in pods:
            label = label or f"{scale.big_containers} containers + 1 init"
            for engine in engines:
                await _create_pods(api, namespace(engine), body, 10, 8, Tally([], []))
            await _delete_pods(api)
            tallies = {engine: Tally([], []) for engine in engines}
            evaluations = {engine: {"count": 0.0, "sum": 0.0} for engine in engines}
            per_round = max(1, scale.cost_pods // scale.rounds)
            names = list(engines)
            for r in range(scale.rounds):
                for engine in names[r % len(names) :] + names[: r % len(names)]:
                    before, cpu = await _admission_metrics(api), common.cpu_seconds(apiserver)
                    await _create_pods(api, namespace(engine), body, per_round, 8, tallies[engine])
                    after, spent = await _admission_metrics(api), common.cpu_seconds(apiserver) - cpu
                    tally = tallies[engine]
                    tally.cpu = {"kube-apiserver": (tally.cpu or {}).get("kube-apiserver", 0.0) + spent}
                    if engine != "none":
                        key = f"mutating {engines[engine]}productionpolicy.dev-defaults"
                        for stat in ("count", "sum"):
                            change = after.get(f"{key} {stat}", 0.0) - before.get(f"{key} {stat}", 0.0)
                            evaluations[engine][stat] += change
                await _delete_pods(api)
            for engine, tally in tallies.items():
                created = max(1, len(tally.latencies))
                results.append(
                    {
                        "pod": label,
                        "engine": engine,
                        "compiled": {"none": "nothing", "apiserver": "this commit's", "both": "76992b9's"}[
                            engine
                        ],
                        "created": len(tally.latencies),
                        "errors": tally.errors or {},
                        "with_injected_defaults": tally.injected,
                        "latency": common.summary_ms(tally.latencies),
                        "apiserver_cpu_ms_per_create": round(
                            1000 * (tally.cpu or {}).get("kube-apiserver", 0.0) / created, 2
                        ),
                        "map_evaluations_per_create": round(evaluations[engine]["count"] / created, 2),
                        "map_ms_per_create": round(1000 * evaluations[engine]["sum"] / created, 3),
                    }
                )
                log(f"per-create cost, {label}, {engine}: {results[-1]}")
        for obj in reversed(ours + theirs):
            await api.delete(_admission_path(obj))
    return results


# ---- the policy edit ---------------------------------------------------------------------------------


def _vap_sizes(specs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    objects = compiled_objects(specs)
    return {
        obj["metadata"]["name"]: {
            "json_bytes": len(json.dumps(obj)),
            "variables": len(obj["spec"].get("variables", [])),
        }
        for obj in objects
        if obj["kind"] in ("ValidatingAdmissionPolicy", "MutatingAdmissionPolicy")
    }


async def _compile_cost(api: KubeHttp, obj: dict[str, Any], times: int) -> dict[str, float]:
    """How long the API server takes to answer a dry-run create of ``obj`` under a name of its own:
    it compiles every CEL expression of an admission policy it is sent, as on the controller's writes."""
    copy_ = {**obj, "metadata": {"name": f"bench-cost-{obj['metadata']['name']}"}}
    kind = obj["kind"].lower()
    collection = f"{ADMISSION_API}/{kind[:-1] + 'ies' if kind.endswith('policy') else kind + 's'}"
    took = []
    for _ in range(times):
        began = time.perf_counter()
        await api.request("POST", collection, copy_, params={"dryRun": "All"}, ok=(200, 201))
        took.append(time.perf_counter() - began)
    return common.summary_ms(took)


def _baseline(label: str) -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = json.loads(gzip.decompress(BASELINE.read_bytes()))["compiled"][label]
    return objects


async def _write_costs(
    api: KubeHttp, specs: dict[str, dict[str, Any]], label: str, times: int = 15
) -> dict[str, Any]:
    """The API server's compile time of each compiled admission policy, ours and the baseline's
    (BASELINE) in turn, and their sizes: the ratios are of the same run."""
    ours = {o["metadata"]["name"]: o for o in compiled_objects(specs) if o["kind"].endswith("Policy")}
    before = {o["metadata"]["name"]: o for o in _baseline(label)}
    costs = {}
    for name, obj in ours.items():
        now_ms = await _compile_cost(api, obj, times)
        then_ms = await _compile_cost(api, before[name], times)
        size, then_size = len(json.dumps(obj)), len(json.dumps(before[name]))
        costs[name] = {
            "dry_run_create_ms": now_ms,
            "baseline_dry_run_create_ms": then_ms,
            "compile_ratio_p50": common.ratio(now_ms["p50_ms"], then_ms["p50_ms"]),
            "compile_ratio_mean": common.ratio(now_ms["mean_ms"], then_ms["mean_ms"]),
            "json_bytes": size,
            "baseline_json_bytes": then_size,
            "size_ratio": common.ratio(size, then_size),
            "variables": len(obj["spec"].get("variables", [])),
            "baseline_variables": len(before[name]["spec"].get("variables", [])),
        }
    return costs


async def _vap_writes(api: KubeHttp, seen: dict[int, float], stop: asyncio.Event) -> None:
    """Record when each generation of the Enforce ValidatingAdmissionPolicy is written (watch)."""
    from production_policy.engine.apiserver import ENFORCE_NAME

    params = {"watch": "true", "fieldSelector": f"metadata.name={ENFORCE_NAME}", "timeoutSeconds": "600"}
    url = f"{api.server}{ADMISSION_API}/validatingadmissionpolicies"
    while not stop.is_set():
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):  # then watch again
            async with api.session.get(url, params=params, timeout=aiohttp.ClientTimeout(total=None)) as r:
                async for line in r.content:
                    event = json.loads(line)
                    meta = event.get("object", {}).get("metadata", {})
                    if event.get("type") == "ERROR":  # resourceVersion too old: from now on
                        params.pop("resourceVersion", None)
                    elif "generation" in meta:
                        seen.setdefault(int(meta["generation"]), time.time())
                        params["resourceVersion"] = meta["resourceVersion"]
                    if stop.is_set():
                        return
        await asyncio.sleep(0.2)


async def _edits(api: KubeHttp, scale: Scale, label: str) -> dict[str, Any]:
    """Edit EDITED_POLICY's max cpu back and forth; time each edit to the API server's new answer."""
    from production_policy.engine.apiserver import ENFORCE_NAME

    ns = namespace("apiserver")
    path = f"{common.GROUP_PATH}/{EDITED_POLICY}"
    vap = f"{ADMISSION_API}/validatingadmissionpolicies/{ENFORCE_NAME}"
    seen: dict[int, float] = {}
    stop = asyncio.Event()
    watcher = asyncio.create_task(_vap_writes(api, seen, stop))
    samples: list[dict[str, Any]] = []
    try:
        for i in range(scale.edits):
            maximum = EDITED_MAX[i % 2]
            refused = maximum == EDITED_MAX[0]
            generation = int((await api.get(vap))["metadata"]["generation"])
            load = common.load_now()
            edited = time.time()
            await api.merge_patch(path, {"spec": {"resources": {"max": {"cpu": maximum}}}})

            async def enforced(want: bool = refused) -> bool:
                status, _ = await _dry_run(api, ns, workload.pod())
                return (status == 403) == want

            await common.wait_until_async(enforced, 60, f"max cpu {maximum} to be enforced", interval=0.02)
            done = time.time()
            written = next((t for g, t in sorted(seen.items()) if g > generation), None)
            samples.append(
                {
                    "edit_to_enforced_ms": round(1000 * (done - edited), 1),
                    "edit_to_vap_written_ms": None
                    if written is None
                    else round(1000 * (written - edited), 1),
                    "vap_written_to_enforced_ms": None
                    if written is None
                    else round(1000 * (done - written), 1),
                    "load_average_before": load,
                }
            )
            log(
                f"policy edit ({label}) -> enforced in {samples[-1]['edit_to_enforced_ms']} ms: {samples[-1]}"
            )
            await asyncio.sleep(1.5)  # the status writes and type checks of the last edit pass
    finally:
        stop.set()
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await watcher

    def stats(key: str) -> dict[str, float]:
        values = [s[key] / 1000 for s in samples if s[key] is not None]
        return common.summary_ms(values)

    return {
        "policies": label,
        "samples": samples,
        "edit_to_enforced": stats("edit_to_enforced_ms"),
        "edit_to_vap_written": stats("edit_to_vap_written_ms"),
        "vap_written_to_enforced": stats("vap_written_to_enforced_ms"),
    }


async def _remove_compiled(kubeconfig: Path, specs: dict[str, dict[str, Any]]) -> None:
    async with KubeHttp(kubeconfig) as api:
        for obj in reversed(compiled_objects(specs)):
            await api.delete(_admission_path(obj))


async def _policy_edits(kubeconfig: Path, scale: Scale, controller: Process) -> list[dict[str, Any]]:
    specs = workload.policies(*(namespace(e) for e in ENGINES))
    results = []
    async with KubeHttp(kubeconfig) as api:

        async def compiled_in_force() -> bool:
            controller.check_alive()
            policy = await api.get(f"{common.GROUP_PATH}/{EDITED_POLICY}")
            conditions = (policy.get("status") or {}).get("conditions") or []
            return any(
                c.get("type") == "CompiledToAPIServer" and c.get("status") == "True" for c in conditions
            )

        await common.wait_until_async(compiled_in_force, 120, "the controller to apply the compiled policies")
        results.append(
            {
                **await _edits(api, scale, f"{len(specs)} policies"),
                "sizes": _vap_sizes(specs),
                "compile_costs": await _write_costs(api, specs, "10 policies"),
            }
        )
        for name in specs:
            if name != EDITED_POLICY:
                await api.delete(f"{common.GROUP_PATH}/{name}")
        one = {EDITED_POLICY: specs[EDITED_POLICY]}
        from production_policy.engine.apiserver import ENFORCE_NAME

        size = _vap_sizes(one)[ENFORCE_NAME]["variables"]

        async def recompiled() -> bool:
            vap = await api.get(f"{ADMISSION_API}/validatingadmissionpolicies/{ENFORCE_NAME}")
            return bool(len(vap["spec"].get("variables", [])) == size)

        await common.wait_until_async(recompiled, 120, "the controller to apply the one-policy objects")
        await asyncio.sleep(2)  # and the API server to load them
        results.append(
            {
                **await _edits(api, scale, "1 policy"),
                "sizes": _vap_sizes(one),
                "compile_costs": await _write_costs(api, one, "1 policy"),
            }
        )
    return results


# ---- the scenario ------------------------------------------------------------------------------------


def _compare(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    keys = sorted({(r["containers"], r["concurrency"]) for r in runs})
    for containers, concurrency in keys:
        by_engine = {
            r["engine"]: r for r in runs if r["containers"] == containers and r["concurrency"] == concurrency
        }
        none = by_engine["none"]["latency"]
        row: dict[str, Any] = {
            "pod": by_engine["none"]["pod"],
            "containers": containers,
            "concurrency": concurrency,
        }
        for q in ("p50_ms", "p95_ms", "p99_ms"):
            row[q] = {e: by_engine[e]["latency"].get(q) for e in ENGINES}
            row[q]["ratio"] = {
                e: common.ratio(by_engine[e]["latency"].get(q, 0), none.get(q, 0))
                for e in ENGINES
                if e != "none"
            }
        row["creates_per_s"] = {e: by_engine[e]["creates_per_s"] for e in ENGINES}
        row["cpu_ms_per_create"] = {e: by_engine[e]["cpu_ms_per_create"] for e in ENGINES}
        rows.append(row)
    return rows


def _goals(comparison: list[dict[str, Any]]) -> dict[str, Any]:
    small = [r for r in comparison if r["containers"] == min(c["containers"] for c in comparison)]
    top = small[-1]
    c = top["concurrency"]
    goals = {}
    for q, limit in (("p50", 1.10), ("p99", 1.25)):
        ratio = top[f"{q}_ms"]["ratio"]["apiserver"]
        goals[f"apiserver_{q}_at_concurrency_{c}"] = {
            "goal": f"<= {limit:.2f}x no admission",
            "ratio": ratio,
            "met": bool(ratio is not None and ratio <= limit),
        }
    return goals


def run(out: Path, scale: Scale = FULL) -> dict[str, Any]:
    from production_policy import certs

    started = time.monotonic()
    load_before = common.load_now()
    namespaces = [namespace(e) for e in ENGINES]
    specs = workload.policies(*namespaces)
    runs: list[dict[str, Any]] = []
    with common.control_plane(nodes=2) as plane, tempfile.TemporaryDirectory(prefix="pp-bench-e2e-") as tmp_:
        tmp = Path(tmp_)
        ca = certs.make_ca("pp-bench-ca")
        certs.issue_serving(ca, ("127.0.0.1", "localhost")).write(tmp / "tls.crt", tmp / "tls.key")
        port = common.free_port()
        url = f"https://127.0.0.1:{port}"

        async def prepare() -> None:
            async with KubeHttp(plane.kubeconfig) as api:
                for engine in ENGINES:
                    labels = {**workload.NAMESPACE_LABELS, ENGINE_LABEL: engine}
                    await common.create_namespace(api, namespace(engine), labels)
                for name, spec in specs.items():
                    await common.create_policy(api, name, spec)
                if not scale.creates:
                    return
                for config in webhook_configurations(url, ca.cert_pem):
                    plural = (
                        "mutatingwebhookconfigurations"
                        if config["kind"].startswith("Mutating")
                        else "validatingwebhookconfigurations"
                    )
                    await api.create(f"{ADMISSION_API}/{plural}", config)
                for obj in compiled_objects(specs, only=("apiserver", "both")):
                    await _apply(api, obj)
                for engine in ENGINES:
                    await _wait_in_force(api, engine)

        if scale.creates:
            argv = common.webhook_argv(port, tmp / "tls.crt", tmp / "tls.key")
            with Process(argv, tmp / "webhook.log", env={"KUBECONFIG": str(plane.kubeconfig)}) as webhook:
                webhook.wait_https(f"{url}/readyz", 60)
                asyncio.run(prepare())
                pids = {**plane.pids(), "webhook": webhook.pid, "client (this process)": os.getpid()}
                pids = {n: p for n, p in pids.items() if n not in ("kwok", "kube-scheduler")}
                runs = asyncio.run(_creates(plane.kubeconfig, scale, pids))
                webhook.check_alive()

            # The controller applies the compiled objects from here on, as in an install. Ours go
            # first: server-side apply keeps a field while any manager owns it (the controller takes
            # such fields over, but that is not what this phase measures).
            asyncio.run(_remove_compiled(plane.kubeconfig, specs))
        else:
            asyncio.run(prepare())
            apiserver = plane.pids()["kube-apiserver"]
            create_costs = asyncio.run(_create_costs(plane.kubeconfig, specs, scale, apiserver))
        controller = Process(
            common.operator_argv(
                "controller",
                f"--namespace={common.OPERATOR_NAMESPACE}",
                "--admission-engine=apiserver",
                "--metrics-port=0",
                "--log-format=json",
            ),
            tmp / "controller.log",
            env={"KUBECONFIG": str(plane.kubeconfig)},
        )
        with controller:
            try:
                edits = asyncio.run(_policy_edits(plane.kubeconfig, scale, controller))
            except TimeoutError as exc:
                told = [line for line in controller.log().splitlines() if '"level": "info"' not in line]
                raise RuntimeError(f"{exc}; the controller's warnings:\n" + "\n".join(told[-10:])) from None
            controller.check_alive()

    edit_setup = (
        f"the controller (--admission-engine=apiserver) applies the compiled objects; "
        f"{EDITED_POLICY}'s max cpu is edited {scale.edits} times between {' and '.join(EDITED_MAX)} "
        "and a dry-run create polled every 20 ms until its answer changes; the split is when the "
        "changed ValidatingAdmissionPolicy is written (a watch). Compile costs: a dry-run create of "
        f"each compiled policy, ours and the one of commit 76992b9 ({BASELINE.name}), 15 times each, "
        "in turn"
    )
    if not scale.creates:
        return _edit_only(out, plane, edits, create_costs, edit_setup, load_before, started)
    comparison = _compare(runs)
    data = {
        "scenario": "admission_e2e",
        "title": "Scenario 1: pod creates through kube-apiserver, by admission engine",
        "machine": common.machine(plane.binaries),
        "load_average_before": load_before,
        "setup": {
            "pods_per_run": scale.pods,
            "big_pods_per_run": scale.big_pods,
            "rounds": scale.rounds,
            "policies": len(specs),
            "engines": {
                "none": "no admission of ours (the other engines' webhook configurations and bindings exist "
                "but select other namespaces)",
                "webhook": "one `production-policy webhook` process (log format json, as the chart), "
                "registered by URL; mutating + validating webhook called on every pod create",
                "apiserver": "the compiled MutatingAdmissionPolicy + Enforce and Warn "
                "ValidatingAdmissionPolicies (engine.apiserver.compile_policies), run in kube-apiserver",
                "both": "both of the above; the validating webhooks fail open (admission.engine: both)",
            },
            "pods": "bench.workload.pod(): 3 containers + 1 init container, and the same with "
            f"{scale.big_containers} containers; an unknown schedulerName keeps them Pending, so no "
            "scheduling or KWOK work competes during the runs",
            "order": "one namespace per engine, all engines in force at once; per pod size and concurrency, "
            f"{scale.rounds} rounds of creates per engine in an order rotated each round; pods deleted "
            "after each round",
            "pinning": "none (API server, etcd, webhook and client share the 2 cores)",
            "policy_edit": edit_setup,
        },
        "runs": runs,
        "comparison": comparison,
        "policy_edit": edits,
        "goals": _goals(comparison),
        "elapsed_s": round(time.monotonic() - started, 1),
    }
    common.write_json(out, "admission_e2e", data)
    return data


def _edit_only(
    out: Path,
    plane: Any,
    edits: list[dict[str, Any]],
    create_costs: list[dict[str, Any]],
    setup: str,
    load_before: list[float],
    started: float,
) -> dict[str, Any]:
    """The edit phase's result in place of the last full run's (its creates kept, and said to be of
    their own commit): the edit phase alone takes minutes, the full scenario an hour."""
    path = out / "admission_e2e.json"
    data: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {"scenario": "admission_e2e"}
    data.setdefault("title", "Scenario 1: pod creates through kube-apiserver, by admission engine")
    data.setdefault("setup", {})["policy_edit"] = setup
    data["policy_edit"] = edits
    data["create_costs"] = create_costs
    data["policy_edit_run"] = {
        "machine": common.machine(plane.binaries),
        "load_average_before": load_before,
        "elapsed_s": round(time.monotonic() - started, 1),
        "note": "the policy edit phase alone (bench.admission_e2e.EDIT); the creates above are of the "
        f"commit in machine.commit ({(data.get('machine') or {}).get('commit', 'none')})",
    }
    common.write_json(out, "admission_e2e", data)
    return data
