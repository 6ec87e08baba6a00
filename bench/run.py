"""``python -m bench.run [--scenarios admission_e2e,webhook,...,probewatch] [--out DIR] [--tiny]``

(``admission_edit`` is scenario 1's policy edit phase alone: its result replaces the edit part of
``admission_e2e.json``, the creates of the last full run kept and marked as of their own commit.)

Runs the scenarios in turn (each on a control plane of its own), then draws the plots and writes
SUMMARY.md. A scenario that fails is recorded as such in its JSON and the others still run; the
exit status is then 1. Before each scenario it waits (at most ``--wait-quiet`` seconds) for the
1-minute load average to drop below ``--quiet-load``: numbers taken on a busy machine are not
comparable. The load seen is recorded in every result.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import admission_e2e, common, memory, plot, probewatch, reloader, rollout, summary, webhook
from bench.common import log

SCENARIOS: dict[str, tuple[Callable[..., dict[str, Any]], Any, Any]] = {
    # name: (run, full scale, tiny scale)
    "admission_e2e": (admission_e2e.run, admission_e2e.FULL, admission_e2e.TINY),
    # scenario 1's policy edit alone (minutes), written into admission_e2e.json
    "admission_edit": (admission_e2e.run, admission_e2e.EDIT, admission_e2e.TINY_EDIT),
    "webhook": (webhook.run, webhook.FULL, webhook.TINY),
    "rollout": (rollout.run, rollout.FULL, rollout.TINY),
    "memory": (memory.run, memory.FULL, memory.TINY),
    "reloader": (reloader.run, reloader.FULL, reloader.TINY),
    "probewatch": (probewatch.run, probewatch.FULL, probewatch.TINY),
}


def wait_quiet(limit: float, threshold: float) -> None:
    deadline = time.monotonic() + limit
    while os.getloadavg()[0] >= threshold and time.monotonic() < deadline:
        log(f"load average {common.load_now()}: waiting for it to drop below {threshold}")
        time.sleep(15)
    if os.getloadavg()[0] >= threshold:
        log(f"WARNING: load average still {common.load_now()}; measuring anyway (recorded in the results)")


class Terminated(Exception):
    """The bench was sent SIGTERM or SIGHUP: raised where it was, so every control plane and
    process it started is stopped and the scenario is recorded as failed, not lost in silence."""


def _terminate(signum: int, _frame: object) -> None:
    raise Terminated(f"bench.run received {signal.Signals(signum).name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.run", description=__doc__.split("\n\n")[1])
    parser.add_argument("--scenarios", default="all", help="comma-separated, or 'all' (default)")
    parser.add_argument("--out", type=Path, default=common.RESULTS)
    parser.add_argument("--tiny", action="store_true", help="the smoke-test sizes: checks the scripts work")
    parser.add_argument("--wait-quiet", type=float, default=180.0, metavar="SECONDS")
    parser.add_argument("--quiet-load", type=float, default=1.0)
    args = parser.parse_args(argv)
    names = (
        [n for n in SCENARIOS if n != "admission_edit"]  # a part of admission_e2e
        if args.scenarios in ("all", "")
        else [n.strip() for n in args.scenarios.split(",")]
    )
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    args.out.mkdir(parents=True, exist_ok=True)
    failed = []
    began = time.monotonic()
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _terminate)
    for name in names:
        run, full, tiny = SCENARIOS[name]
        if not args.tiny:
            wait_quiet(args.wait_quiet, args.quiet_load)
        log(f"=== scenario {name} (load {common.load_now()})")
        started = time.monotonic()
        try:
            run(args.out, tiny if args.tiny else full)
        except Exception as exc:
            traceback.print_exc()
            failed.append(name)
            common.write_json(
                args.out,
                name,
                {"scenario": name, "error": f"{type(exc).__name__}: {exc}", "machine": common.machine()},
            )
            if isinstance(exc, Terminated):
                log(f"FAILED: {name} ({exc}); the scenarios after it not run")
                return 1
        log(f"=== scenario {name} took {time.monotonic() - started:.0f}s")
    try:
        plot.plot_all(args.out, [{"admission_edit": "admission_e2e"}.get(n, n) for n in names])
    except RuntimeError as exc:
        log(f"no plots: {exc}")
        failed.append("plots")
    path = summary.write(args.out)
    log(f"wrote {path}; all done in {time.monotonic() - began:.0f}s")
    if failed:
        log(f"FAILED: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
