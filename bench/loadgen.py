"""A load generator of AdmissionReviews over HTTPS, run as a process of its own (and pinned to a core).

``python -m bench.loadgen --url https://127.0.0.1:P --request /mutate-pods=FILE ... --rate R --duration D``

- ``--rate R`` (> 0): open loop. Request i is sent at ``start + i/R`` whatever happened before (each
  in a task of its own, waiting for a free connection if all are busy), so a server that falls
  behind shows it in its latencies (no coordinated omission). Latency counts from the moment the
  request's task starts; how late that was against its due time (the generator's own timer slack)
  is reported apart as ``send_lag``.
- ``--rate 0``: flat out. ``--connections`` workers send back to back on kept-alive connections.

Requests cycle through the given (path, body) pairs. Prints one JSON object on stdout. Bounded:
it stops at ``--duration`` seconds (plus ``--drain`` for answers still due) and never sends more than
``rate * duration`` requests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp


def _percentiles(values: list[float]) -> dict[str, float]:
    from bench.common import summary_ms

    return summary_ms(values)


async def _send(session: aiohttp.ClientSession, url: str, body: bytes) -> bool:
    async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as response:
        payload = await response.read()
        if response.status != 200:
            return False
        answer = json.loads(payload)
        return bool(answer.get("response", {}).get("uid"))


async def run(args: argparse.Namespace) -> dict[str, Any]:
    requests: list[tuple[str, bytes]] = []
    for spec in args.request:
        path, _, file = spec.partition("=")
        requests.append((args.url.rstrip("/") + path, Path(file).read_bytes()))
    context = ssl.create_default_context(cafile=args.cafile) if args.cafile else ssl.create_default_context()
    if not args.cafile:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    connector = aiohttp.TCPConnector(ssl=context, limit=args.connections, force_close=False)
    timeout = aiohttp.ClientTimeout(total=args.timeout)
    latencies: list[float] = []
    lags: list[float] = []
    errors: dict[str, int] = {}

    def failed(kind: str) -> None:
        errors[kind] = errors.get(kind, 0) + 1

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        # Open every connection (and its TLS handshake) before measuring.
        await asyncio.gather(*(_send(session, *requests[i % len(requests)]) for i in range(args.connections)))
        start = time.perf_counter()
        deadline = start + args.duration
        if args.rate > 0:
            total = int(args.rate * args.duration)
            pending: set[asyncio.Task[None]] = set()

            async def one(index: int, due: float) -> None:
                url, body = requests[index % len(requests)]
                began = time.perf_counter()
                lags.append(began - due)
                try:
                    ok = await _send(session, url, body)
                except (aiohttp.ClientError, TimeoutError) as exc:
                    failed(type(exc).__name__)
                    return
                if ok:
                    latencies.append(time.perf_counter() - began)
                else:
                    failed("bad answer")

            for index in range(total):
                due = start + index / args.rate
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                task = asyncio.create_task(one(index, due))
                pending.add(task)
                task.add_done_callback(pending.discard)
            if pending:
                await asyncio.wait(pending, timeout=args.drain)
            sent = total
        else:

            async def worker(offset: int) -> int:
                count = 0
                index = offset
                while time.perf_counter() < deadline and count < args.max_requests:
                    url, body = requests[index % len(requests)]
                    index += 1
                    began = time.perf_counter()
                    try:
                        ok = await _send(session, url, body)
                    except (aiohttp.ClientError, TimeoutError) as exc:
                        failed(type(exc).__name__)
                        continue
                    finally:
                        count += 1
                    if ok:
                        latencies.append(time.perf_counter() - began)
                    else:
                        failed("bad answer")
                return count

            counts = await asyncio.gather(*(worker(i) for i in range(args.connections)))
            sent = sum(counts)
        elapsed = time.perf_counter() - start
    return {
        "rate": args.rate or "flat out",
        "duration_s": args.duration,
        "connections": args.connections,
        "sent": sent,
        "answered": len(latencies),
        "errors": errors,
        "elapsed_s": round(elapsed, 3),
        "throughput_per_s": round(len(latencies) / elapsed if elapsed else 0.0, 1),
        "latency": _percentiles(latencies),
        "send_lag": _percentiles(lags) if lags else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.loadgen")
    parser.add_argument("--url", required=True)
    parser.add_argument("--request", action="append", required=True, metavar="PATH=FILE")
    parser.add_argument("--rate", type=float, default=0.0, help="requests per second; 0: flat out")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--cafile", default="")
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--drain", type=float, default=15.0)
    parser.add_argument("--max-requests", type=int, default=1_000_000, help="per connection, flat out")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args))
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
