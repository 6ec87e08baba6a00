"""The controller's own list-then-watch of ConfigMaps and Secrets: per-key digests, never values.

Not kopf indexes, on purpose. kopf holds every handler back until each indexed object is indexed,
with one toggle per object whose every change wakes every waiting worker: quadratic in the number
of objects (a controller over 30,000 objects was still busy after 5 minutes). Listing ourselves
tells us exactly when the initial listing is complete — the one thing the controller must know
before its first decision, so no workload is ever judged against half-listed sources.

Each kind is listed in pages and watched in a daemon thread of its own (the official client
blocks); digests are computed there too, so hashing 200 MB of Secret data never stalls the event
loop. Only digests cross over to the loop, where the cache lives.

A source can also be read by name (:meth:`SourceCache.read`, for a new workload's first baseline:
see :mod:`production_policy.engine.rollout.freshness`), and what the read brings is offered to the
cache, which takes it only if it is newer than what its watch has delivered. The watch then drops
its own delivery of a version the read already put in: by resourceVersion, the cache only moves
forward.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from production_policy import kube, metrics
from production_policy.engine import rollout
from production_policy.engine.digests import key_digests
from production_policy.engine.interning import shared

log = logging.getLogger(__name__)

SourceKey = tuple[str, str]
"""(namespace, name)."""
Entries = dict[str, dict[str, rollout.SourceData]]
"""The digests by namespace, then by name: one dict per namespace, rather than a key tuple per source."""
Read = tuple[str, rollout.SourceData]
"""A source read by name: its resourceVersion and its digests."""

PAGE_SIZE = 50
"""Objects per page of a listing. Small, so a page of large Secrets (up to 1 MiB each) stays a few
MB: freed pages leave the heap fragmented, so a big page leaves the process larger for good."""

WATCH_SECONDS = 300
RETRY_SECONDS = 5.0


def source_data(hmac_key: bytes, body: Mapping[str, Any]) -> rollout.SourceData:
    """The digests of a ConfigMap's or Secret's keys; the values are not kept, not even decoded."""
    data: dict[str, str] = {**(body.get("binaryData") or {}), **(body.get("data") or {})}
    annotations = (body.get("metadata") or {}).get("annotations") or {}
    return rollout.SourceData(
        rollout.compact(key_digests(hmac_key, data)), rollout.source_ignored(annotations)
    )


class SourceCache:
    """The digests of every ConfigMap (or every Secret) outside the ignored namespaces, kept current."""

    def __init__(
        self,
        kind: str,
        api: kube.ApiClient,
        ignored: frozenset[str],
        hmac_key: bytes,
        changed: Callable[[str, str, str], None],
    ) -> None:
        self.kind = kind
        self.synced = asyncio.Event()
        self._api = api
        # The API server leaves out the ignored namespaces: their data never even reaches us.
        self._selector = ",".join(f"metadata.namespace!={namespace}" for namespace in sorted(ignored))
        self._hmac_key = hmac_key
        self._changed = changed
        self._entries: Entries = {}
        self._watched: str | None = None
        """The resourceVersion of the listing or of the last watch event applied (None: not listed)."""
        self._ahead: dict[SourceKey, str] = {}
        """Sources read by name ahead of the watch: the version read, until the watch delivers it."""
        self._stopping = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watch = kube.Watch(api, kind, self._selector)

    def get(self, namespace: str, name: str) -> rollout.SourceData | None:
        """The digests of one source; None if it does not exist (or is not listed yet)."""
        return self._entries.get(namespace, {}).get(name)

    def __len__(self) -> int:
        return sum(map(len, self._entries.values()))

    def start(self) -> None:
        """List, then watch, in a daemon thread; ``synced`` is set once the first listing is in."""
        self._loop = asyncio.get_running_loop()
        threading.Thread(target=self._run, name=f"{self.kind} watch", daemon=True).start()

    def stop(self) -> None:
        self._stopping.set()
        self._watch.stop()

    def read(self, namespace: str, name: str) -> Read | None:
        """One source read afresh (blocking: call it in a worker thread); None if it does not exist.

        Its values are digested here and dropped, as in a listing.
        """
        body = kube.read_source(self._api, self.kind, namespace, name)
        if body is None:
            return None
        version = str((body.get("metadata") or {}).get("resourceVersion") or "")
        return version, source_data(self._hmac_key, body)

    # In the loop.

    def offer(self, namespace: str, name: str, read: Read) -> None:
        """Take what a read of one source brought, if it is newer than what the cache holds of it.

        (A source found missing is not offered: the watch delivers its deletion, in order.)
        """
        key = (shared(namespace), name)
        version, data = read
        if not rollout.read_is_news(version, watched=self._watched, ahead=self._ahead.get(key)):
            return
        self._ahead[key] = version
        self._store(key, data)

    def _replace(self, entries: Entries, version: str) -> None:
        # What was read after the listing stays: the listing is older.
        kept = {key: at for key, at in self._ahead.items() if rollout.newer(at, version)}
        for namespace, name in kept:
            data = self.get(namespace, name)
            if data is not None:
                entries.setdefault(namespace, {})[name] = data
        self._ahead, self._watched = kept, version
        before, self._entries = self._entries, entries
        if self.synced.is_set():  # a relisting: tell what changed while we were not watching
            for namespace in before.keys() | entries.keys():
                old, new = before.get(namespace, {}), entries.get(namespace, {})
                for name in old.keys() | new.keys():
                    if old.get(name) != new.get(name):
                        self._changed(namespace, self.kind, name)
        self.synced.set()

    def _put(self, key: SourceKey, data: rollout.SourceData | None, version: str) -> None:
        """A watch event: ``data`` (None: deleted) at ``version``."""
        self._watched = version
        ahead = self._ahead.get(key)
        if ahead is not None and not rollout.newer(ahead, version):
            del self._ahead[key]  # the watch has caught up with the read
        if not rollout.event_is_news(version, ahead=ahead):
            return  # a read put this version, or a newer one, in already
        self._store(key, data)

    def _store(self, key: SourceKey, data: rollout.SourceData | None) -> None:
        namespace, name = key
        if self.get(namespace, name) == data:
            return  # metadata only, or our own replay: nothing a workload can see changed
        if data is not None:
            self._entries.setdefault(namespace, {})[name] = data
        else:
            in_namespace = self._entries[namespace]
            del in_namespace[name]
            if not in_namespace:
                del self._entries[namespace]
        if self.synced.is_set():
            self._changed(namespace, self.kind, name)

    # In the thread.

    def _run(self) -> None:
        version: str | None = None
        while not self._stopping.is_set():
            try:
                if version is None:
                    entries, version = self._list_all()
                    self._post(self._replace, entries, version)
                version = self._watch_from(version)
            except kube.Expired:  # our version is too old to watch from: list afresh
                log.info("%s watch expired; listing them again", self.kind)
                version = None
            except Exception as exc:  # connection trouble: watch again from where we were
                self._failed(exc)

    def _failed(self, exc: Exception) -> None:
        if self._stopping.is_set():
            return  # the connection closed under us on purpose
        metrics.ERRORS.labels("rollout").inc()
        log.warning(
            "%ss: list or watch failed (%s); again in %.0fs",
            self.kind,
            kube.describe_error(exc),
            RETRY_SECONDS,
        )
        self._stopping.wait(RETRY_SECONDS)

    def _list_all(self) -> tuple[Entries, str]:
        entries: Entries = {}
        token: str | None = None
        while True:
            token, version = self._list_page(token, entries)
            if not token:
                release_freed_heap()  # the pages are gone (their values with them) by now
                return entries, version

    def _list_page(self, token: str | None, entries: Entries) -> tuple[str, str]:
        """One page into ``entries``; (the next page's token or "", the list's resourceVersion)."""
        page = kube.list_page(self._api, self.kind, PAGE_SIZE, token, self._selector)
        for item in page.get("items") or ():
            namespace, name = _key_of(item)
            entries.setdefault(namespace, {})[name] = source_data(self._hmac_key, item)
        metadata = page.get("metadata") or {}
        return metadata.get("continue") or "", metadata["resourceVersion"]

    def _watch_from(self, version: str) -> str:
        for event_type, body in self._watch.events(version, WATCH_SECONDS):
            version = (body.get("metadata") or {}).get("resourceVersion") or version
            if event_type in ("ADDED", "MODIFIED"):
                self._post(self._put, _key_of(body), source_data(self._hmac_key, body), version)
            elif event_type == "DELETED":
                self._post(self._put, _key_of(body), None, version)
            if self._stopping.is_set():
                break
        return version

    def _post(self, call: Callable[..., None], *args: Any) -> None:
        assert self._loop is not None
        try:
            self._loop.call_soon_threadsafe(call, *args)
        except RuntimeError:  # the loop is closed: we are shutting down
            self._stopping.set()


def release_freed_heap() -> None:
    """Give the C heap's free pages back to the system (glibc's ``malloc_trim``; elsewhere nothing).

    Values over 512 bytes (a Secret's data, say) live on the C heap, not in Python's own arenas,
    and glibc keeps what they leave free between longer-lived blocks for reuse: after a listing of
    large Secrets that is megabytes the process never needs again.
    """
    trim = getattr(ctypes.CDLL(None), "malloc_trim", None)
    if trim is not None:
        trim(0)


def _key_of(body: Mapping[str, Any]) -> SourceKey:
    metadata = body.get("metadata") or {}
    return shared(metadata.get("namespace") or ""), metadata.get("name") or ""
