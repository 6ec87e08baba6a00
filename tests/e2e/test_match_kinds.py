"""``match.kinds`` end to end: one set of manifests feeds the live cluster and ``check``, which agree.

A policy asking long-running kinds (Deployment, StatefulSet, DaemonSet) for readiness probes
admits a probe-less Job and CronJob, still refuses the probe-less Deployment, and its audit
counts only the workloads of its kinds.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from production_policy.check.report import check
from tests.support.cluster import Cluster, DevOperator
from tests.support.kube import deployment, wait_for

pytestmark = pytest.mark.e2e

GROUP, VERSION, PLURAL = "productionpolicy.dev", "v1alpha1", "productionpolicies"
BARE = {"name": "app", "image": "nginx:1.27", "ports": [{"containerPort": 8080}]}
PROBED = {**BARE, "readinessProbe": {"tcpSocket": {"port": 8080}}}


def _job_template(name: str) -> dict[str, Any]:
    return {"metadata": {"labels": {"job": name}}, "spec": {"restartPolicy": "Never", "containers": [BARE]}}


def _manifests(namespace: str) -> list[dict[str, Any]]:
    """A probe-less and a probed Deployment, a probe-less Job and CronJob (suspended: no pods)."""
    objects = [
        deployment("web", containers=[BARE]),
        deployment("ok", containers=[PROBED]),
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "once"},
            "spec": {"suspend": True, "template": _job_template("once")},
        },
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": {"name": "nightly"},
            "spec": {
                "schedule": "0 0 1 1 *",
                "suspend": True,
                "jobTemplate": {"spec": {"template": _job_template("nightly")}},
            },
        },
    ]
    for obj in objects:
        obj["metadata"]["namespace"] = namespace
    return objects


def _policy(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ProductionPolicy",
        "metadata": {"name": name},
        "spec": {
            "match": {"kinds": ["Deployment", "StatefulSet", "DaemonSet"], "namespaces": [namespace]},
            "probes": {"readiness": {"required": True}},
        },
    }


def _creator(cluster: Cluster, obj: dict[str, Any]) -> Callable[..., Any]:
    namespace, kind = obj["metadata"]["namespace"], obj["kind"]
    batch = client.BatchV1Api(cluster.api)
    create = {
        "Deployment": cluster.apps.create_namespaced_deployment,
        "Job": batch.create_namespaced_job,
        "CronJob": batch.create_namespaced_cron_job,
    }[kind]
    return lambda **kwargs: create(namespace, obj, **kwargs)


def _refused(create: Callable[..., Any], **kwargs: Any) -> bool:
    try:
        create(**kwargs)
    except ApiException as exc:
        assert exc.status == 403 and "production policy" in str(exc.body), exc.body
        return True
    return False


def test_kinds_scope_admission_audit_and_check_alike(
    cluster: Cluster, namespace: str, dev_operator: DevOperator, make_policy: Any, tmp_path: Path
) -> None:
    manifests = _manifests(namespace)
    policy = _policy(f"long-running-{namespace}", namespace)
    workloads, policies = tmp_path / "workloads.yaml", tmp_path / "policy.yaml"
    workloads.write_text(yaml.safe_dump_all(manifests))
    policies.write_text(yaml.safe_dump(policy))

    offline = check([str(workloads)], [str(policies)])
    assert not offline.errors
    predicted = {r.name: r.verdict.denied for r in offline.workloads}

    make_policy(policy["metadata"]["name"], policy["spec"])
    web = _creator(cluster, manifests[0])
    wait_for(lambda: _refused(web, dry_run="All"), 30, what="the policy to be enforced")
    live = {obj["metadata"]["name"]: _refused(_creator(cluster, obj)) for obj in manifests}

    assert live == {"web": True, "ok": False, "once": False, "nightly": False}
    assert predicted == live
    matched = {r.name for r in offline.workloads if r.policies and not r.verdict.denied}
    assert matched == {"ok"}

    # The audit counts what exists: of the admitted workloads only the Deployment is of the kinds.
    custom = client.CustomObjectsApi(cluster.api)

    def counts() -> tuple[int, int] | None:
        status = custom.get_cluster_custom_object(GROUP, VERSION, PLURAL, policy["metadata"]["name"]).get(
            "status", {}
        )
        found = (status.get("matchedWorkloads"), status.get("nonCompliantWorkloads"))
        return found if found == (len(matched), 0) else None

    try:
        wait_for(counts, 60, interval=0.5, what="audit counts matched 1, non-compliant 0")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\noperator log:\n{dev_operator.log()[-4000:]}") from None
