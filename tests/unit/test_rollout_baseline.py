"""The baseline: what is tracked, how it compares, how it is stored."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from production_policy.engine import SourceRef, key_digests
from production_policy.engine.rollout import baseline as b

KEY = b"k" * 32
KID = b.key_id(KEY)


def data(**values: str) -> b.SourceData:
    return b.SourceData(b.compact(key_digests(KEY, values)))


def cm(name: str, keys: set[str] | None = None, optional: bool = False) -> SourceRef:
    return SourceRef("ConfigMap", name, None if keys is None else frozenset(keys), optional)


def secret(name: str, keys: set[str] | None = None, optional: bool = False) -> SourceRef:
    return SourceRef("Secret", name, None if keys is None else frozenset(keys), optional)


def baseline_of(refs: list[SourceRef], sources: dict[b.SourceId, b.SourceData]) -> b.Baseline:
    return b.compare(None, b.observe(refs, sources), KID).next_baseline


def test_only_referenced_keys_are_tracked() -> None:
    observation = b.observe([cm("app", {"a"})], {("ConfigMap", "app"): data(a="1", b="2")})
    tracked = observation.tracked[("ConfigMap", "app")]
    assert tracked.keys == frozenset({"a"})
    assert isinstance(tracked.digests, dict) and set(tracked.digests) == {"a"}


def test_every_key_is_tracked_for_envfrom_and_whole_volumes() -> None:
    observation = b.observe([cm("app")], {("ConfigMap", "app"): data(a="1", b="2")})
    digests = observation.tracked[("ConfigMap", "app")].digests
    assert isinstance(digests, dict) and set(digests) == {"a", "b"}


def test_ignored_sources_are_not_tracked() -> None:
    ignored = b.SourceData({"a": "x"}, ignored=True)
    assert b.observe([cm("app")], {("ConfigMap", "app"): ignored}).tracked == {}


def test_a_missing_optional_source_is_tracked_as_absent_and_a_required_one_is_reported() -> None:
    observation = b.observe([cm("opt", optional=True), secret("req", {"password"})], {})
    assert observation.tracked == {("ConfigMap", "opt"): b.Tracked(None, None)}
    assert observation.missing == (b.Missing("Secret", "req"),)


def test_a_missing_required_key_is_reported_and_tracked_as_absent() -> None:
    observation = b.observe([cm("app", {"a", "gone"})], {("ConfigMap", "app"): data(a="1")})
    assert observation.missing == (b.Missing("ConfigMap", "app", ("gone",)),)
    digests = observation.tracked[("ConfigMap", "app")].digests
    assert isinstance(digests, dict) and digests["gone"] == b.ABSENT
    assert b.observe([cm("app", {"gone"}, optional=True)], {("ConfigMap", "app"): data()}).missing == ()


def test_many_keys_are_stored_as_one_digest() -> None:
    many = {f"k{i}": str(i) for i in range(b.MAX_KEYS_PER_SOURCE + 1)}
    observation = b.observe([cm("big")], {("ConfigMap", "big"): data(**many)})
    assert isinstance(observation.tracked[("ConfigMap", "big")].digests, str)


def test_first_sight_and_another_key_give_a_baseline_not_a_rollout() -> None:
    sources = {("ConfigMap", "app"): data(a="1")}
    observation = b.observe([cm("app")], sources)
    first = b.compare(None, observation, KID)
    assert first.first_sight and first.rewrite and first.changes == ()
    rekeyed = b.compare(b.Baseline("other-key", first.next_baseline.sources), observation, KID)
    assert rekeyed.first_sight and rekeyed.changes == ()


def test_unchanged_data_is_no_change_and_no_rewrite() -> None:
    sources = {("ConfigMap", "app"): data(a="1"), ("Secret", "db"): data(password="p")}
    refs = [cm("app"), secret("db", {"password"})]
    result = b.compare(baseline_of(refs, sources), b.observe(refs, sources), KID)
    assert result.changes == () and not result.rewrite and not result.first_sight


def test_a_changed_referenced_key_is_named() -> None:
    refs = [cm("app", {"a", "b"})]
    stored = baseline_of(refs, {("ConfigMap", "app"): data(a="1", b="2")})
    result = b.compare(stored, b.observe(refs, {("ConfigMap", "app"): data(a="1", b="3")}), KID)
    assert result.changes == (b.SourceChange("ConfigMap", "app", ("b",)),)
    assert result.rewrite


def test_an_unreferenced_key_change_is_no_change() -> None:
    refs = [cm("app", {"a"})]
    stored = baseline_of(refs, {("ConfigMap", "app"): data(a="1", b="2")})
    result = b.compare(
        stored, b.observe(refs, {("ConfigMap", "app"): data(a="1", b="changed", c="new")}), KID
    )
    assert result.changes == () and not result.rewrite


def test_added_and_removed_keys_count_for_every_key_references() -> None:
    refs = [cm("app")]
    stored = baseline_of(refs, {("ConfigMap", "app"): data(a="1", b="2")})
    result = b.compare(stored, b.observe(refs, {("ConfigMap", "app"): data(a="1", c="3")}), KID)
    assert result.changes == (b.SourceChange("ConfigMap", "app", ("b", "c")),)


def test_a_new_or_changed_reference_is_adopted_without_a_rollout() -> None:
    sources = {("ConfigMap", "app"): data(a="1", b="2"), ("Secret", "db"): data(password="p")}
    stored = baseline_of([cm("app", {"a"})], sources)
    result = b.compare(stored, b.observe([cm("app", {"a", "b"}), secret("db")], sources), KID)
    assert result.changes == () and result.rewrite
    assert set(result.next_baseline.sources) == {("ConfigMap", "app"), ("Secret", "db")}


def test_a_dropped_or_ignored_reference_is_forgotten_without_a_rollout() -> None:
    sources = {("ConfigMap", "app"): data(a="1"), ("Secret", "db"): data(password="p")}
    refs = [cm("app"), secret("db")]
    stored = baseline_of(refs, sources)
    ignored = {**sources, ("Secret", "db"): b.SourceData({"password": "other"}, ignored=True)}
    for now_refs, now_sources in (([cm("app")], sources), (refs, ignored)):
        result = b.compare(stored, b.observe(now_refs, now_sources), KID)
        assert result.changes == () and result.rewrite
        assert set(result.next_baseline.sources) == {("ConfigMap", "app")}


def test_a_missing_required_source_keeps_its_digests_and_rolls_nothing() -> None:
    refs = [cm("app"), secret("db")]
    sources = {("ConfigMap", "app"): data(a="1"), ("Secret", "db"): data(password="p")}
    stored = baseline_of(refs, sources)
    result = b.compare(stored, b.observe(refs, {("ConfigMap", "app"): data(a="1")}), KID)
    assert result.changes == () and not result.rewrite
    assert result.next_baseline == stored
    back = b.compare(stored, b.observe(refs, sources), KID)
    assert back.changes == () and not back.rewrite


def test_an_optional_source_appearing_or_disappearing_is_a_change() -> None:
    refs = [cm("extra", optional=True)]
    stored = baseline_of(refs, {})
    appeared = b.compare(stored, b.observe(refs, {("ConfigMap", "extra"): data(x="1")}), KID)
    assert appeared.changes == (b.SourceChange("ConfigMap", "extra", ("x",)),)
    gone = b.compare(appeared.next_baseline, b.observe(refs, {}), KID)
    assert gone.changes == (b.SourceChange("ConfigMap", "extra", ("x",)),)


def test_a_source_stored_as_one_digest_changes_without_key_names() -> None:
    many = {f"k{i}": str(i) for i in range(b.MAX_KEYS_PER_SOURCE + 1)}
    stored = baseline_of([cm("big")], {("ConfigMap", "big"): data(**many)})
    result = b.compare(
        stored, b.observe([cm("big")], {("ConfigMap", "big"): data(**{**many, "k0": "x"})}), KID
    )
    assert result.changes == (b.SourceChange("ConfigMap", "big", ()),)
    assert "not tracked one by one" in result.changes[0].describe()
    fewer = {f"k{i}": str(i) for i in range(3)}
    shrunk = b.compare(stored, b.observe([cm("big")], {("ConfigMap", "big"): data(**fewer)}), KID)
    assert shrunk.changes == (b.SourceChange("ConfigMap", "big", ()),)


def test_the_config_digest_follows_the_data_only() -> None:
    refs = [cm("app")]
    one = baseline_of(refs, {("ConfigMap", "app"): data(a="1")})
    two = baseline_of(refs, {("ConfigMap", "app"): data(a="2")})
    assert b.config_digest(one) == b.config_digest(baseline_of(refs, {("ConfigMap", "app"): data(a="1")}))
    assert b.config_digest(one) != b.config_digest(two)
    assert len(b.config_digest(one)) == b.DIGEST_LENGTH


def test_the_stored_form_holds_digests_and_key_names_never_values() -> None:
    value = "hunter2-canary-value"
    stored = baseline_of([secret("db", {"password"})], {("Secret", "db"): data(password=value)})
    text = b.encode(stored)
    assert value not in text
    raw = json.loads(text)
    assert raw["v"] == b.SCHEME and raw["key"] == KID
    assert raw["src"]["Secret/db"]["keys"] == ["password"]


def test_unreadable_baselines_decode_to_none() -> None:
    for text in (
        None,
        "",
        "not json",
        "[]",
        '{"v": 99, "key": "x", "src": {}}',
        '{"v": 1, "src": {}}',
        '{"v": 1, "key": "x", "src": {"nokind": {"keys": "*", "d": null}}}',
        '{"v": 1, "key": "x", "src": {"ConfigMap/a": {"keys": [1], "d": null}}}',
        '{"v": 1, "key": "x", "src": {"ConfigMap/a": {"keys": "*", "d": {"a": 1}}}}',
        '{"v": 1, "key": "x", "src": {"ConfigMap/a": {"keys": "*"}}}',
    ):
        assert b.decode(text) is None, text


keys = st.text(alphabet="abcdefghij._-", min_size=1, max_size=8)
values = st.text(max_size=20)


@given(
    st.dictionaries(keys, values, max_size=6),
    st.dictionaries(keys, values, max_size=6),
    st.one_of(st.none(), st.frozensets(keys, max_size=4)),
    st.booleans(),
)
def test_properties_of_compare(
    before: dict[str, str], after: dict[str, str], picked: frozenset[str] | None, optional: bool
) -> None:
    refs = [SourceRef("ConfigMap", "app", picked, optional)]
    old = {("ConfigMap", "app"): data(**before)}
    new = {("ConfigMap", "app"): data(**after)}
    stored = baseline_of(refs, old)
    # Round trip through the annotation.
    assert b.decode(b.encode(stored)) == stored
    # Comparing with the very data of the baseline: nothing to do.
    same = b.compare(stored, b.observe(refs, old), KID)
    assert same.changes == () and not same.rewrite
    # A change is reported exactly when a referenced key's value differs; it names only those keys.
    result = b.compare(stored, b.observe(refs, new), KID)
    considered = (before.keys() | after.keys()) if picked is None else picked
    differing = sorted(k for k in considered if before.get(k) != after.get(k))
    if differing:
        assert result.changes == (b.SourceChange("ConfigMap", "app", tuple(differing)),)
    else:
        assert result.changes == ()
    # After the change is stored, the new data compares as unchanged.
    settled = b.compare(result.next_baseline, b.observe(refs, new), KID)
    assert settled.changes == () and not settled.rewrite


def test_a_source_holds_its_digests_packed_and_reads_as_the_stored_form() -> None:
    full = key_digests(KEY, {"b": "2", "a": "1"})
    packed = b.compact(full)
    assert isinstance(packed, b.PackedDigests)
    assert dict(packed) == {key: b.short(value) for key, value in full.items()} and len(packed) == 2
    assert list(packed) == ["a", "b"] and "a" in packed and "c" not in packed
    assert packed.get("c", b.ABSENT) == b.ABSENT
    # Equal to the same digests however they are held; never to other digests.
    assert packed == b.compact(dict(reversed(full.items()))) == dict(packed)
    assert packed != b.compact(key_digests(KEY, {"a": "1", "b": "3"}))
    assert packed != b.compact(key_digests(KEY, {"a": "1"})) and packed != {"a": "x"}
    assert "PackedDigests" in repr(packed) and b.short(full["a"]) in repr(packed)
    # Sources with the same keys share one tuple of them.
    assert packed._keys is b.compact(key_digests(KEY, {"a": "9", "b": "9"}))._keys
