"""A stopping webhook replica closes no connection the API server may be about to reuse.

The API server's Go client retries no POST it wrote on a kept-alive connection that the server
then closed (admission/server.py says why): so a stopping server closes a connection only right
after a response saying ``Connection: close``, or lets the client close it.
"""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from production_policy.admission import server
from production_policy.processes import runtime
from production_policy.processes.clusterview import ClusterView


def test_the_server_keeps_idle_connections_longer_than_the_api_server_does() -> None:
    assert server.KEEPALIVE_SECONDS > server.CLIENT_IDLE_SECONDS
    assert server.DRAIN_SECONDS > server.CLIENT_IDLE_SECONDS


@pytest.mark.parametrize(
    ("elapsed", "open_connections", "expected"),
    [
        (0.0, 0, False),  # kube-proxy may still send new connections here
        (server.ENDPOINTS_SECONDS, 0, True),
        (server.ENDPOINTS_SECONDS, 1, False),  # the client may still reuse it
        (server.DRAIN_SECONDS - 1, 3, False),
        (server.DRAIN_SECONDS, 3, True),  # any left idle since the stop began, the client has closed
    ],
)
def test_when_a_stopping_server_may_stop(elapsed: float, open_connections: int, expected: bool) -> None:
    assert server.drained(elapsed, open_connections) is expected


async def _get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> dict[str, str]:
    """One GET /healthz on a kept-alive connection; the response's headers."""
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: webhook\r\n\r\n")
    await writer.drain()
    head = (await reader.readuntil(b"\r\n\r\n")).decode()
    headers = dict(line.split(": ", 1) for line in head.split("\r\n")[1:] if line)
    await reader.readexactly(int(headers["Content-Length"]))
    return {name.lower(): value for name, value in headers.items()}


def test_a_draining_server_waits_for_the_idle_connection_and_closes_it_after_a_response(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(server, "ENDPOINTS_SECONDS", 0.0)

    async def scenario() -> None:
        runner = await server.serve(ClusterView(), "127.0.0.1", 0, None)
        port = runner.addresses[0][1]
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            assert "connection" not in await _get(reader, writer)  # kept alive
            draining = asyncio.create_task(server.drain(runner, poll=0.01))
            for _ in range(20):
                await asyncio.sleep(0.01)
            assert not draining.done(), "an idle connection the client may reuse is kept open"
            assert not reader.at_eof()
            assert (await _get(reader, writer))["connection"] == "close"
            assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by us, after the response
            await asyncio.wait_for(draining, 5)
            writer.close()
        finally:
            await runner.cleanup()

    asyncio.run(scenario())


def test_a_signal_runs_the_drain_before_the_stop_and_a_second_one_stops_at_once() -> None:
    async def scenario() -> None:
        stop = asyncio.Event()
        release = asyncio.Event()
        began: list[bool] = []

        async def before_stopping() -> None:
            began.append(True)
            await release.wait()

        runtime.stop_on_signal(stop, before_stopping)
        loop = asyncio.get_running_loop()
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(100):
                if began:
                    break
                await asyncio.sleep(0.01)
            assert began and not stop.is_set()
            release.set()
            await asyncio.wait_for(stop.wait(), 5)

            stop.clear()
            release.clear()
            os.kill(os.getpid(), signal.SIGINT)  # the second signal
            await asyncio.wait_for(stop.wait(), 5)
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)

    asyncio.run(scenario())
