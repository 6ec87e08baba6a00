"""Scenario 5's side-by-side rows from the steps of a run (bench/reloader.py), and the summary's.

Plumbing only: the numbers are made up here, what is checked is which row says what of them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench import reloader, summary


def _peer(rollouts_at_pause: int, left_paused: bool, newcomer_rollouts: int) -> dict[str, Any]:
    latency = {"p50_ms": 10.0, "p99_ms": 20.0}
    spurious = {"changes": 2, "rollouts": 0}
    return {
        "one_workload": {"latency": latency},
        "fanout": {"workloads": 5, "all_patched_ms": [100.0]},
        "burst": {"changes": 5, "all_patched_ms": 50.0},
        "api_requests_per_change": {"total": 3.0},
        "spurious": dict.fromkeys(
            ("unreferenced_key", "metadata_only", "delete_and_recreate_same_data"), spurious
        ),
        "restart": {"changes_while_stopped": 2, "rolled_after_restart": 2, "other_rollouts_at_restart": 0},
        "exactly_once": {"unexpected_rollouts": 0},
        "other_kinds": {kind: {"rolled": True} for kind in reloader.OTHER_KINDS},
        "churn": {
            "rounds": 4,
            "long_lived_missed": 0,
            "long_lived_extra_rollouts": 0,
            "newcomers": 4,
            "newcomer_rollouts": newcomer_rollouts,
            "errors_logged": 0,
        },
        "pause": {
            "burst": {
                "changes": 3,
                "within_s": 1.0,
                "pause_seconds": 5,
                "replica_sets_created": rollouts_at_pause,
                "template_writes": 3,
                "paused_on_the_way": left_paused,
                "left_paused": False,
            },
            "user_paused": {"still_paused_until_resumed": True, "replica_sets_created_after_resume": 1},
            "cut_by_a_restart": {"left_paused": left_paused, "replica_sets_created": 0 if left_paused else 1},
        },
        "rss_idle_mib": 50.0,
        "rss_busy_mib": 60.0,
    }


def _rows(steps: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["what"]: row for row in reloader.comparison(steps)}


def test_a_rollout_count_is_judged_by_its_distance_from_the_right_one() -> None:
    # Ours folds the burst into no rollout at all: that is not "fewer, so better".
    step = {"workloads": 40, "peers": {"ours": _peer(0, False, 0), "reloader": _peer(1, True, 2)}}
    rows = _rows([step])
    burst = next(
        row for what, row in rows.items() if what.endswith("rollouts (new ReplicaSets; one is right)")
    )
    assert (burst["ours"], burst["reloader"], burst["ours_no_worse"]) == (0, 1, False)
    cut = next(row for what, row in rows.items() if "started again: Deployment left paused" in what)
    assert (cut["ours"], cut["reloader"], cut["ours_no_worse"]) == (False, True, True)
    newcomers = next(row for what, row in rows.items() if "created after their ConfigMap changed" in what)
    assert (newcomers["ours"], newcomers["reloader"], newcomers["ours_no_worse"]) == (0, 2, True)


def test_a_failed_later_step_keeps_the_earlier_rows_and_shows_as_failed_in_the_summary(
    tmp_path: Path,
) -> None:
    first = {"workloads": 40, "peers": {"ours": _peer(1, False, 0), "reloader": _peer(1, False, 0)}}
    failed = {"workloads": 60, "error": "TimeoutError: apps: 10 of 60 Deployments have a baseline"}
    rows = reloader.comparison([first, failed])
    assert any(row["what"] == "RSS idle MiB, 40 workloads" for row in rows)
    (bad,) = [row for row in rows if row.get("failed")]
    assert bad["what"].startswith("60 workloads: the step failed: TimeoutError: apps: 10 of 60")
    data = {"scenario": "reloader", "built": True, "reloader": {"build_info": {}}, "rows": rows}
    (tmp_path / "reloader.json").write_text(json.dumps(data))
    line = next(
        line for line in summary.write(tmp_path).read_text().splitlines() if "the step failed" in line
    )
    assert "**failed**" in line
