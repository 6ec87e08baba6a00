"""The HTTPS server the API server calls: routing, TLS with reloadable files, and failure modes.

Why not kopf's own webhook server: it admits requests to unknown paths (a mistyped path in a
webhook configuration would silently turn enforcement off) and answers a malformed review with
a 5xx. Here an unknown path is refused, a malformed review gets a valid AdmissionReview denial,
a body that is not JSON gets a 400, and no traceback ever reaches a client.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import ssl
import time
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from production_policy import certs, metrics
from production_policy.admission import configuration, review, wire
from production_policy.admission.handlers import HANDLERS
from production_policy.processes.clusterview import ClusterView

log = logging.getLogger(__name__)

VIEW = web.AppKey("view", ClusterView)
MAX_BODY_BYTES = 3 * 1024 * 1024  # the API server's own request limit for an object

# Who closes a kept-alive connection matters. The API server's webhook client is Go's net/http
# Transport as client-go builds it (k8s.io/client-go/transport/cache.go, through apimachinery's
# SetTransportDefaults), speaking HTTP/1.1 to webhooks. When a server closes a connection the client
# holds idle, the close can cross a request the client has just written on it, and Go retries no
# POST once written (net/http shouldRetryRequest): that admission call fails with an EOF. Only two
# closes never race: the client's own, after its idle timeout, and ours right after a response
# that says ``Connection: close``.

CLIENT_IDLE_SECONDS = 90.0
"""How long the API server keeps an idle connection to a webhook: http.DefaultTransport's
IdleConnTimeout, which SetTransportDefaults gives the webhook client."""

KEEPALIVE_SECONDS = CLIENT_IDLE_SECONDS + 30
"""How long we keep an idle connection: longer than the client does, so the client closes it."""

DRAIN_SECONDS = CLIENT_IDLE_SECONDS + 10
"""The longest a stopping server answers on: by then the client has closed every connection left
idle since the stop began, and every connection used since was closed after its response."""

ENDPOINTS_SECONDS = 5.0
"""The shortest a stopping server keeps listening: the Service sends new connections to a
terminating pod until kube-proxy has seen its endpoint go, and a refused one fails its call."""


def drained(elapsed: float, open_connections: int) -> bool:
    """Whether a server stopping for ``elapsed`` seconds, with ``open_connections``, may stop now."""
    return elapsed >= DRAIN_SECONDS or (elapsed >= ENDPOINTS_SECONDS and open_connections == 0)


@dataclass
class Stopping:
    """Whether the server is stopping: from then on every response closes its connection."""

    began: float | None = None


STOPPING = web.AppKey("stopping", Stopping)


@dataclass(frozen=True)
class TLSFiles:
    """The serving certificate and key, as mounted files that may be rotated."""

    cert: Path
    key: Path

    def mtimes(self) -> tuple[float, float]:
        return (self.cert.stat().st_mtime, self.key.stat().st_mtime)


def ssl_context(files: TLSFiles) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    _load(context, files)
    return context


def _load(context: ssl.SSLContext, files: TLSFiles) -> None:
    context.load_cert_chain(files.cert, files.key)
    expires = certs.not_valid_after(files.cert.read_bytes())
    metrics.CERTIFICATE_EXPIRY.set((expires - datetime.datetime.now(datetime.UTC)).total_seconds())


async def reload_when_rotated(context: ssl.SSLContext, files: TLSFiles, interval: float) -> None:
    """Load a rotated certificate into the live context: new handshakes use it, no restart."""
    seen = files.mtimes()
    while True:
        await asyncio.sleep(interval)
        try:
            current = files.mtimes()
            if current != seen:
                _load(context, files)
                seen = current
                log.info("reloaded the serving certificate from %s", files.cert)
        except (OSError, ssl.SSLError) as exc:
            # A rotation caught half-written: keep serving the old pair and look again.
            log.warning("could not reload the serving certificate yet: %s", exc)


async def _admission(request: web.Request) -> web.Response:
    started = time.perf_counter()
    answer, parsed = await _answer(request)
    webhook = request.path if request.path in HANDLERS else "unknown"
    metrics.ADMISSION_REQUESTS.labels(
        webhook, parsed.kind if parsed else "", parsed.operation if parsed else "", review.decision(answer)
    ).inc()
    metrics.ADMISSION_SECONDS.labels(webhook).observe(time.perf_counter() - started)
    if answer is None:
        return web.Response(body=wire.encode(NOT_JSON), status=400, content_type="application/json")
    return web.Response(body=wire.encode(answer), content_type="application/json")


NOT_JSON = {"error": "the body is not JSON"}
"""The answer to a body that is not JSON: no AdmissionReview can be, not even a refusal's uid."""


