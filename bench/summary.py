"""bench/results/SUMMARY.md: one table of every goal, met or missed, with its baseline and what limits us.

Everything in it is computed from the JSON results of the same directory, so ``make bench``
rewrites it with the numbers it just measured.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench import common


def _load(out: Path, name: str) -> dict[str, Any] | None:
    path = out / f"{name}.json"
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _met(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**met**" if ok else "**missed**")


def _ms(value: Any) -> str:
    return "-" if value is None else f"{value:,.1f} ms" if value < 100 else f"{value:,.0f} ms"


def _x(value: Any) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _pct(profile: dict[str, Any] | None, *components: str) -> float:
    if not profile:
        return 0.0
    return float(round(sum(float(profile["by_component"].get(c, 0.0)) for c in components), 0))


def _versus(row: dict[str, Any], q: str, engines: tuple[str, ...]) -> str:
    return "; ".join(
        f"{engine}: {_ms(row[q][engine])}" + (f" ({_x(row[q]['ratio'][engine])})" if engine != "none" else "")
        for engine in engines
    )


def _cpu_line(row: dict[str, Any]) -> str:
    """kube-apiserver (and webhook) CPU per create, by engine."""
    cpu = row.get("cpu_ms_per_create") or {}
    api = {e: (cpu.get(e) or {}).get("kube-apiserver") for e in ("none", "webhook", "apiserver", "both")}
    if any(v is None for v in api.values()):
        return ""
    hook = (cpu.get("webhook") or {}).get("webhook", 0.0)
    return (
        f"kube-apiserver CPU per create: none {api['none']:.1f} ms, webhook {api['webhook']:.1f} ms (+ "
        f"{hook:.1f} ms in our webhook), apiserver {api['apiserver']:.1f} ms, both {api['both']:.1f} ms; "
        f"creates/s {row['creates_per_s']['none']:.0f} / {row['creates_per_s']['webhook']:.0f} / "
        f"{row['creates_per_s']['apiserver']:.0f} / {row['creates_per_s']['both']:.0f}."
    )


def rows_admission(d: dict[str, Any]) -> list[list[str]]:
    if "comparison" not in d:  # an edit-only run into an empty --out: no creates measured
        return rows_policy_edit(d) + rows_create_costs(d)
    small = min(r["containers"] for r in d["comparison"])
    rows_small = [r for r in d["comparison"] if r["containers"] == small]
    top = rows_small[-1]
    c = top["concurrency"]
    cpu = _cpu_line(top)
    extra = (top["p50_ms"]["apiserver"] or 0) - (top["p50_ms"]["none"] or 0)
    limit = (
        f"CPU: the 2 cores are saturated at concurrency {c} even with no admission, so any CPU added "
        f"per create shows up as latency (+{extra:.0f} ms at p50). {cpu} In process, the MAP's "
        "mutation and the two VAPs' CEL (10 policies) replace the two TLS calls; in a cluster the "
        "webhook would run on other nodes, the CEL always runs in the API server."
    )
    lower = " ".join(
        f"c={r['concurrency']}: p50 {_x(r['p50_ms']['ratio']['apiserver'])}, "
        f"p99 {_x(r['p99_ms']['ratio']['apiserver'])};"
        for r in rows_small[:-1]
    )
    rows = []
    for q, goal in (("p50", "≤ +10%"), ("p99", "≤ +25%")):
        met = d["goals"][f"apiserver_{q}_at_concurrency_{c}"]["met"]
        rows.append(
            [
                "1 admission e2e",
                f"engine apiserver: {q} at concurrency {c} {goal}",
                _ms(top[f"{q}_ms"]["apiserver"]),
                f"no admission: {_ms(top[f'{q}_ms']['none'])}; "
                + _versus(top, f"{q}_ms", ("webhook", "both")),
                _x(top[f"{q}_ms"]["ratio"]["apiserver"]),
                _met(met),
                (limit if not met else lower) if q == "p50" else ("Same as above." if not met else ""),
            ]
        )
    for big in [r for r in d["comparison"] if r["containers"] != small][-1:]:
        ratio = big["p50_ms"]["ratio"]
        cheaper = (ratio["apiserver"] or 0) <= (ratio["webhook"] or 0)
        rows.append(
            [
                "1 admission e2e",
                f"{big['containers']}-container pod, concurrency {big['concurrency']}: p50, p99 "
                "(no goal; in-process CEL vs the webhook)",
                f"apiserver: {_ms(big['p50_ms']['apiserver'])}, {_ms(big['p99_ms']['apiserver'])}",
                f"no admission: {_ms(big['p50_ms']['none'])}, {_ms(big['p99_ms']['none'])}; webhook: "
                f"{_ms(big['p50_ms']['webhook'])} ({_x(ratio['webhook'])}), "
                f"{_ms(big['p99_ms']['webhook'])} ({_x(big['p99_ms']['ratio']['webhook'])}); both: "
                f"{_ms(big['p50_ms']['both'])} ({_x(ratio['both'])})",
                f"{_x(ratio['apiserver'])}, {_x(big['p99_ms']['ratio']['apiserver'])}",
                "n/a",
                (
                    "In-process CEL is still cheaper than the webhook hop at this size. "
                    if cheaper
                    else "Here in-process CEL costs more than the webhook hop (as the research expects). "
                )
                + _cpu_line(big),
            ]
        )
    rows += rows_policy_edit(d)
    rows += rows_create_costs(d)
    return rows


def rows_create_costs(d: dict[str, Any]) -> list[list[str]]:
    """The per-create cost of this commit's compiled policies against commit 76992b9's, same run."""
    costs = d.get("create_costs") or []
    rows = []
    for pod in dict.fromkeys(c["pod"] for c in costs):
        by = {c["engine"]: c for c in costs if c["pod"] == pod}
        ours, theirs, none = by["apiserver"], by["both"], by["none"]
        rows.append(
            [
                "1 admission e2e",
                f"{pod} pod, concurrency 8: kube-apiserver CPU per create, compiled policies of this "
                "commit vs 76992b9 (no goal)",
                f"{ours['apiserver_cpu_ms_per_create']:.1f} ms",
                f"76992b9: {theirs['apiserver_cpu_ms_per_create']:.1f} ms; no admission: "
                f"{none['apiserver_cpu_ms_per_create']:.1f} ms",
                _x(common.ratio(ours["apiserver_cpu_ms_per_create"], theirs["apiserver_cpu_ms_per_create"])),
                "n/a",
                f"MAP evaluations per create: {ours['map_evaluations_per_create']} (76992b9: "
                f"{theirs['map_evaluations_per_create']}), {ours['map_ms_per_create']:.2f} ms of MAP per "
                f"create (76992b9: {theirs['map_ms_per_create']:.2f} ms); "
                f"p50 {_ms(ours['latency'].get('p50_ms'))} (76992b9: {_ms(theirs['latency'].get('p50_ms'))}, "
                f"none: {_ms(none['latency'].get('p50_ms'))})."
                " Measured with the edit phase alone (see the edit row).",
            ]
        )
    return rows


def rows_policy_edit(d: dict[str, Any]) -> list[list[str]]:
    edits = d.get("policy_edit") or []
    if not edits:
        return []
    full, *smaller = edits
    total, ours, theirs = (
        full[k] for k in ("edit_to_enforced", "edit_to_vap_written", "vap_written_to_enforced")
    )
    if not total.get("n"):
        return []
    met = total["max_ms"] <= 2000
    loads = [s["load_average_before"][0] for e in edits for s in e["samples"]]
    others = "; ".join(
        f"{e['policies']}: p50 {_ms(e['edit_to_enforced'].get('p50_ms'))}, max "
        f"{_ms(e['edit_to_enforced'].get('max_ms'))} (ours {_ms(e['edit_to_vap_written'].get('p50_ms'))}, "
        f"the API server's {_ms(e['vap_written_to_enforced'].get('p50_ms'))})"
        for e in smaller
    )
    enforce = full.get("sizes", {}).get("productionpolicy.dev-enforce", {})
    writes = "; ".join(
        f"{e['policies']} ({e['sizes']['productionpolicy.dev-enforce']['json_bytes'] / 1024:.0f} KiB): "
        f"{_ms(e['dry_run_apply_ms']['productionpolicy.dev-enforce'].get('p50_ms'))}"
        for e in edits
        if "dry_run_apply_ms" in e
    )
    compiled = "; ".join(
        f"{e['policies']}: {cost['json_bytes'] / 1024:.0f} KiB, {cost['variables']} variables "
        f"(76992b9: {cost['baseline_json_bytes'] / 1024:.0f} KiB, {cost['baseline_variables']}; "
        f"{_x(cost['size_ratio'])}), compiled in {_ms(cost['dry_run_create_ms'].get('p50_ms'))} "
        f"(76992b9: {_ms(cost['baseline_dry_run_create_ms'].get('p50_ms'))}; "
        f"{_x(cost['compile_ratio_p50'])}; "
        f"mean {_x(cost.get('compile_ratio_mean'))})"
        for e in edits
        for name, cost in (e.get("compile_costs") or {}).items()
        if name == "productionpolicy.dev-enforce"
    )
    if compiled:
        writes = f"{writes}; " if writes else ""
        writes += (
            f"the Enforce VAP, dry-run create, p50, in the same run as the one of commit 76992b9: {compiled}"
        )
    edit_run = d.get("policy_edit_run")
    when = (
        f" (the edit phase alone, at {edit_run['machine']['commit']}, "
        f"load {edit_run['load_average_before'][0]} "
        f"before; the creates above at {(d.get('machine') or {}).get('commit', '-')})"
        if edit_run
        else ""
    )
    return [
        [
            "1 admission e2e",
            "a policy edit is enforced by the API server within 2 s",
            f"{full['policies']}: p50 {_ms(total['p50_ms'])}, max {_ms(total['max_ms'])}",
            others,
            "-",
            _met(met),
            f"p50 split: the controller until the changed VAP is written {_ms(ours.get('p50_ms'))} "
            f"(watch event, compile, server-side apply while the API server compiles the CEL, "
            f"{enforce.get('json_bytes', 0) / 1024:.0f} KiB for the Enforce VAP), then the API server "
            f"{_ms(theirs.get('p50_ms'))} (max {_ms(theirs.get('max_ms'))}: its policy informer is "
            f"refreshed once a second and compiles the VAPs again). Load average {min(loads):.1f}-"
            f"{max(loads):.1f} during the edits{when}. The API server compiling the CEL, p50: {writes}.",
        ]
    ]


def rows_webhook(d: dict[str, Any]) -> list[list[str]]:
    flat = d["runs"][-1]
    null = d["baseline_null_server_flat_out"]
    g = d["goals"]
    profile = d.get("profile_flat_out")
    stack = _pct(profile, "aiohttp (HTTP server)", "asyncio event loop", "TLS")
    engine = _pct(profile, "engine (policy decisions)")
    json_ = _pct(profile, "JSON encode/decode")
    logging_ = _pct(profile, "logging")
    shell = _pct(profile, "admission shell (ours)", "metrics")
    limit = (
        (
            f"One Python process on one core. The same aiohttp + TLS + JSON work with no decision at all "
            f"(null server) tops out at {null['throughput_per_s']:,.0f}/s. Profile at full load: policy "
            f"engine {engine:.0f}%, aiohttp/asyncio/TLS {stack:.0f}%, JSON {json_:.0f}%, logging "
            f"{logging_:.0f}%, admission shell + metrics {shell:.0f}%."
        )
        if profile
        else (f"The null server (aiohttp + TLS + JSON, no decision) does {null['throughput_per_s']:,.0f}/s.")
    )
    p99 = g["p99_ms_at_500_per_s"]
    null_p99 = p99.get("null_server")
    if p99["met"]:
        p99_limit = ""
    elif null_p99 is not None and null_p99 > 5:
        p99_limit = (
            f"The null server itself has p99 {_ms(null_p99)} at 500/s on this machine: Python asyncio + TLS "
            "on a 2-core VM (wake-up and scheduling jitter), not the policy work, sets the floor."
        )
    else:
        p99_limit = (
            f"The null server has p99 {_ms(null_p99)} at 500/s; the rest is our per-review CPU time "
            "(see the throughput row) queueing behind itself at that rate."
        )
    return [
        [
            "2 webhook alone",
            "≥ 1,500 reviews/s on one core",
            f"{flat['throughput_per_s']:,.0f}/s",
            f"null aiohttp server: {null['throughput_per_s']:,.0f}/s",
            _x(g["throughput_per_s"]["ratio_to_null_server"]),
            _met(g["throughput_per_s"]["met"]),
            limit if not g["throughput_per_s"]["met"] else "",
        ],
        [
            "2 webhook alone",
            "p99 ≤ 5 ms at 500/s",
            _ms(p99["measured"]),
            f"null server at 500/s: {_ms(p99.get('null_server'))}",
            _x(p99["measured"] / p99["null_server"]) if p99.get("null_server") and p99["measured"] else "-",
            _met(p99["met"]),
            p99_limit,
        ],
    ]


def rows_rollout(d: dict[str, Any], reloader: dict[str, Any] | None) -> list[list[str]]:
    g = d["goals"]
    one = g["one_workload_p99_ms"]
    fan_key = next(k for k in g if k.startswith("all_"))
    fan = g[fan_key]
    n = d["fanout"]["workloads"]
    peer = "Reloader: not run (scenario 5)" if not (reloader and reloader.get("built")) else "Reloader: see 5"
    listed = (d.get("list_all_deployments_ms") or {}).get("p50_ms")
    if listed is not None:
        # Context, not a Reloader measurement: Reloader LISTs every workload kind per change.
        peer += (
            f"; for scale, one LIST of the {d['setup']['deployments']:,} Deployments (Reloader's design "
            f"lists each workload kind on every change) takes {_ms(listed)} here"
        )
    first = d.get("controller_first_baselines_s")
    first_note = (
        f" At startup the controller gave {d['setup']['deployments']:,} first-seen Deployments their "
        f"baseline in {first:.0f} s."
        if first is not None
        else ""
    )
    per = (fan["measured"] / n) if fan["measured"] else None
    fan_limit = (
        (
            f"Decisions are made one at a time and their writes 8 at a time (rollout/controller.py, "
            f"WRITE_CONCURRENCY); each of the {n} rollouts is a PATCH, an Event POST and a new "
            f"ReplicaSet from kube-controller-manager, on the same 2 cores as kube-apiserver, etcd and "
            f"the controller: ~{per:.0f} ms per workload here.{first_note}"
            if per
            else f"A round did not see all {n} patched within the scenario's timeout "
            f"({d['fanout']['rounds'] and [r['patched'] for r in d['fanout']['rounds']]} patched per round): "
            f"the machine was loaded (load average {d['load_average_before'][0]} before; see the LIST "
            f"time).{first_note}"
        )
        if not fan["met"]
        else first_note.strip()
    )
    return [
        [
            "3 rollout reaction",
            "1 workload: p99 ≤ 250 ms",
            _ms(one["measured"]),
            peer,
            "-",
            _met(one["met"]),
            "" if one["met"] else "See the 100-workload row.",
        ],
        [
            "3 rollout reaction",
            f"{n} workloads: all ≤ 2 s",
            _ms(fan["measured"]),
            peer,
            "-",
            _met(fan["met"]),
            fan_limit,
        ],
    ]


def memory_growth(d: dict[str, Any]) -> tuple[float, float | None]:
    """Scenario 4's floor (MiB, nothing to watch) and MiB per 1,000 further workloads (restarted)."""
    steps = d["steps"]
    workload_steps = [s for s in steps if s["step"].endswith(" workloads")]
    per_1000 = None
    if len(workload_steps) >= 2:
        a, b = workload_steps[0], workload_steps[-1]
        per_1000 = (b["rss_mib"] - a["rss_mib"]) / (
            (b["objects"]["deployments"] - a["objects"]["deployments"]) / 1000
        )
    return float(steps[0]["rss_mib"]), per_1000


