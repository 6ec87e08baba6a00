"""The reads: the initial listings of policies and namespaces, paged list-then-watch of what the
controller follows itself (sources: ConfigMaps, Secrets; and the kubelet's Events), and one source
read by name.

They are read as raw JSON, not the client's models: a page of Secrets is parsed once and dropped.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from production_policy import GROUP, PLURAL, VERSION
from production_policy.kube.client import TIMEOUT, ApiClient, Watching, path
from production_policy.kube.errors import ApiError, Expired

CORE_PLURALS = {"ConfigMap": "configmaps", "Secret": "secrets", "Event": "events"}
"""The core/v1 kinds read here, by their plural in a path."""

LISTED = {kind: path("api", "v1", plural) for kind, plural in CORE_PLURALS.items()}
"""The ConfigMaps, the Secrets, or the core/v1 Events (the kubelet's), of every namespace."""


def list_policies(api: ApiClient) -> list[dict[str, Any]]:
    """Every ProductionPolicy object, as stored."""
    policies = api.request("GET", path("apis", GROUP, VERSION, PLURAL))
    return list(policies.get("items") or [])


def list_namespaces(api: ApiClient) -> list[tuple[str, Mapping[str, str]]]:
    """Every namespace's name and labels."""
    namespaces = api.request("GET", path("api", "v1", "namespaces"))
    return [
        (item["metadata"]["name"], item["metadata"].get("labels") or {})
        for item in namespaces.get("items") or []
    ]


def read_source(api: ApiClient, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    """One ConfigMap or Secret as stored (raw JSON), read afresh; None if there is none.

    A GET without a resourceVersion is a consistent read: the object as of the moment of the call.
    """
    try:
        found: dict[str, Any] = api.request(
            "GET", path("api", "v1", "namespaces", namespace, CORE_PLURALS[kind], name)
        )
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise
    return found


def list_page(
    api: ApiClient, kind: str, limit: int, token: str | None, field_selector: str
) -> dict[str, Any]:
    """One page of the objects of a kind of :data:`LISTED` in every namespace (raw JSON: items,
    metadata.continue), as ``field_selector`` selects them.

    :class:`Expired` when the continue token is too old.
    """
    query = {"limit": str(limit), "fieldSelector": field_selector}
    if token:
        query["continue"] = token
    try:
        page: dict[str, Any] = api.request("GET", LISTED[kind], query=query, timeout=TIMEOUT * 3)
    except ApiError as exc:
        if exc.status == 410:
            raise Expired(exc.reason) from None
        raise
    return page


class Watch:
    """One watch of a kind of :data:`LISTED` in every namespace at a time; stoppable from any thread."""

    def __init__(self, api: ApiClient, kind: str, field_selector: str) -> None:
        self._api = api
        self._path = LISTED[kind]
        self._field_selector = field_selector
        self._watching: Watching | None = None

    def events(self, resource_version: str, timeout_seconds: int) -> Iterator[tuple[str, dict[str, Any]]]:
        """(type, raw object) from ``resource_version`` on, for up to ``timeout_seconds``.

        Bookmarks included. :class:`Expired` when ``resource_version`` is too old to watch from.
        """
        query = {
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout_seconds),
            "fieldSelector": self._field_selector,
        }
        try:
            self._watching = self._api.watch(self._path, query, (TIMEOUT, timeout_seconds + 30))
        except ApiError as exc:
            if exc.status == 410:
                raise Expired(exc.reason) from None
            raise
        yield from self._watching

    def stop(self) -> None:
        """End the stream in progress, if any (its iterator then stops)."""
        if self._watching is not None:
            self._watching.stop()