async def _answer(request: web.Request) -> tuple[review.Answer | None, review.ReviewRequest | None]:
    """The AdmissionReview to send back; None for a body that is not JSON."""
    view: ClusterView = request.app[VIEW]
    raw = await request.read()
    try:
        body = wire.decode(raw)
    except (ValueError, UnicodeDecodeError):
        return None, None
    uid = review.uid_of(body)
    handler = HANDLERS.get(request.path)
    if handler is None:
        message = f"path {request.path} is not served by production-policy"
        return review.deny(uid, message, code=404, reason="NotFound"), None
    try:
        parsed = review.parse(body)
    except review.MalformedReview as exc:
        return review.deny(uid, f"malformed AdmissionReview: {exc}", code=400, reason="BadRequest"), None
    try:
        return handler(parsed, view), parsed
    except Exception:
        metrics.ERRORS.labels("admission").inc()
        log.exception(
            "internal error on %s for %s %s/%s", request.path, parsed.kind, parsed.namespace, parsed.name
        )
    if request.path == configuration.MUTATE_PODS:
        # Mutation is best effort (failurePolicy Ignore): admit unchanged; validation still runs.
        return review.allow(parsed.uid, warnings=["production-policy could not inject defaults"]), parsed
    message = "production-policy could not evaluate this request"
    return review.deny(parsed.uid, message, code=500, reason="InternalError"), parsed


async def _healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def _readyz(request: web.Request) -> web.Response:
    view: ClusterView = request.app[VIEW]
    if not view.synced:
        return web.Response(status=503, text="policies and namespaces not loaded yet")
    return web.Response(text="ok")


async def _close_when_stopping(request: web.Request, response: web.StreamResponse) -> None:
    # Runs after aiohttp chose the response's headers: the header is set here, and force_close()
    # makes aiohttp close the connection once the response is sent.
    if request.app[STOPPING].began is not None:
        response.headers["Connection"] = "close"
        response.force_close()


def build_app(view: ClusterView) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[VIEW] = view
    app[STOPPING] = Stopping()
    app.on_response_prepare.append(_close_when_stopping)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    app.router.add_post("/{path:.*}", _admission)
    return app


async def serve(view: ClusterView, host: str, port: int, context: ssl.SSLContext | None) -> web.AppRunner:
    """Start serving; the caller keeps the runner, may ``drain`` it, and calls ``cleanup()`` to stop."""
    runner = web.AppRunner(
        build_app(view), access_log=None, handle_signals=False, keepalive_timeout=KEEPALIVE_SECONDS
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=context, reuse_address=True)
    await site.start()
    log.info("serving admission on %s://%s:%d", "https" if context else "http", host, port)
    return runner


async def drain(runner: web.AppRunner, poll: float = 0.5) -> None:
    """Answer on, each response closing its connection, until no connection is left open (the
    client closes the idle ones) or ``DRAIN_SECONDS`` have passed; then ``cleanup()`` may close."""
    loop = asyncio.get_running_loop()
    stopping = runner.app[STOPPING]
    stopping.began = loop.time()
    assert runner.server is not None, "drain() is for a runner that serve() set up"
    log.info(
        "stopping: %d connections open, each closed after its next response", len(runner.server.connections)
    )
    while not drained(loop.time() - stopping.began, len(runner.server.connections)):
        await asyncio.sleep(poll)
    left = len(runner.server.connections)
    log.info("drained after %.1fs, %d connections left open", loop.time() - stopping.began, left)
