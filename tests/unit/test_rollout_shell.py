"""The shell's own bookkeeping, without a cluster: the workload store and what is kept of a source."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import cast

import pytest

from production_policy import kube
from production_policy.engine import SourceRef
from production_policy.processes.options import ControllerOptions
from production_policy.rollout import sources
from production_policy.rollout.sources import SourceCache, source_data
from production_policy.rollout.store import WorkloadStore
from tests.support.rollout import facts

NO_API = cast(kube.ApiClient, SimpleNamespace(close=lambda: None))
"""Where the API client goes; these tests replace every call that would use it."""

KEY = b"k" * 32


def test_the_store_indexes_workloads_by_source_and_namespace() -> None:
    store = WorkloadStore()
    cm = SourceRef("ConfigMap", "app", None, False)
    secret = SourceRef("Secret", "db", frozenset({"password"}), False)
    store.put(facts(name="a", references=(cm, secret)))
    store.put(facts(name="b", references=(cm,)))
    store.put(facts(name="c", namespace="other", references=(cm,)))
    a, b, c = (
        ("Deployment", namespace, name) for namespace, name in (("shop", "a"), ("shop", "b"), ("other", "c"))
    )
    assert store.referrers(("shop", "ConfigMap", "app")) == {a, b}
    assert store.referrers(("shop", "Secret", "db")) == {a}
    assert store.in_namespace("shop") == {a, b} and len(store) == 3
    # A new version replaces the old one's references.
    store.put(facts(name="a", references=(secret,)))
    assert store.referrers(("shop", "ConfigMap", "app")) == {b}
    store.remove(a)
    store.remove(a)  # twice is fine
    assert store.referrers(("shop", "Secret", "db")) == set() and store.get(a) is None
    assert store.in_namespace("shop") == {b}
    # Nothing is left of the references that went.
    assert store._referrers == {("shop", "ConfigMap"): {"app": b}, ("other", "ConfigMap"): {"app": c}}


def test_a_source_keeps_its_referrers_however_many_come_and_go() -> None:
    store = WorkloadStore()
    cm = SourceRef("ConfigMap", "app", None, False)
    keys = [("Deployment", "shop", name) for name in ("a", "b", "c")]
    for _, _, name in keys:
        store.put(facts(name=name, references=(cm,)))
    store.put(facts(name="a", references=(cm,)))  # a new version of a referrer
    assert store.referrers(("shop", "ConfigMap", "app")) == set(keys)
    store.remove(keys[0])
    assert store.referrers(("shop", "ConfigMap", "app")) == set(keys[1:])
    store.remove(keys[1])
    assert store.referrers(("shop", "ConfigMap", "app")) == {keys[2]}
    store.put(facts(name="a", references=(cm,)))
    assert store.referrers(("shop", "ConfigMap", "app")) == {keys[0], keys[2]}
    for key in keys:
        store.remove(key)
    assert store.referrers(("shop", "ConfigMap", "app")) == set() and not store._referrers


def test_only_digests_are_kept_of_a_source() -> None:
    body = {
        "metadata": {"annotations": {"productionpolicy.dev/ignore": "true"}},
        "data": {"password": "aHVudGVyMg=="},
        "binaryData": {"blob": "AAEC"},
    }
    data = source_data(KEY, body)
    assert data.ignored and set(data.digests) == {"password", "blob"}
    assert "aHVudGVyMg==" not in repr(data) and "hunter2" not in repr(data)
    assert source_data(KEY, {}).digests == {}


def test_the_operator_namespace_is_always_ignored() -> None:
    options = ControllerOptions(operator_namespace="ops", ignored_namespaces=frozenset({"kube-system"}))
    assert options.all_ignored_namespaces == {"ops", "kube-system"}


def _cache(changed: list[tuple[str, str, str]]) -> SourceCache:
    # No request is made: the list and watch run only once started.
    return SourceCache(
        "ConfigMap", NO_API, frozenset({"kube-system", "ops"}), KEY, lambda *a: changed.append(a)
    )


def test_a_source_cache_tells_only_real_changes_and_only_once_listed() -> None:
    async def scenario() -> None:
        changed: list[tuple[str, str, str]] = []
        cache = _cache(changed)
        a, b = source_data(KEY, {"data": {"k": "1"}}), source_data(KEY, {"data": {"k": "2"}})
        cache._put(("shop", "early"), a, "3")  # a watch event racing the first listing: not told
        assert not cache.synced.is_set() and changed == []
        cache._replace({"shop": {"app": a, "db": a}}, "4")
        assert cache.synced.is_set() and changed == [] and len(cache) == 2
        assert cache.get("shop", "early") is None  # the listing is the truth
        cache._put(("shop", "app"), a, "5")  # same digests (metadata only): nothing to tell
        assert changed == []
        cache._put(("shop", "app"), b, "6")
        cache._put(("shop", "db"), None, "7")
        cache._put(("shop", "gone"), None, "8")  # never seen, deleted: nothing to tell
        assert changed == [("shop", "ConfigMap", "app"), ("shop", "ConfigMap", "db")]
        assert cache.get("shop", "app") == b and cache.get("shop", "db") is None
        changed.clear()
        # A relisting (after the watch expired) tells what changed while not watching.
        cache._replace({"shop": {"app": a, "new": b}, "other": {"app": a}}, "20")
        assert sorted(changed) == [
            ("other", "ConfigMap", "app"),
            ("shop", "ConfigMap", "app"),
            ("shop", "ConfigMap", "new"),
        ]
        cache._put(("other", "app"), None, "21")  # the last of its namespace: nothing is left of it
        assert "other" not in cache._entries and len(cache) == 2

    asyncio.run(scenario())


def test_a_source_cache_only_moves_forward_whatever_a_read_or_the_watch_brings() -> None:
    async def scenario() -> None:
        changed: list[tuple[str, str, str]] = []
        cache = _cache(changed)
        v0, v1, v2 = (source_data(KEY, {"data": {"k": value}}) for value in ("0", "1", "2"))
        cache._replace({"shop": {"app": v0}}, "10")
        # A read ahead of the watch (the change at 12 is not delivered yet) is taken, and told.
        cache.offer("shop", "app", ("12", v1))
        assert cache.get("shop", "app") == v1 and changed == [("shop", "ConfigMap", "app")]
        changed.clear()
        cache._put(("shop", "other"), v0, "11")  # another source's event before it: no effect on it
        cache.offer("shop", "app", ("12", v1))  # read twice: nothing new
        cache._put(("shop", "app"), v0, "11")  # an older version: dropped
        cache._put(("shop", "app"), v1, "12")  # the very version read: the watch caught up
        assert cache.get("shop", "app") == v1 and changed == [("shop", "ConfigMap", "other")]
        assert cache._ahead == {}
        cache._put(("shop", "app"), v2, "13")  # past the read: the watch's news again
        assert cache.get("shop", "app") == v2 and changed[-1] == ("shop", "ConfigMap", "app")
        changed.clear()
        # A read the watch has passed (its answer overtaken by a change or a deletion) is not taken.
        cache.offer("shop", "app", ("12", v1))
        cache._put(("shop", "app"), None, "14")
        cache.offer("shop", "app", ("13", v2))
        assert cache.get("shop", "app") is None and changed == [("shop", "ConfigMap", "app")]
        # Reads before the first listing, or newer than a relisting, stay; older ones go.
        fresh = _cache([])
        fresh.offer("shop", "new", ("30", v1))
        fresh.offer("shop", "old", ("20", v1))
        fresh._replace({"shop": {"old": v0}}, "25")
        assert fresh.get("shop", "new") == v1 and fresh.get("shop", "old") == v0
        assert fresh._ahead == {("shop", "new"): "30"}
        fresh._put(("shop", "new"), v0, "29")  # a change the read had overtaken: dropped
        assert fresh.get("shop", "new") == v1

    asyncio.run(scenario())


def test_a_source_read_afresh_keeps_digests_only(monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> None:
        cache = _cache([])
        bodies: dict[str, dict[str, object]] = {
            "app": {"metadata": {"resourceVersion": "42"}, "data": {"password": "aHVudGVyMg=="}}
        }
        asked: list[tuple[str, str, str]] = []

        def read_source(_api: object, kind: str, namespace: str, name: str) -> dict[str, object] | None:
            asked.append((kind, namespace, name))
            return bodies.get(name)

        monkeypatch.setattr(kube, "read_source", read_source)
        read = cache.read("shop", "app")
        assert read is not None and read[0] == "42" and set(read[1].digests) == {"password"}
        assert "aHVudGVyMg==" not in repr(read) and "hunter2" not in repr(read)
        assert cache.read("shop", "gone") is None
        assert asked == [("ConfigMap", "shop", "app"), ("ConfigMap", "shop", "gone")]

    asyncio.run(scenario())


def test_a_source_cache_never_asks_for_the_ignored_namespaces() -> None:
    async def scenario() -> None:
        assert _cache([])._selector == "metadata.namespace!=kube-system,metadata.namespace!=ops"

    asyncio.run(scenario())


def test_an_expired_watch_lists_again_and_a_failure_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> None:
        changed: list[tuple[str, str, str]] = []
        cache = _cache(changed)
        calls: list[str] = []
        monkeypatch.setattr(sources, "RETRY_SECONDS", 0.01)

        def list_all() -> tuple[sources.Entries, str]:
            calls.append("list")
            return {"shop": {"app": source_data(KEY, {"data": {"k": str(len(calls))}})}}, "7"

        def watch_from(version: str) -> str:
            calls.append(f"watch {version}")
            if len(calls) == 2:
                raise kube.Expired("410")  # too old: list again
            if len(calls) == 4:
                raise ConnectionError("reset")  # trouble: watch again from the same version
            cache._stopping.set()
            return version

        monkeypatch.setattr(cache, "_list_all", list_all)
        monkeypatch.setattr(cache, "_watch_from", watch_from)
        cache.start()
        await asyncio.wait_for(cache.synced.wait(), 5)
        for _ in range(200):
            if cache._stopping.is_set() and len(calls) >= 5:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)  # let the posted results land in the loop
        assert calls == ["list", "watch 7", "list", "watch 7", "watch 7"]
        assert changed == [("shop", "ConfigMap", "app")]  # the relisting found a new digest

    asyncio.run(scenario())
