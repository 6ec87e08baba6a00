"""The shell's own bookkeeping, without a cluster: the workload store and what is kept of a source."""

from __future__ import annotations

from production_policy.engine import SourceRef
from production_policy.rollout.handlers import source_data
from production_policy.rollout.options import ControllerOptions
from production_policy.rollout.workloads import WorkloadStore
from tests.unit.rollout_support import facts

KEY = b"k" * 32


def test_the_store_indexes_workloads_by_source_and_namespace() -> None:
    store = WorkloadStore()
    cm = SourceRef("ConfigMap", "app", None, False)
    secret = SourceRef("Secret", "db", frozenset({"password"}), False)
    store.put(facts(name="a", references=(cm, secret)))
    store.put(facts(name="b", references=(cm,)))
    store.put(facts(name="c", namespace="other", references=(cm,)))
    a, b = ("Deployment", "shop", "a"), ("Deployment", "shop", "b")
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
    assert store._referrers.keys() == {("shop", "ConfigMap", "app"), ("other", "ConfigMap", "app")}


def test_only_digests_are_kept_of_a_source() -> None:
    body = {"data": {"password": "aHVudGVyMg=="}, "binaryData": {"blob": "AAEC"}}
    data = source_data(KEY, body, {"productionpolicy.dev/ignore": "true"})
    assert data.ignored and set(data.digests) == {"password", "blob"}
    assert "aHVudGVyMg==" not in repr(data) and "hunter2" not in repr(data)
    assert source_data(KEY, {}, {}).digests == {}


def test_the_operator_namespace_is_always_ignored() -> None:
    options = ControllerOptions(operator_namespace="ops", ignored_namespaces=frozenset({"kube-system"}))
    assert options.all_ignored_namespaces == {"ops", "kube-system"}
