"""The probes a command makes before it starts: does the API server answer, does it serve our CRD,
who are we, may we do what we need. Each answers plain data; none raises for the answer it probes.
"""

from __future__ import annotations

import socket
import ssl
import time
from dataclasses import dataclass
from typing import Any

import urllib3

from production_policy.engine.preconditions import Access
from production_policy.kube.client import ApiClient, path
from production_policy.kube.errors import ApiError


@dataclass(frozen=True)
class Reach:
    """How ``GET /version`` went: the HTTP status, or why there was none."""

    status: int | None
    error: str | None = None


def reach(api: ApiClient, attempts: int = 3, pause: float = 0.5) -> Reach:
    """Whether the API server answers at all (``/version`` is readable by anyone it authenticates).

    Tried ``attempts`` times, ``pause`` seconds apart and doubling, without the pool's retries
    (which log a warning each): the answer is this probe's to say.
    """
    error = ""
    for attempt in range(attempts):
        if attempt:
            time.sleep(pause * 2 ** (attempt - 1))
        try:
            return Reach(api.exchange("GET", "/version", retries=False).status)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            error = unreachable(exc)
    return Reach(None, error)


def unreachable(exc: BaseException) -> str:
    """Why a request never got an answer, in a few words: ``connection refused``, ``timed out``,
    ``TLS: certificate verify failed``..."""
    reason: BaseException = getattr(exc, "reason", None) or exc  # MaxRetryError wraps the last error
    tls = next((e for e in _chain(reason) if isinstance(e, ssl.SSLError)), None)
    if tls is not None or isinstance(reason, urllib3.exceptions.SSLError):
        return f"TLS: {getattr(tls, 'reason', None) or tls or reason}".replace("_", " ").lower()
    for error in _chain(reason):  # the system's own words: "Connection refused", "Name or service not known"
        if isinstance(error, OSError) and error.strerror:
            return error.strerror[:1].lower() + error.strerror[1:]
    if isinstance(reason, urllib3.exceptions.TimeoutError | socket.timeout):
        return "timed out"
    return str(reason)


def _chain(error: BaseException | None) -> list[BaseException]:
    """The error and its causes, outermost first."""
    found: list[BaseException] = []
    while error is not None and error not in found:
        found.append(error)
        error = error.__cause__ or error.__context__
    return found


def serves(api: ApiClient, group: str, version: str, plural: str) -> bool | None:
    """Whether the API server serves ``plural`` in ``group/version`` (discovery: any authenticated
    identity may read it); None when it does not say (an error other than "not found")."""
    try:
        found: dict[str, Any] = api.request("GET", path("apis", group, version))
    except ApiError as exc:
        return False if exc.status == 404 else None
    except (urllib3.exceptions.HTTPError, OSError):
        return None
    return any(resource.get("name") == plural for resource in found.get("resources") or [])


def whoami(api: ApiClient) -> str | None:
    """The username the API server knows us by (SelfSubjectReview); None if it will not say."""
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    try:
        answer = api.request(
            "POST", path("apis", "authentication.k8s.io", "v1", "selfsubjectreviews"), body=review
        )
    except (ApiError, urllib3.exceptions.HTTPError, OSError):
        return None
    username = ((answer or {}).get("status") or {}).get("userInfo", {}).get("username")
    return str(username) if username else None


def allowed(api: ApiClient, access: Access) -> bool | None:
    """Whether we may do ``access`` (SelfSubjectAccessReview); None if the review itself is refused."""
    attributes = {
        "verb": access.verb,
        "resource": access.resource,
        "group": access.group,
        "namespace": access.namespace,
        "name": access.name,
        "subresource": access.subresource,
    }
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {
            "resourceAttributes": {key: value for key, value in attributes.items() if value is not None}
        },
    }
    try:
        answer = api.request(
            "POST", path("apis", "authorization.k8s.io", "v1", "selfsubjectaccessreviews"), body=review
        )
    except (ApiError, urllib3.exceptions.HTTPError, OSError):
        return None
    return bool(((answer or {}).get("status") or {}).get("allowed"))
