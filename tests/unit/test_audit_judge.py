"""Judging a workload against every policy, and which workloads a policy change affects."""

from __future__ import annotations

from production_policy.engine import PodView
from production_policy.engine.audit import affected_namespaces, audit_subject, judge
from production_policy.engine.audit.judge import ELLIPSIS, bounded, finding_message
from production_policy.engine.rules import Violation
from tests.support.engine import TCP_AUTO, container, deployment, policy, resources

NS, LABELS = "shop", {"kubernetes.io/metadata.name": "shop"}
READINESS = {"probes": {"readiness": {"required": True}}}
CPU = {"resources": {"require": {"requests": ["cpu"]}}}


def _pod(*containers: dict[str, object]) -> PodView:
    subject = audit_subject({**deployment(*containers), "metadata": {"name": "web", "namespace": NS}})
    assert subject is not None
    return subject.pod


def test_each_violation_counts_against_the_policy_that_demands_it() -> None:
    probes, cpu = policy("probes", **READINESS), policy("cpu", **CPU)
    judgement = judge(_pod(container("app"), container("side", port=9090)), NS, LABELS, [probes, cpu])
    assert judgement.matched == {"probes", "cpu"}
    assert set(judgement.findings) == {"probes", "cpu"}
    assert judgement.findings["probes"].count == 2
    assert judgement.findings["probes"].message == (
        'container "app": no readinessProbe — add a readinessProbe; '
        'container "side": no readinessProbe — add a readinessProbe'
    )
    assert judgement.findings["cpu"].count == 2


def test_a_compliant_workload_is_matched_without_findings() -> None:
    judgement = judge(_pod(container(resources=resources({"cpu": "1"}))), NS, LABELS, [policy("cpu", **CPU)])
    assert judgement.matched == {"cpu"} and dict(judgement.findings) == {}


def test_defaults_count_as_present_also_for_other_policies() -> None:
    # "defaults" fills in what "strict" requires: the workload's pods will have it.
    defaults = policy("defaults", probes={"readiness": {"default": TCP_AUTO}})
    strict = policy("strict", **READINESS)
    assert dict(judge(_pod(container()), NS, LABELS, [defaults, strict]).findings) == {}
    assert set(judge(_pod(container(port=None)), NS, LABELS, [defaults, strict]).findings) == {"strict"}


def test_unmatched_workloads_have_an_empty_judgement() -> None:
    elsewhere = policy("elsewhere", match={"namespaces": ["other"]}, **READINESS)
    judgement = judge(_pod(container()), NS, LABELS, [elsewhere])
    assert judgement.matched == frozenset() and dict(judgement.findings) == {}
    ignored = {**LABELS, "productionpolicy.dev/ignore": "true"}
    assert judge(_pod(container()), NS, ignored, [policy("all", **READINESS)]).matched == frozenset()


def test_messages_are_bounded() -> None:
    many = [
        Violation(f"c{i}", "readinessProbe", "no readinessProbe — add one", "p", "Audit") for i in range(100)
    ]
    message = finding_message(many)
    assert len(message) == 1024 and message.endswith(ELLIPSIS)
    assert bounded("short", 10) == "short"


def test_a_status_only_change_affects_nothing() -> None:
    before, after = policy("p", **READINESS), policy("p", **READINESS)
    assert affected_namespaces(before, after) == frozenset()
    assert affected_namespaces(None, None) == frozenset()


def test_a_change_affects_the_namespaces_matched_before_and_after() -> None:
    before = policy("p", match={"namespaces": ["a", "b"]}, **READINESS)
    after = policy("p", match={"namespaces": ["b", "c"]}, **CPU)
    assert affected_namespaces(before, after) == frozenset({"a", "b", "c"})
    assert affected_namespaces(None, after) == frozenset({"b", "c"})
    assert affected_namespaces(before, None) == frozenset({"a", "b"})


def test_a_policy_over_every_namespace_affects_every_namespace() -> None:
    scoped = policy("p", match={"namespaces": ["a"]}, **READINESS)
    everywhere = policy("p", match={"namespaceSelector": {"matchLabels": {"env": "prod"}}}, **READINESS)
    assert affected_namespaces(scoped, everywhere) is None
    assert affected_namespaces(everywhere, None) is None
