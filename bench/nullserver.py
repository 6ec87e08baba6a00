"""The floor of scenario 2: an aiohttp HTTPS server that parses each AdmissionReview and admits it.

Same framework, TLS and JSON work as the real webhook, none of its decisions: the difference
between the two is what production-policy's own code costs. ``python -m bench.nullserver PORT CERT KEY``.
"""

from __future__ import annotations

import ssl
import sys

import pydantic_core
from aiohttp import web


async def _admit(request: web.Request) -> web.Response:
    review = pydantic_core.from_json(await request.read())
    uid = review["request"]["uid"]
    answer = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {"uid": uid, "allowed": True},
    }
    return web.Response(body=pydantic_core.to_json(answer), content_type="application/json")


async def _ok(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def main(argv: list[str]) -> int:
    port, cert, key = int(argv[0]), argv[1], argv[2]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    app = web.Application(client_max_size=3 * 1024 * 1024)
    app.router.add_get("/readyz", _ok)
    app.router.add_post("/{path:.*}", _admit)
    web.run_app(app, host="127.0.0.1", port=port, ssl_context=context, access_log=None, print=None)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
