"""Which objects the audit counts, and that what it keeps of them judges as the whole object would."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given

from production_policy.api.status import MESSAGE_MAX
from production_policy.engine import (
    INJECTED_ANNOTATION,
    CompiledPolicy,
    evaluate_workload,
    plan_mutation,
    pod_from_template,
)
from production_policy.engine.audit import (
    AUDITED_KINDS,
    WorkloadRef,
    audit_subject,
    controlled,
    judge,
    needed_defaults,
    workload_ref,
)
from production_policy.engine.audit.judge import bounded
from production_policy.engine.validation import describe
from tests.support import strategies
from tests.support.engine import TCP_AUTO, container, deployment, pod, policy
from tests.support.strategies import NAMESPACE, NAMESPACE_LABELS


def placed(obj: dict[str, Any], namespace: str = "shop", **metadata: Any) -> dict[str, Any]:
    result = copy.deepcopy(obj)
    result["metadata"] = {**result["metadata"], "namespace": namespace, "uid": "u-1", **metadata}
    return result


OWNER = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1", "uid": "rs", "controller": True}


def test_a_deployment_is_a_subject_with_its_template_labels() -> None:
    subject = audit_subject(placed(deployment(labels={"app": "web", "tier": "front"})))
    assert subject is not None
    assert subject.ref == WorkloadRef("shop", "Deployment", "web")
    assert subject.uid == "u-1"
    assert subject.pod.labels == {"app": "web", "tier": "front"}
    assert subject.injected == ()


def test_controlled_objects_are_counted_through_their_owner() -> None:
    owned = placed(pod(), ownerReferences=[OWNER])
    assert controlled(owned)
    assert audit_subject(owned) is None
    assert workload_ref(owned) == WorkloadRef("shop", "Pod", "pod")  # still known: it may have been bare
    # An owner that is not a controller (garbage collection only) leaves the pod bare.
    assert audit_subject(placed(pod(), ownerReferences=[{**OWNER, "controller": False}])) is not None


def test_replica_sets_and_other_kinds_are_not_audited() -> None:
    replica_set = placed({**deployment(), "kind": "ReplicaSet"})
    assert workload_ref(replica_set) is None and audit_subject(replica_set) is None
    assert audit_subject(placed({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})) is None
    fake = placed({**deployment(), "apiVersion": "example.com/v1"})  # a CRD that calls itself Deployment
    assert audit_subject(fake) is None
    assert set(AUDITED_KINDS) == {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod"}


def test_a_cron_job_is_judged_on_its_job_template() -> None:
    cron = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "nightly"},
        "spec": {"jobTemplate": {"spec": {"template": pod(container(port=None), labels={"job": "n"})}}},
    }
    subject = audit_subject(placed(cron))
    assert subject is not None and subject.pod.labels == {"job": "n"}
    assert [c["name"] for c in subject.pod.spec["containers"]] == ["app"]


def test_a_bare_pod_carries_what_was_injected_into_it() -> None:
    bare = placed(pod(), annotations={INJECTED_ANNOTATION: "app:readiness,app:resources.requests.cpu"})
    subject = audit_subject(bare)
    assert subject is not None and subject.injected == ("app:readiness", "app:resources.requests.cpu")


def test_only_the_judged_fields_are_kept() -> None:
    spec = {
        "containers": [
            {
                "name": "app",
                "image": "example/app:1",
                "env": [{"name": "TOKEN", "value": "not-for-the-audit"}],
                "ports": [{"containerPort": 80}],
                "readinessProbe": {"httpGet": {"port": 80}},
                "resources": {"requests": {"cpu": "1"}},
            }
        ],
        "initContainers": [{"name": "proxy", "image": "p", "restartPolicy": "Always", "command": ["x"]}],
        "resources": {"limits": {"memory": "1Gi"}},
        "volumes": [{"name": "v", "emptyDir": {}}],
        "serviceAccountName": "app",
    }
    judged = pod_from_template({"apiVersion": "v1", "kind": "Pod", "metadata": {}, "spec": spec})
    assert judged is not None and judged.spec == {
        "containers": [
            {
                "name": "app",
                "ports": [{"containerPort": 80}],
                "readinessProbe": {"httpGet": {"port": 80}},
                "resources": {"requests": {"cpu": "1"}},
            }
        ],
        "initContainers": [{"name": "proxy", "restartPolicy": "Always"}],
        "resources": {"limits": {"memory": "1Gi"}},
    }


def _as_deployment(pod_obj: dict[str, Any]) -> dict[str, Any]:
    metadata = pod_obj.get("metadata", {})
    template = {"metadata": {"labels": metadata.get("labels", {})}, "spec": pod_obj["spec"]}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": NAMESPACE},
        "spec": {"template": template},
    }


@given(strategies.pods, strategies.policies)
def test_judging_what_is_kept_finds_what_admission_finds(
    pod_obj: dict[str, Any], policies: list[CompiledPolicy]
) -> None:
    # The whole point of keeping only part of a template: it must not change a single verdict.
    workload = _as_deployment(pod_obj)
    subject = audit_subject(workload)
    assert subject is not None
    judgement = judge(subject.pod, NAMESPACE, NAMESPACE_LABELS, policies)
    verdict = evaluate_workload(workload, NAMESPACE, NAMESPACE_LABELS, policies)
    expected: dict[str, list[str]] = {}
    for violation in verdict.violations:
        expected.setdefault(violation.policy, []).append(describe(violation))
    assert {name: finding.message for name, finding in judgement.findings.items()} == {
        name: bounded("; ".join(lines), MESSAGE_MAX) for name, lines in expected.items()
    }
    assert {name: finding.count for name, finding in judgement.findings.items()} == {
        name: len(lines) for name, lines in expected.items()
    }
    full_labels = workload["spec"]["template"]["metadata"]["labels"]
    full = {"apiVersion": "v1", "kind": "Pod", "metadata": {"labels": full_labels}, "spec": pod_obj["spec"]}
    assert plan_mutation(full, NAMESPACE, NAMESPACE_LABELS, policies).injected == list(
        needed_defaults(subject.pod, NAMESPACE, NAMESPACE_LABELS, policies)
    )


def test_needed_defaults_name_container_and_field() -> None:
    web = policy(
        "web",
        probes={"readiness": {"required": True, "default": TCP_AUTO}},
        resources={"defaultRequest": {"cpu": "100m"}},
    )
    subject = audit_subject(placed(deployment(container())))
    assert subject is not None
    assert needed_defaults(subject.pod, "shop", {}, [web]) == ("app:readiness", "app:resources.requests.cpu")
