"""One PNG per scenario, drawn from its JSON with matplotlib (a dev dependency, not a runtime one)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

from bench.common import log


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as exc:
        raise RuntimeError("the plots need matplotlib (the dev extra): pip install matplotlib") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _footer(fig: Any, data: dict[str, Any]) -> None:
    m = data.get("machine", {})
    load = data.get("load_average_before", m.get("load_average_at_start"))
    fig.text(
        0.01,
        0.01,
        f"{m.get('cores')} cores, {m.get('memory_gib')} GiB, {m.get('cpu_model', '')}; "
        f"kube-apiserver {m.get('versions', {}).get('kube-apiserver', '?')}; load before {load}; "
        f"{m.get('date', '')}",
        fontsize=7,
        color="#555555",
    )


def _save(plt: Any, fig: Any, data: dict[str, Any], path: Path) -> None:
    _footer(fig, data)
    fig.tight_layout(rect=(0, 0.04, 1, 0.95))
    fig.savefig(path, dpi=110)
    plt.close(fig)


ENGINE_COLORS = {"none": "#8c8c8c", "webhook": "#1f77b4", "apiserver": "#2ca02c", "both": "#ff7f0e"}


def admission_e2e(data: dict[str, Any], path: Path) -> None:
    plt = _pyplot()
    # An edit-only run into an empty --out has no creates: the edit row alone is drawn.
    sizes = sorted({r["containers"] for r in data.get("comparison", [])})
    fig, axes = plt.subplots(len(sizes) + 1, 3, figsize=(14, 4 * (len(sizes) + 1)), squeeze=False)
    engines = list(ENGINE_COLORS)
    width = 0.8 / len(engines)
    for axes_row, containers in zip(axes, sizes, strict=False):
        rows = [r for r in data["comparison"] if r["containers"] == containers]
        x = range(len(rows))
        for ax, q in zip(axes_row, ("p50_ms", "p95_ms", "p99_ms"), strict=True):
            for k, engine in enumerate(engines):
                values = [r[q][engine] or 0 for r in rows]
                offsets = [i + (k - (len(engines) - 1) / 2) * width for i in x]
                ax.bar(offsets, values, width=width, label=engine, color=ENGINE_COLORS[engine])
                if engine == "none":
                    continue
                for i, r in enumerate(rows):
                    ratio = r[q]["ratio"][engine]
                    if ratio is not None:
                        ax.annotate(
                            f"x{ratio:.2f}", (offsets[i], values[i]), ha="center", va="bottom", fontsize=6
                        )
            ax.set_xticks(list(x), [str(r["concurrency"]) for r in rows])
            ax.set_xlabel("concurrent creates")
            ax.set_ylabel(f"{q.split('_')[0]} create latency (ms)")
            ax.set_title(f"{rows[0]['pod']} pod: {q.split('_')[0]}")
        axes_row[0].legend(fontsize=8, title="engine", title_fontsize=8)
    edit_ax, split_ax, text_ax = axes[-1]
    edits = data.get("policy_edit") or []
    for ax, title in (
        (edit_ax, "policy edit -> enforced, each edit"),
        (split_ax, "p50 split: the controller, then the API server"),
    ):
        ax.set_title(title)
        ax.set_ylabel("ms")
    for k, e in enumerate(edits):
        edit_ax.plot(
            range(1, len(e["samples"]) + 1),
            [s["edit_to_enforced_ms"] for s in e["samples"]],
            "o-",
            label=e["policies"],
        )
        ours = e["edit_to_vap_written"].get("p50_ms") or 0
        theirs = e["vap_written_to_enforced"].get("p50_ms") or 0
        split_ax.bar(
            [k], [ours], color="#1f77b4", label="controller: edit -> VAP written" if k == 0 else None
        )
        split_ax.bar(
            [k], [theirs], bottom=[ours], color="#8c8c8c", label="API server: -> enforced" if k == 0 else None
        )
    if edits:
        edit_ax.axhline(2000, color="red", linestyle=":", label="acceptance: 2 s")
        edit_ax.set_ylim(bottom=0)
        edit_ax.set_xlabel("edit")
        edit_ax.legend(fontsize=8)
        split_ax.set_xticks(range(len(edits)), [e["policies"] for e in edits])
        split_ax.legend(fontsize=8)
    text_ax.axis("off")
    lines = []
    for e in edits:
        for name, cost in (e.get("compile_costs") or {}).items():
            if "compile_ratio_p50" in cost:
                lines.append(
                    f"{e['policies']}, {name.removeprefix('productionpolicy.dev-')}: "
                    f"{cost['json_bytes'] / 1024:.0f} KiB (x{cost['size_ratio']:.2f}), compiled in "
                    f"{cost['dry_run_create_ms']['p50_ms']:.0f} ms "
                    f"(x{cost['compile_ratio_p50']:.2f} of 76992b9)"
                )
    for cost in data.get("create_costs") or []:
        lines.append(
            f"{cost['pod'].split(' ')[0]} containers, {cost['compiled']} compiled: "
            f"{cost['apiserver_cpu_ms_per_create']:.1f} ms CPU, {cost['map_evaluations_per_create']} MAP runs"
        )
    edit_run = data.get("policy_edit_run")
    if edit_run:
        lines.append(
            f"edit phase alone at {edit_run['machine']['commit']}, "
            f"load {edit_run['load_average_before'][0]}; "
            f"creates at {(data.get('machine') or {}).get('commit', '-')}"
        )
    text_ax.text(0, 1, "\n".join(lines), va="top", fontsize=6, family="monospace")
    setup = data["setup"]
    creates = f" ({setup['pods_per_run']} / {setup['big_pods_per_run']} creates per engine)" if sizes else ""
    fig.suptitle(f"{data['title']}{creates}")
    _save(plt, fig, data, path)


def webhook(data: dict[str, Any], path: Path) -> None:
    plt = _pyplot()
    runs = data["runs"]
    fixed = [r for r in runs if r["rate"] != "flat out"]
    flat = next(r for r in runs if r["rate"] == "flat out")
    null = data["baseline_null_server_flat_out"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    rates = [r["rate"] for r in fixed]
    for q, style in (("p50_ms", "o-"), ("p99_ms", "s-")):
        left.plot(rates, [r["latency"].get(q) for r in fixed], style, label=q.split("_")[0])
    null_fixed = [r for r in data.get("baseline_null_server_runs", []) if r["rate"] != "flat out"]
    if null_fixed:
        left.plot(
            [r["rate"] for r in null_fixed],
            [r["latency"].get("p99_ms") for r in null_fixed],
            "^--",
            color="#8c8c8c",
            label="p99, null aiohttp server (baseline)",
        )
    left.axhline(5, color="red", linestyle=":", label="goal: p99 <= 5 ms at 500/s")
    left.set_xlabel("offered rate (reviews/s, open loop)")
    left.set_ylabel("latency (ms)")
    left.set_yscale("log")
    left.set_title("latency at fixed rates")
    left.legend(fontsize=8)
    bars = [
        ("null aiohttp server\n(baseline)", null["throughput_per_s"], "#8c8c8c"),
        ("production-policy\nwebhook", flat["throughput_per_s"], "#1f77b4"),
    ]
    right.bar([b[0] for b in bars], [b[1] for b in bars], color=[b[2] for b in bars])
    right.axhline(1500, color="red", linestyle=":", label="goal: >= 1500/s")
    for i, b in enumerate(bars):
        right.annotate(f"{b[1]:.0f}/s", (i, b[1]), ha="center", va="bottom")
    right.set_ylabel("reviews/s, flat out, one core")
    right.set_title("throughput")
    right.legend(fontsize=8)
    fig.suptitle(data["title"])
    _save(plt, fig, data, path)


def rollout(data: dict[str, Any], path: Path) -> None:
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for i, latencies in enumerate(data["fanout"]["sorted_latencies_ms_per_round"]):
        left.plot(range(1, len(latencies) + 1), latencies, ".-", label=f"round {i + 1}")
    left.axhline(2000, color="red", linestyle=":", label="goal: all within 2 s")
    left.set_xlabel("workloads patched (in order)")
    left.set_ylabel("ms after the ConfigMap update")
    left.set_title(f"one ConfigMap referenced by {data['fanout']['workloads']} Deployments")
    left.legend(fontsize=8)
    one = data["one_workload"]["latency"]
    right.bar(
        ["p50", "p95", "p99", "max"],
        [one.get("p50_ms"), one.get("p95_ms"), one.get("p99_ms"), one.get("max_ms")],
        color="#1f77b4",
    )
    right.axhline(250, color="red", linestyle=":", label="goal: p99 <= 250 ms")
    right.set_ylabel("ms after the ConfigMap update")
    right.set_title(f"one ConfigMap referenced by 1 Deployment ({one.get('n')} samples)")
    right.legend(fontsize=8)
    fig.suptitle(f"{data['title']} ({data['setup']['deployments']} Deployments in the cluster)")
    _save(plt, fig, data, path)


def memory(data: dict[str, Any], path: Path) -> None:
    plt = _pyplot()
    steps = data["steps"]
    fig, ax = plt.subplots(figsize=(11, 4.8))
    x = range(len(steps))
    ax.bar(
        [i - 0.2 for i in x], [s["rss_mib"] for s in steps], width=0.4, label="RSS when idle", color="#1f77b4"
    )
    ax.bar(
        [i + 0.2 for i in x],
        [s["peak_rss_mib"] for s in steps],
        width=0.4,
        label="peak RSS (VmHWM)",
        color="#aec7e8",
    )
    for i, s in enumerate(steps):
        ax.annotate(f"{s['rss_mib']:.0f}", (i - 0.2, s["rss_mib"]), ha="center", va="bottom", fontsize=8)
        ax.annotate(
            f"{s['peak_rss_mib']:.0f}", (i + 0.2, s["peak_rss_mib"]), ha="center", va="bottom", fontsize=8
        )
    ax.axhline(150e6 / 2**20, color="red", linestyle=":", label="goal: <= 150 MB at 10,000 workloads")
    ax.set_xticks(list(x), [textwrap.fill(s["step"], 16) for s in steps], fontsize=8)
    ax.set_ylabel("MiB")
    ax.legend(fontsize=8)
    fig.suptitle(data["title"])
    _save(plt, fig, data, path)


def reloader(data: dict[str, Any], path: Path) -> None:
    if not data.get("built"):
        return
    plt = _pyplot()
    fig, (mem, react) = plt.subplots(1, 2, figsize=(14, 5), gridspec_kw={"width_ratios": [3, 2]})
    steps = [s for s in data["steps"] if "error" not in s]  # a failed step is in the summary
    labels = []
    for step in steps:
        label = f"{step['workloads']:,} workloads"
        if "extra_secrets" in step:
            size = step["extra_secret_bytes"]
            label += (
                f" + {step['extra_secrets']:,} Secrets of {size // 1024} KiB"
                if size >= 1024
                else (f" + {step['extra_secrets']:,} Secrets of {size} B")
            )
        labels.append(textwrap.fill(label, 18))
    x = range(len(steps))
    bars = (
        ("reloader", "rss_idle_mib", -0.3, "Reloader idle", "#ff9896"),
        ("reloader", "rss_busy_mib", -0.1, "Reloader busy", "#d62728"),
        ("ours", "rss_idle_mib", 0.1, "ours idle", "#aec7e8"),
        ("ours", "rss_busy_mib", 0.3, "ours busy", "#1f77b4"),
    )
    for peer, key, offset, label, color in bars:
        values = [s["peers"][peer][key] for s in steps]
        mem.bar([i + offset for i in x], values, width=0.2, label=label, color=color)
        for i, v in enumerate(values):
            mem.annotate(f"{v:.0f}", (i + offset, v), ha="center", va="bottom", fontsize=7)
    mem.set_xticks(list(x), labels, fontsize=8)
    mem.set_ylabel("RSS, MiB")
    mem.legend(fontsize=8, loc="lower center", ncol=4)
    mem.set_title("memory")
    first = steps[0]["peers"]
    what = ["1 workload p50", "1 workload p99", f"{first['ours']['fanout']['workloads']} workloads, all"]

    def reaction(peer: dict[str, Any]) -> list[float]:
        fan = [v for v in peer["fanout"]["all_patched_ms"] if v is not None]
        lat = peer["one_workload"]["latency"]
        return [lat.get("p50_ms", 0), lat.get("p99_ms", 0), max(fan) if fan else 0]

    for offset, peer, color in ((-0.2, "reloader", "#d62728"), (0.2, "ours", "#1f77b4")):
        values = reaction(first[peer])
        react.bar([i + offset for i in range(3)], values, width=0.4, label=peer, color=color)
        for i, v in enumerate(values):
            react.annotate(f"{v:,.0f}", (i + offset, v), ha="center", va="bottom", fontsize=7)
    react.set_yscale("log")
    react.set_xticks(range(3), what, fontsize=8)
    react.set_ylabel("ms from the ConfigMap update to the template patch (log)")
    react.legend(fontsize=8)
    react.set_title(f"reaction at {steps[0]['workloads']:,} workloads")
    fig.suptitle(data["title"])
    _save(plt, fig, data, path)


PLOTS = {
    "admission_e2e": admission_e2e,
    "webhook": webhook,
    "rollout": rollout,
    "memory": memory,
    "reloader": reloader,
}


def plot_all(out: Path, names: list[str] | None = None) -> list[Path]:
    made = []
    for name, draw in PLOTS.items():
        source = out / f"{name}.json"
        if (names is not None and name not in names) or not source.exists():
            continue
        data = json.loads(source.read_text())
        if "error" in data:
            continue
        target = out / f"{name}.png"
        draw(data, target)
        if target.exists():
            log(f"wrote {target}")
            made.append(target)
    return made
