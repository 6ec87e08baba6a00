"""Parity: the compiled admission policies, run by the real API server, decide as the webhook path does.

For each engine unit case about a pod or a pod template, the compiled MutatingAdmissionPolicy and
ValidatingAdmissionPolicies are applied, and a server-side dry-run create (or update) in a namespace
they bind is compared with what the webhook path gives for the same request: the engine's patch
applied to the pod as the API server decoded it, then the engine's verdict on the result. Compared:
admitted or refused, the HTTP code, the denial message (the engine's, behind the API server's
prefix), the warnings (the Warn violations, also on a refusal), and each container's probes and
resources and the ``injected`` annotation. No webhook is registered while this runs: enforcement
comes from the API server alone.
"""

from __future__ import annotations

import copy
import functools
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import jsonpatch
import pytest

from production_policy.engine import (
    INJECTED_ANNOTATION,
    CompiledPolicy,
    Verdict,
    evaluate_workload,
    plan_mutation,
)
from production_policy.engine.apiserver import ENFORCE_NAME, WARN_NAME, InstallSettings, compile_policies
from production_policy.engine.names import IGNORE
from production_policy.kube.admissionpolicies import Answer
from tests.support.apiserver import (
    call,
    delete_compiled,
    dry_run_create,
    install,
    object_path,
    without_markers,
)
from tests.support.cluster import EXCLUDED_NAMESPACE, OPERATOR_NAMESPACE, Cluster
from tests.support.engine import (
    TCP_AUTO,
    container,
    deployment,
    pod,
    policy,
    resources,
    with_container_change,
    with_withdrawals,
)
from tests.support.kube import wait_for
from tests.unit import test_engine_mutation as mutation
from tests.unit import test_engine_validation as validation

pytestmark = pytest.mark.e2e
log = logging.getLogger(__name__)

SHOP = "parity-shop"
PLAIN = "parity-plain"  # labelled ignore=true: no admission at all, only the API server's own defaulting
IGNORED = "parity-ignored"
SETTINGS = InstallSettings(OPERATOR_NAMESPACE, (EXCLUDED_NAMESPACE,))
NAMESPACES = {
    SHOP: {"env": "prod"},
    PLAIN: {IGNORE: "true"},
    IGNORED: {IGNORE: "true"},
    OPERATOR_NAMESPACE: {},
    EXCLUDED_NAMESPACE: {},
}
OUT_OF_SCOPE = {PLAIN, IGNORED, OPERATOR_NAMESPACE, EXCLUDED_NAMESPACE, "kube-system"}
INSTALL_SECONDS: list[float] = []


@dataclass(frozen=True)
class Case:
    """One request: the policies, the object, the object it replaces (an UPDATE), the namespace."""

    id: str
    policies: tuple[CompiledPolicy, ...]
    obj: dict[str, Any]
    old: dict[str, Any] | None = None
    namespace: str = SHOP


def _pod_case(case_id: str, obj: dict[str, Any], *policies: CompiledPolicy, namespace: str = SHOP) -> Case:
    return Case(case_id, policies, obj, namespace=namespace)


def _fields(res: dict[str, Any] | None) -> dict[str, Any]:
    return {} if res is None else {"resources": res}


