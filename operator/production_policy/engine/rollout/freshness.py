"""Fresh sources for a new workload's first baseline, and which version of a source is the newer.

The controller follows its sources with its own watch and the workloads with kopf's: two streams,
in no order with each other. A workload created just after a change to its ConfigMap can reach the
controller before that change does. Its pods start with the new data, but a baseline taken from
the cache then records the old one, and the change, arriving next, rolls the workload for nothing
(bench scenario 5, workload churn). So the first look at a workload created while the controller
watches waits for its sources read afresh: a GET is a consistent read, made after the workload
existed, so what it returns is at least as new as the workload. What a read brings replaces the
cached entry only when it is newer, and a watch event older than a read is dropped: the cache only
ever moves forward, and never tells of a change that is not one.

Versions are compared as Kubernetes compares them (apimachinery's
``resourceversion.CompareResourceVersion``, since 1.35 a documented guarantee for the built-in
resources): a version is a positive integer without leading zeros, of any length, and only versions
of one resource order against each other (ConfigMaps with ConfigMaps, never a ConfigMap with a
Deployment). A version that is not of that form orders against nothing.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from production_policy.engine.compiled import CompiledPolicy
from production_policy.engine.rollout.decide import unmanaged_reason
from production_policy.engine.rollout.facts import WorkloadFacts


def compare_versions(a: str, b: str) -> int | None:
    """-1, 0 or 1 as resourceVersion ``a`` is older than, the same as or newer than ``b``, both of
    one resource; None when either is not a well-formed version (then they do not order)."""
    if not (_well_formed(a) and _well_formed(b)):
        return None
    if len(a) != len(b):
        return -1 if len(a) < len(b) else 1
    return (a > b) - (a < b)


def newer(version: str, than: str) -> bool:
    """``version`` is provably newer than ``than`` (both of one resource)."""
    return compare_versions(version, than) == 1


def read_is_news(read: str, *, watched: str | None, ahead: str | None) -> bool:
    """Whether a source read with a GET at version ``read`` replaces what the cache holds of it.

    Only when it is provably newer than everything the cache's watch has delivered (``watched``:
    the version of its listing or of its last event; None before its first listing) and than an
    earlier read of the same source (``ahead``: the version of a read the watch has not caught up
    with yet, if any). Otherwise the cache's entry is as new or newer: a read that does not order
    against them is not taken.
    """
    if not _well_formed(read):
        return False
    return (watched is None or newer(read, watched)) and (ahead is None or newer(read, ahead))


def event_is_news(event: str, *, ahead: str | None) -> bool:
    """Whether a watch event at version ``event`` replaces the cache's entry of its source.

    Always, unless a read put in this version or a newer one already (``ahead``): the watch delivers
    in order, so a version that does not order against the read is taken as the watch's news.
    """
    if ahead is None:
        return True
    order = compare_versions(event, ahead)
    return order is None or order == 1


def needs_fresh_sources(
    facts: WorkloadFacts,
    *,
    created: bool,
    policies: Sequence[CompiledPolicy],
    namespace_labels: Mapping[str, str],
    ignored_namespaces: Collection[str],
) -> bool:
    """Whether the first look at a workload must wait for its referenced sources read afresh.

    Only a workload ``created`` while the controller watches (one found by a listing, at startup,
    is judged on the cache, listed before any decision: 2,000 workloads must not cost 2,000
    reads), that has no baseline yet (its first look records one), references a source and is
    managed: a read for a workload the controller leaves alone would buy nothing.
    """
    if not created or facts.baseline is not None or not facts.references:
        return False
    reason, _ = unmanaged_reason(facts, policies, namespace_labels, ignored_namespaces)
    return reason is None


def _well_formed(version: str) -> bool:
    return version.isascii() and version.isdigit() and not version.startswith("0")
