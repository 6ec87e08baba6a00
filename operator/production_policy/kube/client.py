"""The door's own HTTP client of the API server: JSON in, plain data out, over one connection pool.

Not the official ``kubernetes`` client: importing ``kubernetes.client`` loads every model class it
has (about 1,000 modules, some 40 MiB of RSS in each long-running process), and the door needs
none of them: it reads and writes a handful of paths as JSON. The credentials are kopf's login
(the ServiceAccount in a pod, otherwise the kubeconfig), so our calls and kopf's watches are made
as the same identity and need the same kind of kubeconfig.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote, urlencode

import kopf
import urllib3
import yaml

from production_policy.engine.preconditions import IN_CLUSTER
from production_policy.kube.errors import ApiError, Expired

TIMEOUT = 10.0
"""Seconds for one short call (a read or a write of one object): a slow API server delays our
work but never wedges it."""

USER_AGENT = "production-policy"

RETRIES = urllib3.Retry(
    total=4,
    connect=2,
    read=0,
    redirect=0,
    status=3,
    status_forcelist={429},
    allowed_methods=None,
    backoff_factor=0.5,
    raise_on_status=False,
)
"""What the pool retries by itself: a connection that could not be opened (nothing was sent), and a
429 (the API server's flow control turned the request away before handling it; its Retry-After is
respected), whatever the verb. Never a request that may have been handled."""

Timeout = float | tuple[float, float]
"""Seconds, or (to connect, between two reads)."""


def kopf_login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """kopf's login: the ServiceAccount in a pod, otherwise the kubeconfig."""
    return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)


class NoCredentials(RuntimeError):
    """No credentials could be read: no ServiceAccount token and no kubeconfig, or one that cannot be read."""


SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"


def login_origin() -> str:
    """Where :func:`kopf_login` takes the credentials from (as kopf looks): ``the in-cluster
    ServiceAccount``, ``KUBECONFIG=<its value>`` or ``~/.kube/config``; "" when there is none."""
    if os.path.exists(SERVICE_ACCOUNT_TOKEN):
        return IN_CLUSTER
    if os.environ.get("KUBECONFIG"):
        return f"KUBECONFIG={os.environ['KUBECONFIG']}"
    return "~/.kube/config" if os.path.exists(os.path.expanduser("~/.kube/config")) else ""


def _login() -> kopf.ConnectionInfo:
    try:
        info = kopf_login(settings=kopf.OperatorSettings())  # of the settings, only trust_env is read
    except (OSError, ValueError, KeyError, TypeError, AttributeError, yaml.YAMLError, kopf.LoginError) as exc:
        # kopf reads the kubeconfig as it is: a missing file, bad YAML or a context naming no
        # cluster ends here.
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else f"{type(exc).__name__}: {exc}"
        raise NoCredentials(reason[:1].lower() + reason[1:]) from None
    if info is None:
        raise NoCredentials("neither a ServiceAccount token nor a kubeconfig was found")
    return info


def path(*segments: str) -> str:
    """An API path from its segments, each quoted (names cannot smuggle a ``/`` or a ``?`` in)."""
    return "/" + "/".join(quote(segment, safe="") for segment in segments)


class ApiClient:
    """A pool of connections to the API server, with kopf's credentials (renewed after a 401)."""

    def __init__(self, connections: int = 10) -> None:
        self._connections = connections
        self._lock = threading.Lock()
        self._connect(_login())

    def _connect(self, info: kopf.ConnectionInfo) -> None:
        self.server = info.server.rstrip("/")
        self._headers = {"User-Agent": USER_AGENT, "Accept": "application/json", **info.as_http_headers()}
        self._pool = urllib3.PoolManager(
            num_pools=2,
            maxsize=self._connections,
            ssl_context=info.as_ssl_context(),
            retries=RETRIES,
        )

    def close(self) -> None:
        self._pool.clear()

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        timeout: Timeout = TIMEOUT,
    ) -> Any:
        """One call; its answer parsed from JSON (None if empty). :class:`ApiError` on an error status."""
        response = self.exchange(
            method, path, query=query, body=body, content_type=content_type, timeout=timeout
        )
        if response.status >= 400:
            raise ApiError(response.status, response.reason or "")
        return json.loads(response.data) if response.data else None

    def exchange(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        timeout: Timeout = TIMEOUT,
        retries: urllib3.Retry | bool = RETRIES,
    ) -> urllib3.BaseHTTPResponse:
        """One call whose error answers are answers too (status, body, headers); for callers that
        need the API server's own message or its Warning headers. ``retries=False``: one attempt,
        its connection error raised as it is."""
        return self._send(method, path, query, body, content_type, timeout, stream=False, retries=retries)

    def watch(self, path: str, query: Mapping[str, str], timeout: Timeout) -> Watching:
        """A watch of ``path``; iterate its events, ``stop()`` it from any thread."""
        response = self._send("GET", path, {**query, "watch": "1"}, None, "", timeout, stream=True)
        if response.status >= 400:
            response.release_conn()
            raise ApiError(response.status, response.reason or "")
        return Watching(response)

    def _send(
        self,
        method: str,
        path: str,
        query: Mapping[str, str] | None,
        body: Any,
        content_type: str,
        timeout: Timeout,
        stream: bool,
        retries: urllib3.Retry | bool = RETRIES,
    ) -> urllib3.BaseHTTPResponse:
        connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
        url = self.server + path + (f"?{urlencode(query)}" if query else "")
        data = None if body is None else json.dumps(body).encode()
        for attempt in (1, 2):
            headers = dict(self._headers)
            if data is not None:
                headers["Content-Type"] = content_type
            response = self._pool.request(
                method,
                url,
                body=data,
                headers=headers,
                timeout=urllib3.Timeout(connect=connect, read=read),
                preload_content=not stream,
                redirect=False,
                retries=retries,
            )
            if response.status == 401 and attempt == 1:
                # The ServiceAccount token was rotated under us (bound tokens live an hour): log in
                # again, once.
                response.release_conn()
                with self._lock:
                    self._connect(_login())
                continue
            return response
        raise AssertionError("unreachable")


class Watching:
    """The events of one watch, as (type, object); ends when the server ends the watch."""

    def __init__(self, response: urllib3.BaseHTTPResponse) -> None:
        self._response = response
        self._stopped = False

    def __iter__(self) -> Iterator[tuple[str, dict[str, Any]]]:
        buffered = b""
        try:
            for chunk in self._response.stream(64 * 1024):
                buffered += chunk
                *lines, buffered = buffered.split(b"\n")
                for line in lines:
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    if event.get("type") == "ERROR":
                        # Errors after the watch began arrive as an event carrying a Status.
                        status = event.get("object") or {}
                        if status.get("code") == 410:
                            raise Expired(str(status.get("reason") or "Expired"))
                        raise ApiError(int(status.get("code") or 500), str(status.get("reason") or ""))
                    yield event["type"], event["object"]
        except (urllib3.exceptions.HTTPError, OSError):
            if not self._stopped:
                raise
        finally:
            self._response.release_conn()

    def stop(self) -> None:
        """End the watch from any thread; its iterator then stops."""
        self._stopped = True
        self._response.shutdown()


def api_client(connections: int | None = None) -> ApiClient:
    """A client as kopf logs in: in a pod the ServiceAccount, elsewhere $KUBECONFIG or ~/.kube/config.

    ``connections``: how many calls may be in flight at once.
    """
    return ApiClient(connections or 10)