def _mutation_cases() -> Iterator[Case]:
    probes = mutation.PROBES
    yield _pod_case("probes-on-the-first-port", pod(container("app", port=8080)), probes)
    udp_first = [
        {"containerPort": 53, "protocol": "UDP"},
        {"containerPort": 9000, "protocol": "TCP"},
        {"containerPort": 9001},
    ]
    yield _pod_case("auto-skips-udp", pod(container(port=None, ports=udp_first)), probes)
    for i, ports in enumerate(mutation.NO_USABLE_PORTS):
        yield _pod_case(
            f"no-usable-port-{i}",
            pod(container(port=None) if ports is None else container(port=None, ports=ports)),
            probes,
        )
    named = policy(probes={"readiness": {"default": {"httpGet": {"port": "http"}}}})
    numbered = policy(probes={"readiness": {"default": {"tcpSocket": {"port": 7000}}}})
    yield _pod_case(
        "named-port", pod(container(port=None, ports=[{"name": "http", "containerPort": 8080}])), named
    )
    yield _pod_case("named-port-undeclared", pod(container(port=8080)), named)
    yield _pod_case("numbered-port", pod(container(port=None)), numbered)
    headers = [{"name": "X-Probe", "value": "1"}]
    yield _pod_case(
        "http-headers",
        pod(),
        policy(probes={"readiness": {"default": {"httpGet": {"port": "auto", "httpHeaders": headers}}}}),
    )
    yield _pod_case(
        "users-probe-kept", pod(container(readinessProbe={"exec": {"command": ["/bin/check"]}})), probes
    )
    both = policy(probes={"readiness": {"default": TCP_AUTO}}, resources={"defaultRequest": {"cpu": "100m"}})
    init = (container("migrate", port=5432), container("proxy", port=15000, restartPolicy="Always"))
    yield _pod_case("init-and-sidecars", pod(container("app"), init=init), both)
    for i, (user, spec, _, _) in enumerate(mutation.LIMIT_RANGE_CASES):
        yield _pod_case(
            f"limit-range-{i}",
            pod(container(resources=user) if user else container()),
            policy("res", resources=spec),
        )
    yield _pod_case(
        "request-capped-at-another-policys-limit",
        pod(),
        policy("requests", priority=10, resources={"defaultRequest": {"memory": "1Gi"}}),
        policy("limits", priority=1, resources={"default": {"memory": "256Mi"}}),
    )
    member = policy("res", resources={"defaultRequest": {"cpu": "100m", "memory": "64Mi"}})
    for i, (app, _) in enumerate(mutation.FIRST_MISSING_MEMBER_CASES):
        yield _pod_case(f"first-missing-member-{i}", pod(app), member)
    requests = policy("res", resources={"defaultRequest": {"cpu": "100m"}})
    yield _pod_case("annotation-created", pod(), requests)
    yield _pod_case("annotation-into-empty-annotations", pod(annotations={}), requests)
    earlier = pod(
        container("app", resources=resources({"cpu": "100m"})),
        container("added"),
        annotations={"team": "x", INJECTED_ANNOTATION: "app:resources.requests.cpu"},
    )
    yield _pod_case("annotation-extended", earlier, requests)
    yield _pod_case(
        "malformed-container", {**pod(), "spec": {"containers": ["oops", container("app")]}}, probes
    )
    yield _pod_case("no-policy", pod())
    yield _pod_case(
        "policy-elsewhere",
        pod(),
        policy(match={"namespaces": ["other"]}, probes={"readiness": {"default": TCP_AUTO}}),
    )
    for namespace in (IGNORED, "kube-system", OPERATOR_NAMESPACE, EXCLUDED_NAMESPACE):
        yield _pod_case(
            f"untouched-in-{namespace}",
            pod(),
            probes,
            policy("strict", probes=validation.REQUIRE_PROBES),
            namespace=namespace,
        )