def rows_memory(d: dict[str, Any]) -> list[list[str]]:
    g = d["goals"]
    key = next(k for k in g if k.startswith("rss_at_"))
    steps = d["steps"]
    key_step = f"{int(key.split('_')[2])} workloads"
    empty = steps[0]
    workload_steps = [s for s in steps if s["step"].endswith(" workloads")]
    _, per_1000 = memory_growth(d)
    first = next((s for s in steps if s["step"] == f"{workload_steps[-1]['step']}, first sight"), None)
    first_note = (
        f" The controller that first sees them (and writes their baselines) holds {first['rss_mib']:.0f} MiB."
        if first and workload_steps
        else ""
    )
    limit = (
        f"The floor: an idle controller with nothing to watch is already {empty['rss_mib']:.0f} MiB "
        f"(the code of what it imports: Python, kopf with aiohttp, pydantic, prometheus-client; "
        f"neither optional client of kopf's is loaded). Each 1,000 further workloads (with their "
        f"ConfigMap and Secret) add ~{per_1000:.1f} MiB: what the controller keeps of them (facts, "
        f"audit subjects, key digests; kopf keeps nothing per object).{first_note}"
        if per_1000 is not None
        else ""
    )
    effect = d["data_size_effect"]
    return [
        [
            "4 memory",
            f"RSS ≤ 150 MB at {int(key.split('_')[2]):,} workloads",
            f"{g[key]['measured']:.0f} MiB"
            + ("" if all(x.get("idle", True) for x in steps if x["step"] == key_step) else " (still busy)"),
            f"empty cluster: {empty['rss_mib']:.0f} MiB",
            "-",
            _met(g[key]["met"]),
            limit if not g[key]["met"] else "",
        ],
        [
            "4 memory",
            "grows with objects, not data",
            f"+{effect['rss_increase_mib']:.1f} MiB RSS (+{effect['peak_rss_increase_mib']:.1f} MiB peak)",
            f"+{effect['secret_data_added_mib']:.0f} MiB of Secret data",
            "-",
            _met(g["grows_with_objects_not_data"]["met"]),
            ""
            if g["grows_with_objects_not_data"]["met"]
            else "Secrets are parsed whole before their digests are kept: the pages of a listing "
            "(rollout/sources.py PAGE_SIZE) bound what is held at once.",
        ],
    ]


