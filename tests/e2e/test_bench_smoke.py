"""A tiny variant of every benchmark scenario, so the scripts in bench/ keep working.

Each scenario starts its own local control plane, as ``make bench`` does. Only the shape of the
results is checked: no timing is ever asserted (this machine is shared and timings vary).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bench import admission_e2e, memory, plot, probewatch, reloader, rollout, summary, webhook
from tests.support.cluster import local_binaries

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    local_binaries()
    return tmp_path_factory.mktemp("bench-results")


def _load(results: Path, name: str) -> dict[str, object]:
    data: dict[str, object] = json.loads((results / f"{name}.json").read_text())
    assert "error" not in data
    assert isinstance(data["machine"], dict) and data["machine"]["cores"]
    return data


def test_admission_end_to_end(results: Path) -> None:
    scale = admission_e2e.TINY
    admission_e2e.run(results, scale)
    data = _load(results, "admission_e2e")
    runs = data["runs"]
    engines = admission_e2e.ENGINES
    assert isinstance(runs, list)
    assert len(runs) == len(engines) * (len(scale.concurrencies) + len(scale.big_concurrencies))
    for run in runs:
        expected = (scale.pods if run["containers"] == 3 else scale.big_pods) // scale.rounds * scale.rounds
        assert run["created"] == expected and not run["errors"], run
        # Proof that each engine's creates went through its engine: defaults injected by our webhook
        # or the compiled MutatingAdmissionPolicy, none without.
        assert run["with_injected_defaults"] == (0 if run["engine"] == "none" else expected)
        assert run["containers"] in (3, scale.big_containers)
    edits = data["policy_edit"]
    assert isinstance(edits, list) and [e["policies"] for e in edits] == ["10 policies", "1 policy"]
    for edit in edits:
        assert len(edit["samples"]) == scale.edits
        assert all(s["edit_to_vap_written_ms"] is not None for s in edit["samples"]), edit


def test_webhook_alone(results: Path) -> None:
    webhook.run(results, webhook.TINY)
    data = _load(results, "webhook")
    runs = data["runs"]
    assert isinstance(runs, list) and [r["rate"] for r in runs] == [*webhook.TINY.rates, "flat out"]
    for run in runs:
        assert run["answered"] > 0 and not run["errors"]


def test_rollout_reaction(results: Path) -> None:
    rollout.run(results, rollout.TINY)
    data = _load(results, "rollout")
    one, fanout = data["one_workload"], data["fanout"]
    assert isinstance(one, dict) and one["missed"] == 0 and one["samples"] == rollout.TINY.single_samples
    assert isinstance(fanout, dict)
    assert all(r["patched"] == rollout.TINY.fanout for r in fanout["rounds"])


def test_memory(results: Path) -> None:
    memory.run(results, memory.TINY)
    data = _load(results, "memory")
    steps = data["steps"]
    assert isinstance(steps, list) and len(steps) == 2 * len(memory.TINY.steps) + 3
    assert all(step["rss_mib"] > 0 for step in steps)


def test_reloader_without_a_binary_says_so_and_exits_cleanly(
    results: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RELOADER_BIN", raising=False)
    reloader.run(results)
    data = json.loads((results / "reloader.json").read_text())
    assert data["built"] is False
    assert data["outcome"].startswith("not run: no Reloader binary given")


def test_reloader_side_by_side_when_a_binary_is_given(results: Path) -> None:
    """Both peers at the tiny sizes; Reloader is built by hand (bench/reloader.py): only with RELOADER_BIN."""
    if not os.environ.get("RELOADER_BIN"):
        pytest.skip("no Reloader binary given (RELOADER_BIN=/path/to/reloader): it is built by hand")
    scale = reloader.TINY
    data = reloader.run(results, scale)
    assert data["built"] is True
    steps = data["steps"]
    assert [s["workloads"] for s in steps] == [scale.steps[0]] * 3 + list(scale.steps[1:])
    assert all("error" not in s for s in steps), steps
    for peer in ("ours", "reloader"):
        row = steps[0]["peers"][peer]
        assert row["churn"]["rounds"] == row["churn"]["newcomers"] == scale.churn_rounds
        assert row["pause"]["burst"]["changes"] == scale.pause_changes
        assert set(row["pause"]) == {"burst", "user_paused", "cut_by_a_restart"}
    assert all(r["ours_no_worse"] is not None or r["reloader"] is None for r in data["rows"]), data["rows"]


def test_plots_and_summary(results: Path) -> None:
    pytest.importorskip("matplotlib", reason="the plots need matplotlib (the dev extra)")
    names = ["admission_e2e", "webhook", "rollout", "memory"]
    made = plot.plot_all(results, names)
    assert sorted(p.name for p in made) == sorted(
        f"{n}.png" for n in names if (results / f"{n}.json").exists()
    )
    text = summary.write(results).read_text()
    assert "| Scenario | Goal |" in text


def test_probe_watch_cost(results: Path) -> None:
    probewatch.run(results, probewatch.TINY)
    data = _load(results, "probewatch")
    rows = data["rows"]
    assert isinstance(rows, list) and len(rows) == 2 * (len(probewatch.TINY.steps) + 1)
    # The watch kept every pod it was meant to (so what is measured is its cost), and only it did.
    assert [(r["pods"], r["pods_kept"]) for r in rows if r["probe_watch"]] == [
        (pods, float(pods)) for pods in (0, *probewatch.TINY.steps)
    ]
    assert all(r["pods_kept"] is None for r in rows if not r["probe_watch"])