def _validation_cases() -> Iterator[Case]:
    readiness = policy(probes={"readiness": {"required": True}})
    defaulted = policy(probes={"readiness": {"required": True, "default": TCP_AUTO}})
    for obj in validation.TEMPLATE_KINDS:
        yield Case(f"template-of-{obj['kind']}", (readiness,), obj)
        yield Case(f"template-of-{obj['kind']}-defaulted", (defaulted,), obj)
    yield _pod_case(
        "required-probes-missing", pod(container(port=8080)), policy(probes=validation.REQUIRE_PROBES)
    )
    yield Case("defaults-before-validation", (defaulted,), deployment(container(port=8080)))
    yield _pod_case(
        "users-exec-probe", pod(container(port=8080, readinessProbe={"exec": {"command": ["ok"]}})), defaulted
    )
    for i, (app, default, _) in enumerate(validation.UNUSABLE_DEFAULTS):
        yield _pod_case(
            f"unusable-default-{i}",
            pod(app),
            policy(probes={"readiness": {"required": True, "default": default}}),
        )
        yield Case(
            f"unusable-default-{i}-template",
            (policy(probes={"readiness": {"required": True, "default": default}}),),
            deployment(app),
        )
    sidecars = (container("migrate", port=None), container("proxy", port=None, restartPolicy="Always"))
    yield _pod_case("sidecars-need-probes", pod(container(readinessProbe=TCP_AUTO), init=sidecars), readiness)
    require = {"requests": ["cpu", "memory"], "limits": ["memory"]}
    bounds = {"min": {"cpu": "100m"}, "max": {"cpu": "2", "memory": "1Gi"}}
    ratio = {"maxLimitRequestRatio": {"memory": "2"}}
    resource_cases: list[tuple[str, dict[str, Any] | None, dict[str, Any]]] = [
        ("required-missing", None, {"require": require}),
        ("required-by-limits", resources(limits={"cpu": "1", "memory": "1Gi"}), {"require": require}),
        (
            "required-by-defaults",
            None,
            {"require": require, "defaultRequest": {"cpu": "1"}, "default": {"memory": "1Gi"}},
        ),
        ("bounds-require-nothing", None, bounds),
        ("bounds-broken", resources({"cpu": "50m"}, {"cpu": "3", "memory": "2Gi"}), bounds),
        ("bounds-broken-inverted", resources({"cpu": "3"}, {"cpu": "50m"}), bounds),
        ("implicit-request", resources(limits={"memory": "16Gi"}), {"max": {"memory": "8Gi"}}),
        ("limit-below-request", resources({"cpu": "2"}, {"cpu": "1"}), {"require": {"limits": ["cpu"]}}),
        ("ratio-ok", resources({"memory": "256Mi"}, {"memory": "512Mi"}), ratio),
        ("ratio-broken", resources({"memory": "256Mi"}, {"memory": "1Gi"}), ratio),
        ("ratio-zero-request", resources({"memory": "0"}, {"memory": "1Gi"}), ratio),
        ("invalid-quantity", resources({"cpu": "lots"}), {"require": {"requests": ["cpu"]}}),
        ("no-container-rules", resources({"cpu": "2"}, {"cpu": "1"}), {"defaultRequest": {"memory": "1Gi"}}),
    ]
    for name, res, spec in resource_cases:
        yield _pod_case(f"resources-{name}", pod(container(**_fields(res))), policy(resources=spec))
        yield Case(
            f"resources-{name}-template", (policy(resources=spec),), deployment(container(**_fields(res)))
        )
    for case_id, res, policies, _ in validation.LEFT_OUT_DEFAULT_LIMITS:
        yield _pod_case(f"left-out-default-limit-{case_id}", pod(container(resources=res)), *policies)
        yield Case(
            f"left-out-default-limit-{case_id}-template", policies, deployment(container(resources=res))
        )
    yield _pod_case(
        "init-containers-held-to-resource-rules",
        pod(container(resources=resources({"cpu": "1"})), init=(container("setup"),)),
        policy(resources={"require": {"requests": ["cpu"]}}),
    )
    for i, (wanted, res, _) in enumerate(validation.MIN_QOS_CASES):
        yield _pod_case(
            f"min-qos-{i}", pod(container(**_fields(res))), policy(resources={"minQoSClass": wanted})
        )
    guaranteed = policy(resources={"minQoSClass": "Guaranteed"})
    for i, (spec, _) in enumerate(validation.QOS_CASES):
        yield _pod_case(f"qos-{i}", {**pod(), "spec": spec}, guaranteed)
        template = deployment()
        template["spec"]["template"]["spec"] = spec
        yield Case(f"qos-{i}-template", (guaranteed,), template)
    web = policy(
        "web-baseline",
        probes={"readiness": {"required": True, "default": TCP_AUTO}},
        resources={"max": {"memory": "8Gi"}},
    )
    yield Case(
        "one-consolidated-message",
        (web,),
        deployment(container(port=None, resources=resources(limits={"memory": "16Gi"}))),
    )
    rule = {"probes": {"readiness": {"required": True}}}
    enforce, warn, audit = (
        policy(name, enforcement=name.capitalize(), **rule) for name in ("enforce", "warn", "audit")
    )
    yield _pod_case("enforcement-levels", pod(), audit, warn, enforce)
    yield Case("enforcement-levels-template", (audit, warn, enforce), deployment(container()))
    # The limits: at most 16 warnings, the last counting the rest; a warning of at most 250 code
    # points; a denial message of at most 1700.
    yield _pod_case("fifteen-warnings", validation.many_containers(5), validation.WARN_PROBES)
    yield _pod_case("sixteen-warnings", validation.SIXTEEN_WARNINGS, validation.WARN_PROBES)
    yield _pod_case("eighteen-warnings", validation.many_containers(6), validation.WARN_PROBES)
    yield _pod_case(
        "eighteen-warnings-on-a-denial", validation.many_containers(6), validation.WARN_PROBES, enforce
    )
    yield _pod_case("long-warning", pod(), validation.LONG_NAMED_WARN)
    yield _pod_case("long-denial-message", validation.many_containers(12), validation.ENFORCE_PROBES)
    yield _pod_case("only-warn", pod(), warn)
    yield _pod_case("only-audit", pod(), audit)
    elsewhere = policy(match={"namespaces": ["other"]}, probes={"readiness": {"required": True}})
    yield _pod_case("policy-does-not-match", pod(), elsewhere)
    web_only = policy(
        match={"podSelector": {"matchLabels": {"tier": "web"}}}, probes={"readiness": {"required": True}}
    )
    yield Case("pod-labels-select-web", (web_only,), deployment(container(), labels={"tier": "web"}))
    yield Case("pod-labels-select-db", (web_only,), deployment(container(), labels={"tier": "db"}))
    prod_only = policy(
        match={"namespaceSelector": {"matchLabels": {"env": "prod"}}},
        exclude={"podSelector": {"matchExpressions": [{"key": "legacy", "operator": "Exists"}]}},
        probes={"readiness": {"required": True}},
    )
    yield Case("namespace-labels-select", (prod_only,), deployment(container()))
    yield Case(
        "excluded-by-pod-labels",
        (prod_only,),
        deployment(container(), labels={"app": "web", "legacy": "yes"}),
    )


