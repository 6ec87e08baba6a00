"""The reads: the initial listings of policies and namespaces, and paged list-then-watch of sources.

Sources (ConfigMaps, Secrets) are read as raw JSON, not the client's models: a page of Secrets is
parsed once and dropped.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from production_policy import GROUP, PLURAL, VERSION
from production_policy.kube.client import TIMEOUT, ApiClient
from production_policy.kube.errors import Expired


def list_policies(api: ApiClient) -> list[dict[str, Any]]:
    """Every ProductionPolicy object, as stored."""
    policies = client.CustomObjectsApi(api).list_cluster_custom_object(GROUP, VERSION, PLURAL)
    return list(policies.get("items", []))


def list_namespaces(api: ApiClient) -> list[tuple[str, Mapping[str, str]]]:
    """Every namespace's name and labels."""
    return [
        (namespace.metadata.name, namespace.metadata.labels or {})
        for namespace in client.CoreV1Api(api).list_namespace().items
    ]


def _source_lister(api: ApiClient, kind: str) -> Callable[..., Any]:
    core = client.CoreV1Api(api)
    listers: dict[str, Callable[..., Any]] = {
        "ConfigMap": core.list_config_map_for_all_namespaces,
        "Secret": core.list_secret_for_all_namespaces,
    }
    return listers[kind]


def list_page(
    api: ApiClient, kind: str, limit: int, token: str | None, field_selector: str
) -> dict[str, Any]:
    """One page of the ConfigMaps or Secrets of every namespace (raw JSON: items, metadata.continue).

    :class:`Expired` when the continue token is too old.
    """
    try:
        response = _source_lister(api, kind)(
            limit=limit,
            _continue=token,
            field_selector=field_selector,
            _preload_content=False,
            _request_timeout=TIMEOUT * 3,
        )
    except ApiException as exc:
        if exc.status == 410:
            raise Expired(str(exc.reason)) from None
        raise
    page: dict[str, Any] = json.loads(response.data)
    return page


class Watch:
    """One watch of the ConfigMaps or Secrets of every namespace at a time; stoppable from any thread."""

    def __init__(self, api: ApiClient, kind: str, field_selector: str) -> None:
        self._list = _source_lister(api, kind)
        self._field_selector = field_selector
        self._watch: watch.Watch | None = None

    def events(self, resource_version: str, timeout_seconds: int) -> Iterator[tuple[str, dict[str, Any]]]:
        """(type, raw object) from ``resource_version`` on, for up to ``timeout_seconds``.

        Bookmarks included. :class:`Expired` when ``resource_version`` is too old to watch from.
        """
        self._watch = watch.Watch()
        try:
            for event in self._watch.stream(
                self._list,
                resource_version=resource_version,
                allow_watch_bookmarks=True,
                timeout_seconds=timeout_seconds,
                field_selector=self._field_selector,
                _request_timeout=(TIMEOUT, timeout_seconds + 30),
            ):
                yield event["type"], event["raw_object"]
        except ApiException as exc:
            if exc.status == 410:
                raise Expired(str(exc.reason)) from None
            raise

    def stop(self) -> None:
        """End the stream in progress, if any (its iterator then stops)."""
        if self._watch is not None:
            self._watch.stop()
