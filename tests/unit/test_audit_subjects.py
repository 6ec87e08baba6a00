"""Which objects the audit counts, and that what it keeps of them judges as the whole object would."""

from __future__ import annotations

import copy
import gc
import json
import weakref
from typing import Any, cast

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


def json_decoded(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` as a watch hands it over: each body with strings of its own."""
    decoded: dict[str, Any] = json.loads(json.dumps(obj))
    return decoded


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


def test_workloads_whose_pods_judge_alike_share_what_is_kept_of_their_containers() -> None:
    web = audit_subject(placed(deployment(container(), labels={"app": "web"})))
    shop = audit_subject(placed(deployment(container(), labels={"app": "shop"}), namespace="other"))
    other = audit_subject(placed(deployment(container(port=9090))))
    assert web is not None and shop is not None and other is not None
    alone = pod_from_template(placed(deployment()))
    assert alone is not None and web.pod.spec == alone.spec and web.pod.spec is shop.pod.spec
    assert other.pod.spec is not web.pod.spec and other.pod.spec != web.pod.spec
    assert web.pod.labels != shop.pod.labels  # only the containers' part is shared
    again = audit_subject(placed(deployment(), namespace="".join(["sh", "op"])))
    assert again is not None and again.ref.namespace is web.ref.namespace
    assert again.ref.kind is web.ref.kind and again.pod.kinds is web.pod.kinds


def test_what_is_kept_of_different_pods_shares_field_names_and_short_strings() -> None:
    long = "x" * 100
    one = audit_subject(
        placed(json_decoded(deployment(container(port=8001, livenessProbe={"exec": {"command": [long]}}))))
    )
    two = audit_subject(placed(json_decoded(deployment(container(port=8002)))))
    assert one is not None and two is not None and one.pod.spec != two.pod.spec
    [first], [second] = one.pod.spec["containers"], two.pod.spec["containers"]
    (name_one,), (name_two,) = first["ports"][0].keys(), second["ports"][0].keys()
    assert name_one is name_two and first["name"] is second["name"]
    assert first["livenessProbe"] == {"exec": {"command": [long]}}


def test_a_shared_spec_goes_with_its_last_subject() -> None:
    kept = audit_subject(placed(deployment(container(name="only-this-one"))))
    assert kept is not None
    spec = weakref.ref(cast(Any, kept.pod.spec))
    del kept
    gc.collect()
    assert spec() is None


def test_a_spec_that_is_not_json_is_kept_unshared() -> None:
    odd = placed(deployment(container(readinessProbe={"exec": {"command": {"not", "json"}}})))
    one, two = audit_subject(odd), audit_subject(odd)
    assert one is not None and two is not None
    assert one.pod.spec is not two.pod.spec and one.pod.spec == two.pod.spec


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