def rows_reloader(d: dict[str, Any], memory: dict[str, Any] | None) -> list[list[str]]:
    if not d.get("built"):
        return [["5 vs stakater/Reloader", "side by side", "-", "-", "-", "**not run**", d["outcome"]]]
    info = (d.get("reloader") or {}).get("build_info") or {}
    peer = f"Reloader {info.get('releaseVersion', '?')} ({str(info.get('commitHash', '?'))[:12]})"
    rows = []
    for row in d["rows"]:
        ours, theirs = row["ours"], row["reloader"]
        ok = row["ours_no_worse"]
        limit = ""
        if ok is False and row["what"].startswith("RSS"):
            limit = (
                "The floor of a Python process: the interpreter, kopf (with aiohttp), pydantic and the "
                "rest of what the controller imports, before it holds any object"
            )
            if memory and "steps" in memory:
                floor, per_1000 = memory_growth(memory)
                limit += f" ({floor:.0f} MiB in scenario 4's empty cluster)"
                if per_1000 is not None:
                    limit += f", then ~{per_1000:.1f} MiB per 1,000 workloads of Python objects"
            limit += "; Reloader is one static Go binary, idle until a change makes it list workloads."
        elif ok is False:
            limit = "See bench/results/reloader.json."
        rows.append(
            [
                "5 vs Reloader",
                f"no worse: {row['what']}",
                _cell(ours),
                f"{peer}: {_cell(theirs)}",
                _x(row["ratio_ours_to_reloader"]),
                "**failed**" if row.get("failed") else _met(ok),
                limit,
            ]
        )
    return rows


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.1f}"
    return "-" if value is None else f"{value:,}" if isinstance(value, int) else str(value)