def _ratchet_cases() -> Iterator[Case]:
    strict = validation.STRICT
    legacy = deployment(container(resources=resources(limits={"memory": "4Gi"})))
    scaled = copy.deepcopy(legacy)
    scaled["spec"]["replicas"] = 5
    yield Case("ratchet-legacy-created", (strict,), legacy)
    yield Case("ratchet-scaled", (strict,), scaled, old=legacy)
    yield Case(
        "ratchet-same-rules-other-values",
        (strict,),
        with_container_change(legacy, resources=resources(limits={"memory": "8Gi"})),
        old=legacy,
    )
    fine = deployment(container(readinessProbe=TCP_AUTO, resources=resources(limits={"memory": "512Mi"})))
    worse = with_container_change(fine, resources=resources(limits={"memory": "2Gi"}))
    yield Case("ratchet-change-made-worse", (strict,), worse, old=fine)
    added = copy.deepcopy(worse)
    added["spec"]["template"]["spec"]["containers"].append(container("new"))
    yield Case("ratchet-container-added", (strict,), added, old=worse)


def _owned_pod(kind: str, api_version: str, labels: dict[str, str]) -> dict[str, Any]:
    owner = {
        "apiVersion": api_version,
        "kind": kind,
        "name": "owner",
        "uid": "6f1c2f0e-0000-4000-8000-000000000001",
        "controller": True,
    }
    return pod(container(), labels=labels, ownerReferences=[owner])


