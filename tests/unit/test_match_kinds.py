"""``match.kinds`` / ``exclude.kinds``: which workload kinds a policy means, and what a pod counts as."""

from __future__ import annotations

import typing
from typing import Any

import pytest

from production_policy.api import WorkloadSelector
from production_policy.api.policy import WorkloadKindName
from production_policy.engine import audit, evaluate_workload, kinds, plan_mutation
from tests.support.engine import TCP_AUTO, container, pod, policy
from tests.unit.test_engine_validation import TEMPLATE_KINDS

LONG_RUNNING = ["Deployment", "StatefulSet", "DaemonSet"]
PROBES = {"readiness": {"required": True, "default": TCP_AUTO}}


def _owned(kind: str, api_version: str, **labels: str) -> dict[str, Any]:
    owner = {"apiVersion": api_version, "kind": kind, "name": "o", "uid": "u", "controller": True}
    return pod(container(), labels=labels, ownerReferences=[owner])


def test_the_api_names_every_kind_of_the_kinds_table() -> None:
    assert set(typing.get_args(WorkloadKindName)) == set(kinds.BY_KIND)


def test_a_selector_with_kinds_is_not_empty() -> None:
    assert not WorkloadSelector(kinds=["Job"]).is_empty()


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (pod(), {"Pod"}),
        (_owned("ReplicaSet", "apps/v1", **{"pod-template-hash": "5d9f"}), {"Deployment"}),
        (_owned("ReplicaSet", "apps/v1"), {"ReplicaSet"}),
        (_owned("StatefulSet", "apps/v1"), {"StatefulSet"}),
        (_owned("DaemonSet", "apps/v1"), {"DaemonSet"}),
        (_owned("Job", "batch/v1"), {"Job", "CronJob"}),
        (_owned("Job", "example.com/v1"), {"Pod"}),  # not batch's Job: no workload controls it
        (_owned("Rollout", "argoproj.io/v1alpha1"), {"Pod"}),
        *(
            (obj, {obj["kind"]} | ({"Job", "CronJob"} if "Job" in obj["kind"] else set()))
            for obj in TEMPLATE_KINDS
        ),
    ],
    ids=[
        "bare-pod",
        "deployment-pod",
        "replicaset-pod",
        "statefulset-pod",
        "daemonset-pod",
        "job-pod",
        "foreign-job-pod",
        "rollout-pod",
        *(obj["kind"] for obj in TEMPLATE_KINDS),
    ],
)
def test_what_an_object_counts_as(obj: dict[str, Any], expected: set[str]) -> None:
    assert kinds.counted_as(obj) == expected


@pytest.mark.parametrize("obj", TEMPLATE_KINDS, ids=lambda obj: obj["kind"])
def test_long_running_kinds_only(obj: dict[str, Any]) -> None:
    strict = policy(match={"kinds": LONG_RUNNING}, probes={"readiness": {"required": True}})
    verdict = evaluate_workload(obj, "shop", {}, [strict])
    assert verdict.denied is (obj["kind"] in LONG_RUNNING)


@pytest.mark.parametrize("obj", TEMPLATE_KINDS, ids=lambda obj: obj["kind"])
def test_excluded_kinds(obj: dict[str, Any]) -> None:
    strict = policy(exclude={"kinds": ["Job", "CronJob"]}, probes={"readiness": {"required": True}})
    verdict = evaluate_workload(obj, "shop", {}, [strict])
    assert verdict.denied is (obj["kind"] not in ("Job", "CronJob"))


@pytest.mark.parametrize(
    ("obj", "injected"),
    [
        (_owned("ReplicaSet", "apps/v1", **{"pod-template-hash": "5d9f"}), True),
        (_owned("Job", "batch/v1"), False),
        (pod(container(port=8080)), False),
    ],
    ids=["deployment-pod", "job-pod", "bare-pod"],
)
def test_defaults_go_to_the_pods_of_the_matched_kinds(obj: dict[str, Any], injected: bool) -> None:
    long_running = policy(match={"kinds": LONG_RUNNING}, probes=PROBES)
    assert bool(plan_mutation(obj, "shop", {}, [long_running]).injected) is injected


def test_a_policy_naming_job_or_cronjob_means_both() -> None:
    # A pod cannot tell whether a CronJob made its Job; templates are judged as their pods count.
    jobs = policy(match={"kinds": ["Job"]}, probes={"readiness": {"required": True}})
    for obj in TEMPLATE_KINDS:
        assert evaluate_workload(obj, "shop", {}, [jobs]).denied is (obj["kind"] in ("Job", "CronJob"))


def test_the_audit_judges_a_workload_as_its_pods_count() -> None:
    strict = policy(match={"kinds": LONG_RUNNING}, probes={"readiness": {"required": True}})
    for obj in TEMPLATE_KINDS:
        if not kinds.BY_KIND[obj["kind"]].audited:
            continue
        subject = audit.audit_subject({**obj, "metadata": {"namespace": "shop", "name": "w"}})
        assert subject is not None
        found = audit.judge(subject.pod, "shop", {}, [strict]).findings
        assert bool(found) is (obj["kind"] in LONG_RUNNING)
