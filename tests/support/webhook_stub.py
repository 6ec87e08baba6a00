"""A tiny admission webhook over TLS, to prove the API server really calls a local process."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from production_policy import certs

DENY_LABEL = "smoke-deny"


@dataclass
class StubWebhook:
    """Records every AdmissionReview; denies pods labelled ``smoke-deny``."""

    url: str
    ca_pem: bytes
    calls: list[dict[str, Any]] = field(default_factory=list)


@contextmanager
def serve_stub(workdir: Path) -> Iterator[StubWebhook]:
    ca = certs.make_ca("stub-ca")
    serving = certs.issue_serving(ca, ("127.0.0.1",))
    serving.write(workdir / "tls.crt", workdir / "tls.key")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(workdir / "tls.crt", workdir / "tls.key")
    calls: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            calls.append(review)
            request = review["request"]
            labels = (request.get("object") or {}).get("metadata", {}).get("labels") or {}
            response: dict[str, Any] = {"uid": request["uid"], "allowed": DENY_LABEL not in labels}
            if not response["allowed"]:
                response["status"] = {"code": 403, "message": "denied by the smoke-test webhook"}
            body = json.dumps(
                {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield StubWebhook(f"https://127.0.0.1:{server.server_address[1]}/validate", ca.cert_pem, calls)
    finally:
        server.shutdown()
        server.server_close()