def _kinds_cases() -> Iterator[Case]:
    long_running = ["Deployment", "StatefulSet", "DaemonSet"]
    required = policy(match={"kinds": long_running}, probes={"readiness": {"required": True}})
    no_jobs = policy(exclude={"kinds": ["Job", "CronJob"]}, probes={"readiness": {"required": True}})
    for obj in validation.TEMPLATE_KINDS:
        yield Case(f"kinds-long-running-{obj['kind']}", (required,), obj)
        yield Case(f"kinds-no-jobs-{obj['kind']}", (no_jobs,), obj)
    defaults = policy(match={"kinds": long_running}, probes={"readiness": {"default": TCP_AUTO}})
    job_defaults = policy(match={"kinds": ["CronJob"]}, resources={"defaultRequest": {"cpu": "100m"}})
    owners = [
        ("deployment", "ReplicaSet", "apps/v1", {"pod-template-hash": "5d9f"}),
        ("replicaset", "ReplicaSet", "apps/v1", {}),
        ("statefulset", "StatefulSet", "apps/v1", {}),
        ("job", "Job", "batch/v1", {}),
        ("foreign", "Job", "example.com/v1", {}),
    ]
    for name, kind, api_version, labels in owners:
        yield _pod_case(f"kinds-pod-of-{name}", _owned_pod(kind, api_version, labels), defaults, job_defaults)
    yield _pod_case("kinds-bare-pod", pod(container()), defaults, job_defaults)


def _withdrawn_cases() -> Iterator[Case]:
    """A liveness default withdrawn from container "app" of Deployment "owner" (the pods of its
    ReplicaSet owner-5d9f), of StatefulSet "owner", and of the bare Pod "pod"."""
    probes = {
        "liveness": {
            "default": {"httpGet": {"path": "/healthz", "port": "auto"}},
            "onInjectedFailure": "Withdraw",
        },
        "readiness": {"default": TCP_AUTO},
    }
    withdrawing = with_withdrawals(
        policy("withdrawing", probes=probes),
        (SHOP, "Deployment", "owner", "app", "liveness"),
        (SHOP, "StatefulSet", "owner", "app", "liveness"),
        (SHOP, "Pod", "pod", "app", "liveness"),
    )
    of_deployment = _owned_pod("ReplicaSet", "apps/v1", {"pod-template-hash": "5d9f"})
    of_deployment["metadata"]["ownerReferences"][0]["name"] = "owner-5d9f"
    yield _pod_case("withdrawn-from-a-deployments-pods", of_deployment, withdrawing)
    yield _pod_case(
        "withdrawn-from-a-statefulsets-pods", _owned_pod("StatefulSet", "apps/v1", {}), withdrawing
    )
    yield _pod_case("withdrawn-from-a-bare-pod", pod(container()), withdrawing)
    yield _pod_case(
        "withdrawn-elsewhere-only",
        _owned_pod("ReplicaSet", "apps/v1", {"pod-template-hash": "5d9f"}),
        withdrawing,
    )
    yield _pod_case("withdrawn-but-another-container", pod(container("sidecar")), withdrawing)
    strict = policy("strict", enforcement="Audit", probes={"liveness": {"required": True}})
    yield _pod_case("withdrawn-but-required", of_deployment, withdrawing, strict)


CASES = [
    *_mutation_cases(),
    *_validation_cases(),
    *_ratchet_cases(),
    *_kinds_cases(),
    *_withdrawn_cases(),
]


@dataclass(frozen=True)
class KnownDifference:
    """A difference that cannot be closed: why, and the outcomes of each path, asserted as such."""

    why: str
    webhook_denies: bool
    apiserver_denies: bool


# Differences that cannot be closed, asserted as such (also listed in docs/apiserver-policies.md).
KNOWN_DIFFERENCES: dict[str, KnownDifference] = {
    # QOS_CASES[15]: pod-level limits, no pod-level requests, one container requesting cpu 1.
    "qos-15-template": KnownDifference(
        "minQoSClass on a template with pod-level limits and no pod-level request: the QoS class "
        "needs the containers' aggregated requests, which CEL cannot sum exactly; the VAP leaves "
        "the rule out (the policy's status says so) and the webhook, in engine=both, enforces it",
        webhook_denies=True,
        apiserver_denies=False,
    ),
}


