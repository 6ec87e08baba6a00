"""The kubelet's probe Events, listed then watched in a thread of their own, reduced as they arrive.

Two watches of core/v1 Events, one per reason (``Unhealthy``, ``Killing``): a field selector
cannot say "either", and one on the kubelet as source would bring every Pulled, Created and
Started of every pod. The API server also leaves out Events about anything but pods and those in
the ignored namespaces. Each Event is reduced in the thread (:func:`engine.probewatch.kubelet_report`)
and only the report crosses to the event loop: nothing of an Event is kept but what a decision reads.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from production_policy import kube, metrics
from production_policy.engine import probewatch

log = logging.getLogger(__name__)

PAGE_SIZE = 250
WATCH_SECONDS = 300
RETRY_SECONDS = 5.0


def field_selector(reason: str, ignored: Iterable[str]) -> str:
    """The field selector of the watch of one reason's Events about pods outside ``ignored``."""
    return ",".join(
        [f"reason={reason}", "involvedObject.kind=Pod"]
        + [f"metadata.namespace!={namespace}" for namespace in sorted(ignored)]
    )


class KubeletEvents:
    """The ``Unhealthy`` and ``Killing`` Events of the watched namespaces, told to ``reported``."""

    def __init__(
        self,
        api: kube.ApiClient,
        ignored: frozenset[str],
        reported: Callable[[probewatch.KubeletReport], None],
    ) -> None:
        self._api = api
        self._reported = reported
        self._stopping = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._selectors = [field_selector(reason, ignored) for reason in probewatch.KUBELET_REASONS]
        self._watches = [kube.Watch(api, "Event", selector) for selector in self._selectors]

    def start(self) -> None:
        """List, then watch, each reason in a daemon thread."""
        self._loop = asyncio.get_running_loop()
        for reason, selector, watch in zip(
            probewatch.KUBELET_REASONS, self._selectors, self._watches, strict=True
        ):
            threading.Thread(
                target=self._run, args=(selector, watch), name=f"{reason} Events watch", daemon=True
            ).start()

    def stop(self) -> None:
        """End the watches (their threads then stop)."""
        self._stopping.set()
        for watch in self._watches:
            watch.stop()

    def close(self) -> None:
        """Let go of the API client."""
        self._api.close()

    # In the threads.

    def _run(self, selector: str, watch: kube.Watch) -> None:
        version: str | None = None
        while not self._stopping.is_set():
            try:
                if version is None:
                    version = self._list_all(selector)
                version = self._watch_from(watch, version)
            except kube.Expired:  # too old to watch from: list afresh (the reports keep the latest)
                version = None
            except Exception as exc:  # connection trouble: watch again from where we were
                if self._stopping.is_set():
                    return  # the connection closed under us on purpose
                metrics.ERRORS.labels("probewatch").inc()
                log.warning(
                    "kubelet Events: list or watch failed (%s); again in %.0fs",
                    kube.describe_error(exc),
                    RETRY_SECONDS,
                )
                self._stopping.wait(RETRY_SECONDS)

    def _list_all(self, selector: str) -> str:
        token: str | None = None
        while True:
            page = kube.list_page(self._api, "Event", PAGE_SIZE, token, selector)
            for item in page.get("items") or ():
                self._take(item)
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return str(page["metadata"]["resourceVersion"])

    def _watch_from(self, watch: kube.Watch, version: str) -> str:
        for event_type, body in watch.events(version, WATCH_SECONDS):
            version = (body.get("metadata") or {}).get("resourceVersion") or version
            if event_type in ("ADDED", "MODIFIED"):
                self._take(body)
            if self._stopping.is_set():
                break
        return version

    def _take(self, body: dict[str, Any]) -> None:
        report = probewatch.kubelet_report(body)
        if report is None:
            return
        assert self._loop is not None
        try:
            self._loop.call_soon_threadsafe(self._reported, report)
        except RuntimeError:  # the loop is closed: we are shutting down
            self._stopping.set()