def write(out: Path) -> Path:
    rows: list[list[str]] = []
    sources = {
        name: _load(out, name) for name in ("admission_e2e", "webhook", "rollout", "memory", "reloader")
    }
    machine: dict[str, Any] | None = None
    loads = []
    for name, data in sources.items():
        if data is None:
            continue
        if "error" in data:
            rows.append([name, "-", "-", "-", "-", "**failed**", data["error"][:200]])
            continue
        machine = machine or data.get("machine")
        if "load_average_before" in data:
            loads.append(f"{name} {data['load_average_before'][0]}")
        if name == "admission_e2e" and "comparison" in data and "engine" not in (data.get("runs") or [{}])[0]:
            rows.append([name, "-", "-", "-", "-", "**stale**", "results of an older scenario: run it again"])
        elif name == "admission_e2e":
            rows += rows_admission(data)
        elif name == "webhook":
            rows += rows_webhook(data)
        elif name == "rollout":
            rows += rows_rollout(data, sources["reloader"])
        elif name == "memory":
            rows += rows_memory(data)
        elif name == "reloader":
            rows += rows_reloader(data, sources["memory"])
    header = [
        "Scenario",
        "Goal",
        "Measured",
        "Baseline / peer (same run)",
        "Ratio",
        "Result",
        "What limits us",
    ]
    lines = ["# Benchmark summary", ""]
    if machine:
        v = machine.get("versions", {})
        lines += [
            f"Measured with `make bench` on {machine.get('cores')} cores, {machine.get('memory_gib')} GiB "
            f"({machine.get('cpu_model')}), kube-apiserver {v.get('kube-apiserver', '?')}, "
            f"etcd {v.get('etcd', '?')}, kwok {v.get('kwok', '?')}, Python {v.get('python')}, "
            f"kopf {v.get('kopf')}, aiohttp {v.get('aiohttp')}; commit {machine.get('commit')}. "
            f"1-minute load average before each scenario: {', '.join(loads)}. "
            "Details, every run and the machine in `bench/results/*.json`; plots in `*.png`.",
            "",
        ]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        lines.append("| " + " | ".join(cell.replace("|", "\\|").replace("\n", " ") for cell in row) + " |")
    lines.append("")
    path = out / "SUMMARY.md"
    path.write_text("\n".join(lines))
    return path