def complete(obj: dict[str, Any]) -> dict[str, Any]:
    """The object with what the API server requires and the engine ignores: names, selectors, a
    Job's restartPolicy, a CronJob's schedule."""
    obj = copy.deepcopy(obj)
    kind = obj["kind"]
    obj.setdefault("metadata", {}).setdefault("name", kind.lower())
    if kind == "Pod":
        return obj
    spec = obj["spec"]
    template = spec["jobTemplate"]["spec"]["template"] if kind == "CronJob" else spec["template"]
    metadata = template.setdefault("metadata", {})
    labels = metadata.setdefault("labels", {}) or metadata.setdefault("labels", {"app": "parity"})
    if not labels:
        metadata["labels"] = labels = {"app": "parity"}
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"):
        spec["selector"] = {"matchLabels": dict(labels)}
    if kind == "StatefulSet":
        spec.setdefault("serviceName", "parity")
    if kind in ("Job", "CronJob"):
        template["spec"].setdefault("restartPolicy", "Never")
    if kind == "CronJob":
        spec.setdefault("schedule", "*/5 * * * *")
    return obj


def resubmittable(obj: dict[str, Any]) -> dict[str, Any]:
    """An object the API server returned, as something to send again (its system fields dropped)."""
    keep = ("name", "labels", "annotations", "ownerReferences")
    metadata = {k: v for k, v in obj.get("metadata", {}).items() if k in keep}
    return {**{k: v for k, v in obj.items() if k not in ("metadata", "status")}, "metadata": metadata}


@dataclass
class Expected:
    """The webhook path's outcome: the API server's answer without admission, then the engine's say."""

    answer: Answer
    verdict: Verdict


def _webhook_path(
    cluster: Cluster,
    case: Case,
    obj: dict[str, Any],
    namespace_labels: dict[str, str],
    old: dict[str, Any] | None,
    plain: Answer,
) -> Expected:
    if plain.status >= 400 or case.namespace in OUT_OF_SCOPE:
        return Expected(plain, Verdict())
    decoded = resubmittable(plain.body)
    if obj["kind"] == "Pod":
        plan = plan_mutation(decoded, case.namespace, namespace_labels, case.policies)
        mutated = dry_run_create(cluster.api, PLAIN, jsonpatch.apply_patch(decoded, plan.patch))
        assert mutated.status < 400, mutated.message
        decoded = mutated.body
        plain = mutated
    return Expected(
        plain, evaluate_workload(decoded, case.namespace, namespace_labels, case.policies, old_obj=old)
    )


