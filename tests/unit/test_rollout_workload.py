"""Reducing workload bodies to the facts the controller decides on."""

from __future__ import annotations

from typing import Any

import pytest

from production_policy.engine import SourceRef, names
from production_policy.engine.rollout.facts import parse_time, workload_facts


def body(
    kind: str = "Deployment",
    spec: dict[str, Any] | None = None,
    status: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
    generation: int = 3,
) -> dict[str, Any]:
    pod_spec = {
        "initContainers": [{"name": "init", "envFrom": [{"secretRef": {"name": "init-secret"}}]}],
        "containers": [
            {
                "name": "app",
                "env": [
                    {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "app", "key": "a"}}},
                    {
                        "name": "B",
                        "valueFrom": {"configMapKeyRef": {"name": "app", "key": "b", "optional": True}},
                    },
                ],
            }
        ],
        "volumes": [
            {
                "name": "v",
                "projected": {
                    "sources": [{"secret": {"name": "tls", "items": [{"key": "crt", "path": "c"}]}}]
                },
            }
        ],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {
            "name": "web",
            "namespace": "shop",
            "uid": "u1",
            "resourceVersion": "42",
            "generation": generation,
            "annotations": annotations or {},
        },
        "spec": {"template": {"metadata": {"labels": {"app": "web"}}, "spec": pod_spec}, **(spec or {})},
        "status": status or {},
    }


def test_facts_of_a_deployment() -> None:
    facts = workload_facts(
        body(
            annotations={names.BASELINE_ANNOTATION: "{}", names.ROLLED_AT_ANNOTATION: "2026-01-02T03:04:05Z"}
        )
    )
    assert facts is not None
    assert facts.key == ("Deployment", "shop", "web") and facts.describe() == "Deployment shop/web"
    assert facts.uid == "u1" and facts.resource_version == "42" and facts.generation == 3
    assert facts.template_labels == {"app": "web"}
    assert facts.references == (
        SourceRef("ConfigMap", "app", frozenset({"a", "b"}), False),
        SourceRef("Secret", "init-secret", None, False),
        SourceRef("Secret", "tls", frozenset({"crt"}), False),
    )
    assert facts.baseline == "{}" and facts.rolled_at == parse_time("2026-01-02T03:04:05Z")
    assert not facts.opted_out and not facts.paused and not facts.on_delete


@pytest.mark.parametrize(
    "value, opted_out", [("disabled", True), (" Disabled ", True), ("enabled", False), ("", False)]
)
def test_opt_out_annotation(value: str, opted_out: bool) -> None:
    facts = workload_facts(body(annotations={names.WORKLOAD_OPT_OUT_ANNOTATION: value}))
    assert facts is not None and facts.opted_out is opted_out


def test_other_objects_have_no_facts() -> None:
    assert workload_facts({"apiVersion": "batch/v1", "kind": "Job", "spec": {}}) is None
    assert workload_facts({"apiVersion": "example.com/v1", "kind": "Deployment", "spec": {}}) is None
    assert workload_facts({"apiVersion": "v1", "kind": "Pod", "spec": {}}) is None


def test_paused_and_on_delete() -> None:
    paused = workload_facts(body(spec={"paused": True}))
    assert paused is not None and paused.paused
    for kind in ("StatefulSet", "DaemonSet"):
        on_delete = workload_facts(body(kind, spec={"updateStrategy": {"type": "OnDelete"}}))
        assert on_delete is not None and on_delete.on_delete and not on_delete.paused
    rolling = workload_facts(body("StatefulSet", spec={"updateStrategy": {"type": "RollingUpdate"}}))
    assert rolling is not None and not rolling.on_delete


@pytest.mark.parametrize(
    "kind, spec, status, settled",
    [
        (
            "Deployment",
            {"replicas": 2},
            {"observedGeneration": 3, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2},
            True,
        ),
        (
            "Deployment",
            {"replicas": 2},
            {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2},
            False,
        ),
        (
            "Deployment",
            {"replicas": 2},
            {"observedGeneration": 3, "replicas": 3, "updatedReplicas": 2, "availableReplicas": 3},
            False,
        ),
        (
            "Deployment",
            {"replicas": 2},
            {"observedGeneration": 3, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 1},
            False,
        ),
        (
            "Deployment",
            {"replicas": 2},
            {
                "observedGeneration": 3,
                "conditions": [
                    {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}
                ],
            },
            True,
        ),
        ("Deployment", {"replicas": 0}, {"observedGeneration": 3}, True),
        (
            "StatefulSet",
            {"replicas": 3},
            {"observedGeneration": 3, "updatedReplicas": 3, "readyReplicas": 3},
            True,
        ),
        (
            "StatefulSet",
            {"replicas": 3},
            {"observedGeneration": 3, "updatedReplicas": 2, "readyReplicas": 3},
            False,
        ),
        (
            "StatefulSet",
            {"replicas": 3, "updateStrategy": {"rollingUpdate": {"partition": 1}}},
            {"observedGeneration": 3, "updatedReplicas": 2, "readyReplicas": 3},
            True,
        ),
        (
            "DaemonSet",
            {},
            {
                "observedGeneration": 3,
                "desiredNumberScheduled": 2,
                "updatedNumberScheduled": 2,
                "numberAvailable": 2,
            },
            True,
        ),
        (
            "DaemonSet",
            {},
            {
                "observedGeneration": 3,
                "desiredNumberScheduled": 2,
                "updatedNumberScheduled": 1,
                "numberAvailable": 2,
            },
            False,
        ),
    ],
)
def test_settled(kind: str, spec: dict[str, Any], status: dict[str, Any], settled: bool) -> None:
    facts = workload_facts(body(kind, spec=spec, status=status))
    assert facts is not None and facts.settled is settled


def test_parse_time() -> None:
    assert parse_time("1970-01-01T00:01:00Z") == 60
    assert parse_time("1970-01-01T00:01:00+00:00") == 60
    assert parse_time(None) is None and parse_time("") is None and parse_time("yesterday") is None


def test_what_workloads_repeat_is_held_once() -> None:
    # Two bodies decoded apart hold equal strings and sets that are not the same objects.
    one, two = body(), body()
    two["metadata"]["namespace"] = "".join(["sh", "op"])
    first, second = workload_facts(one), workload_facts(two)
    assert first is not None and second is not None
    assert first.namespace is second.namespace and first.kind is second.kind
    assert first.references[0].keys is second.references[0].keys
    # One key tuple per facts, and the template's labels are the body's own (the audit keeps them too).
    assert first.key is first.key and first.key == ("Deployment", "shop", "web")
    assert first.template_labels is one["spec"]["template"]["metadata"]["labels"]
    unlabelled = body()
    del unlabelled["spec"]["template"]["metadata"]["labels"]
    facts = workload_facts(unlabelled)
    assert facts is not None and facts.template_labels == {}