def _containers(obj: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    spec = obj.get("spec", {})
    if obj.get("kind") != "Pod":
        spec = (
            (spec.get("jobTemplate", {}).get("spec", {}) if obj.get("kind") == "CronJob" else spec)
            .get("template", {})
            .get("spec", {})
        )
    fields = ("name", "readinessProbe", "livenessProbe", "startupProbe", "resources")
    return {
        key: [{f: c.get(f) for f in fields} for c in spec.get(key, [])]
        for key in ("containers", "initContainers")
    }


def _annotation(obj: dict[str, Any]) -> str | None:
    value = obj.get("metadata", {}).get("annotations", {}).get(INJECTED_ANNOTATION)
    return value if isinstance(value, str) else None


@pytest.fixture(scope="module")
def namespaces(cluster: Cluster) -> Iterator[dict[str, dict[str, str]]]:
    created = []
    for name, labels in NAMESPACES.items():
        answer = call(
            cluster.api, "POST", "/api/v1/namespaces", {"metadata": {"name": name, "labels": labels}}
        )
        # The operator's and the excluded namespace are the session's (other modules use them):
        # deleting them here would leave them Terminating under the next test's operator.
        if answer.status == 201 and name not in (OPERATOR_NAMESPACE, EXCLUDED_NAMESPACE):
            created.append(name)
        elif answer.status != 201:
            assert answer.status == 409, answer.message
    labels_of = {}
    for name in [*NAMESPACES, "kube-system"]:
        labels_of[name] = cluster.core.read_namespace(name).metadata.labels or {}
    for name in NAMESPACES:
        wait_for(
            functools.partial(cluster.core.read_namespaced_service_account, "default", name),
            30,
            what="default SA",
        )
    yield labels_of
    delete_compiled(cluster.api)
    for name in created:
        cluster.core.delete_namespace(name)
    if INSTALL_SECONDS:
        log.warning(
            "compiled policies applied -> run by the API server: max %.2fs, median %.2fs over %d installs",
            max(INSTALL_SECONDS),
            sorted(INSTALL_SECONDS)[len(INSTALL_SECONDS) // 2],
            len(INSTALL_SECONDS),
        )


_INSTALLED: list[list[dict[str, Any]]] = []


def _install(cluster: Cluster, policies: tuple[CompiledPolicy, ...]) -> None:
    objects = compile_policies(policies, SETTINGS).objects
    if _INSTALLED and _INSTALLED[-1] == objects:  # consecutive cases often share their policies
        return
    INSTALL_SECONDS.append(install(cluster.api, objects, SHOP))
    _INSTALLED.append(objects)


def _store(cluster: Cluster, namespace: str, obj: dict[str, Any]) -> dict[str, Any]:
    answer = call(cluster.api, "POST", object_path(obj, namespace), obj)
    assert answer.status == 201, answer.message
    return answer.body


def _update(stored: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    updated = copy.deepcopy(new)
    updated["metadata"]["resourceVersion"] = stored["metadata"]["resourceVersion"]
    return updated


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_the_api_server_decides_as_the_webhook_path(
    cluster: Cluster, namespaces: dict[str, dict[str, str]], case: Case
) -> None:
    obj = complete(case.obj)
    labels = namespaces[case.namespace]
    old = None
    if case.old is not None:
        _install(cluster, ())
        old_obj = complete(case.old)
        stored = {ns: _store(cluster, ns, old_obj) for ns in (PLAIN, case.namespace)}
        old = stored[case.namespace]
    try:
        _install(cluster, case.policies)
        if case.old is None:
            plain = dry_run_create(cluster.api, PLAIN, obj)
            actual = without_markers(dry_run_create(cluster.api, case.namespace, obj))
        else:
            assert old is not None
            name = obj["metadata"]["name"]
            plain = call(
                cluster.api, "PUT", object_path(obj, PLAIN, name), _update(stored[PLAIN], obj), dryRun="All"
            )
            actual = without_markers(
                call(
                    cluster.api,
                    "PUT",
                    object_path(obj, case.namespace, name),
                    _update(old, obj),
                    dryRun="All",
                )
            )
        expected = _webhook_path(cluster, case, obj, labels, old, plain)
    finally:
        if case.old is not None:
            for ns in (PLAIN, case.namespace):
                call(cluster.api, "DELETE", object_path(obj, ns, obj["metadata"]["name"]))
    known = KNOWN_DIFFERENCES.get(case.id)
    if known is not None:
        assert (expected.verdict.denied, actual.status == 403) == (
            known.webhook_denies,
            known.apiserver_denies,
        )
        return
    _assert_same(expected, actual)


def _causes(answer: Answer) -> set[str]:
    return {f"{c.get('field')}: {c.get('message')}" for c in answer.body.get("details", {}).get("causes", [])}


def _assert_same(expected: Expected, actual: Answer) -> None:
    verdict = expected.verdict
    if expected.answer.status >= 400:
        # The API server refuses it itself, before validating admission runs. The webhook path's
        # engine cannot be run on what the API server decoded then (a dry run returns no object),
        # and the mutation may add its own causes (a probe on port 0, from a port without a number):
        # the refusal and the API server's own causes are what both paths share.
        assert actual.status == expected.answer.status, actual.message
        assert _causes(expected.answer) <= _causes(actual), actual.message
        return
    # The Warn violations are warnings whether or not the request is refused, on both paths.
    warned = f"Validation failed for ValidatingAdmissionPolicy '{WARN_NAME}' with binding '{WARN_NAME}': "
    assert sorted(actual.warnings) == sorted(
        [*expected.answer.warnings, *(warned + w for w in verdict.warnings)]
    ), actual.message
    if verdict.denied:
        prefix = f"ValidatingAdmissionPolicy '{ENFORCE_NAME}' with binding '{ENFORCE_NAME}' denied request: "
        assert actual.status == 403, actual.message
        assert actual.message.endswith(" is forbidden: " + prefix + verdict.message), actual.message
        return
    assert actual.status in (200, 201), actual.message
    assert _containers(actual.body) == _containers(expected.answer.body)
    assert _annotation(actual.body) == _annotation(expected.answer.body)
