"""The validating webhook's verdict: every rule, after defaults, per policy, with ratcheting on UPDATE."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from production_policy.engine import CompiledPolicy, Verdict, Violation, evaluate_workload, pod_template
from production_policy.engine.qos import pod_qos_class
from production_policy.engine.validation import MAX_MESSAGE, MAX_WARNING_LENGTH, MAX_WARNINGS, MORE_WARNINGS
from tests.support.engine import (
    TCP_AUTO,
    container,
    deployment,
    pod,
    policy,
    resources,
    with_container_change,
)


def _verdict(obj: dict[str, Any], *policies: CompiledPolicy, old: dict[str, Any] | None = None) -> Verdict:
    return evaluate_workload(obj, "shop", {"kubernetes.io/metadata.name": "shop"}, policies, old_obj=old)


def _found(obj: dict[str, Any], *policies: CompiledPolicy) -> list[tuple[str, str, str]]:
    return [(v.container, v.field, v.message) for v in _verdict(obj, *policies).violations]


# --- pod templates ---------------------------------------------------------------------------------

TEMPLATE = {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [container()]}}


TEMPLATE_KINDS: list[dict[str, Any]] = [
    {"apiVersion": "v1", "kind": "Pod", **TEMPLATE},
    *(
        {"apiVersion": "apps/v1", "kind": kind, "spec": {"template": TEMPLATE}}
        for kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet")
    ),
    {"apiVersion": "batch/v1", "kind": "Job", "spec": {"template": TEMPLATE}},
    {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "spec": {"jobTemplate": {"spec": {"template": TEMPLATE}}},
    },
]
"""A Pod and each workload kind, all holding TEMPLATE."""


@pytest.mark.parametrize("obj", TEMPLATE_KINDS, ids=lambda obj: obj["kind"])
def test_pod_template_of_each_workload_kind(obj: dict[str, Any]) -> None:
    assert pod_template(obj) == (TEMPLATE["metadata"], TEMPLATE["spec"])


class _View(Mapping[str, Any]):
    """A read-only mapping that is not a dict, as kopf's ``Body`` is."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self._raw = raw

    def __getitem__(self, key: str) -> Any:
        return self._raw[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)


@pytest.mark.parametrize("obj", TEMPLATE_KINDS, ids=lambda obj: obj["kind"])
def test_pod_template_of_a_mapping_that_is_not_a_dict(obj: dict[str, Any]) -> None:
    # The audit gets kopf's Body view; a bare Pod, its own template, was once read as no template at all.
    assert pod_template(_View(obj)) == (TEMPLATE["metadata"], TEMPLATE["spec"])


@pytest.mark.parametrize(
    "obj",
    [
        {"apiVersion": "v1", "kind": "Service", "spec": {}},
        {
            "apiVersion": "example.com/v1",
            "kind": "Deployment",
            "spec": {"template": TEMPLATE},
        },  # not apps/v1's
        {"apiVersion": "v1", "kind": "Deployment", "spec": {"template": TEMPLATE}},
        {"kind": "Pod", **TEMPLATE},
        {"apiVersion": "apps/v1", "kind": "Deployment", "spec": {}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "spec": "oops"},
        {"apiVersion": "v1", "kind": ["Pod"]},
    ],
)
def test_objects_without_a_pod_template(obj: dict[str, Any]) -> None:
    assert pod_template(obj) is None
    assert _verdict(obj, policy(resources={"require": {"requests": ["cpu"]}})) == Verdict()


def test_a_template_without_metadata_or_spec_reads_as_empty() -> None:
    assert pod_template({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"template": {}}}) == ({}, {})


# --- probes ----------------------------------------------------------------------------------------

REQUIRE_PROBES = {
    "readiness": {"required": True},
    "liveness": {"required": True},
    "startup": {"required": True},
}


def test_required_probes_missing_without_defaults() -> None:
    assert _found(pod(container(port=8080)), policy(probes=REQUIRE_PROBES)) == [
        ("app", "readinessProbe", "no readinessProbe — add a readinessProbe"),
        ("app", "livenessProbe", "no livenessProbe — add a livenessProbe"),
        ("app", "startupProbe", "no startupProbe — add a startupProbe"),
    ]


def test_defaults_are_applied_before_validation() -> None:
    defaulted = policy(probes={"readiness": {"required": True, "default": TCP_AUTO}})
    assert _found(deployment(container(port=8080)), defaulted) == []
    assert _found(pod(container(port=8080, readinessProbe={"exec": {"command": ["ok"]}})), defaulted) == []


UNUSABLE_DEFAULTS: list[tuple[dict[str, Any], dict[str, Any], str]] = [
    (
        container(port=None),
        TCP_AUTO,
        'no readinessProbe and port "auto" has no declared port — add a readinessProbe or a containerPort',
    ),
    (
        container(port=None, ports=[{"containerPort": 53, "protocol": "UDP"}]),
        TCP_AUTO,
        'no readinessProbe and port "auto" has no declared TCP port'
        " — add a readinessProbe or a containerPort",
    ),
    (
        container(port=8080),
        {"httpGet": {"port": "http"}},
        'no readinessProbe and port "http" is not a declared port name'
        ' — add a readinessProbe or a containerPort named "http"',
    ),
]
"""(container, readiness default, the message for the missing required probe)."""


@pytest.mark.parametrize(("app", "default", "message"), UNUSABLE_DEFAULTS)
def test_a_default_that_cannot_apply_says_why(
    app: dict[str, Any], default: dict[str, Any], message: str
) -> None:
    assert _found(pod(app), policy(probes={"readiness": {"required": True, "default": default}})) == [
        ("app", "readinessProbe", message)
    ]


def test_sidecars_need_probes_and_plain_init_containers_do_not() -> None:
    init = (container("migrate", port=None), container("proxy", port=None, restartPolicy="Always"))
    found = _found(
        pod(container(readinessProbe=TCP_AUTO), init=init), policy(probes={"readiness": {"required": True}})
    )
    assert found == [("proxy", "readinessProbe", "no readinessProbe — add a readinessProbe")]


# --- resources -------------------------------------------------------------------------------------


def _resource_findings(res: dict[str, Any] | None, **resource_spec: Any) -> list[tuple[str, str]]:
    fields: dict[str, Any] = {} if res is None else {"resources": res}
    return [
        (field, message)
        for _, field, message in _found(pod(container(**fields)), policy(resources=resource_spec))
    ]


def test_required_requests_and_limits() -> None:
    require = {"requests": ["cpu", "memory"], "limits": ["memory"]}
    assert _resource_findings(None, require=require) == [
        ("resources.requests.cpu", "no resources.requests.cpu — add resources.requests.cpu"),
        ("resources.requests.memory", "no resources.requests.memory — add resources.requests.memory"),
        ("resources.limits.memory", "no resources.limits.memory — add resources.limits.memory"),
    ]
    # A limit alone satisfies a required request: Kubernetes sets the request to it.
    assert _resource_findings(resources(limits={"cpu": "1", "memory": "1Gi"}), require=require) == []
    # Defaults that would be injected count.
    assert (
        _resource_findings(None, require=require, defaultRequest={"cpu": "1"}, default={"memory": "1Gi"})
        == []
    )


LIMIT = {"require": {"limits": ["memory"]}, "default": {"memory": "512Mi"}}

LeftOutCase = tuple[str, dict[str, Any], tuple[CompiledPolicy, ...], list[tuple[str, str]]]
LEFT_OUT_DEFAULT_LIMITS: list[LeftOutCase] = [
    (
        "request-above-default",
        resources({"memory": "1Gi"}),
        (policy(resources=LIMIT),),
        [
            (
                "resources.limits.memory",
                "no resources.limits.memory and the default limit 512Mi was not injected, as it is below "
                "resources.requests.memory 1Gi — add resources.limits.memory of at least 1Gi",
            )
        ],
    ),
    (
        "cpu-bounded-by-max",
        resources({"cpu": "1500m"}),
        (policy(resources={"require": {"limits": ["cpu"]}, "default": {"cpu": "1"}, "max": {"cpu": "2"}}),),
        [
            (
                "resources.limits.cpu",
                "no resources.limits.cpu and the default limit 1 was not injected, as it is below "
                "resources.requests.cpu 1500m — add resources.limits.cpu of at least 1500m and at most 2",
            )
        ],
    ),
    (
        "request-above-max",
        resources({"memory": "4Gi"}),
        (policy(resources={**LIMIT, "max": {"memory": "2Gi"}}),),
        [
            (
                "resources.limits.memory",
                "no resources.limits.memory and the default limit 512Mi was not injected, as it is below "
                "resources.requests.memory 4Gi; no limit can pass, as it must be at least the request and "
                "at most max 2Gi — lower resources.requests.memory to at most 2Gi and add "
                "resources.limits.memory",
            ),
            ("resources.requests.memory", "resources.requests.memory 4Gi exceeds max 2Gi — set at most 2Gi"),
        ],
    ),
    (
        "default-of-another-policy-below-this-min",
        resources({"memory": "512Mi"}),
        (
            policy("defaults", priority=10, resources={"default": {"memory": "256Mi"}}),
            policy("strict", resources={"require": {"limits": ["memory"]}, "min": {"memory": "1Gi"}}),
        ),
        [
            (
                "resources.limits.memory",
                "no resources.limits.memory and the default limit 256Mi was not injected, as it is below "
                "resources.requests.memory 512Mi — add resources.limits.memory of at least 1Gi",
            ),
            (
                "resources.requests.memory",
                "resources.requests.memory 512Mi is below min 1Gi — set at least 1Gi",
            ),
        ],
    ),
]
"""A required limit whose default was left out for being below the request: (id, the container's
resources, the policies, the findings)."""


@pytest.mark.parametrize(
    ("res", "policies", "expected"),
    [case[1:] for case in LEFT_OUT_DEFAULT_LIMITS],
    ids=[case[0] for case in LEFT_OUT_DEFAULT_LIMITS],
)
def test_a_default_limit_below_the_request_is_explained(
    res: dict[str, Any], policies: tuple[CompiledPolicy, ...], expected: list[tuple[str, str]]
) -> None:
    found = [(v.field, v.message) for v in _verdict(pod(container(resources=res)), *policies).violations]
    assert found == expected


def test_a_default_limit_left_out_is_only_explained_where_a_limit_is_required() -> None:
    # Not required: nothing to refuse; required with no default at all: the plain message.
    assert _resource_findings(resources({"memory": "1Gi"}), default={"memory": "512Mi"}) == []
    assert _resource_findings(resources({"memory": "1Gi"}), require={"limits": ["memory"]}) == [
        ("resources.limits.memory", "no resources.limits.memory — add resources.limits.memory")
    ]
    # A request at the default gets it injected: nothing missing.
    assert _resource_findings(resources({"memory": "512Mi"}), **LIMIT) == []


def test_min_and_max_bound_what_is_set() -> None:
    bounds = {"min": {"cpu": "100m"}, "max": {"cpu": "2", "memory": "1Gi"}}
    assert _resource_findings(None, **bounds) == []  # bounds require nothing; `require` does
    assert _resource_findings(resources({"cpu": "50m"}, {"cpu": "3", "memory": "2Gi"}), **bounds) == [
        ("resources.requests.cpu", "resources.requests.cpu 50m is below min 100m — set at least 100m"),
        ("resources.limits.cpu", "resources.limits.cpu 3 exceeds max 2 — set at most 2"),
        ("resources.limits.memory", "resources.limits.memory 2Gi exceeds max 1Gi — set at most 1Gi"),
    ]
    assert _resource_findings(resources({"cpu": "3"}, {"cpu": "50m"}), **bounds)[:2] == [
        ("resources.requests.cpu", "resources.requests.cpu 3 exceeds max 2 — set at most 2"),
        ("resources.limits.cpu", "resources.limits.cpu 50m is below min 100m — set at least 100m"),
    ]


def test_an_implicit_request_is_reported_through_its_limit_only() -> None:
    assert _resource_findings(resources(limits={"memory": "16Gi"}), max={"memory": "8Gi"}) == [
        ("resources.limits.memory", "resources.limits.memory 16Gi exceeds max 8Gi — set at most 8Gi")
    ]


def test_limit_below_request_and_ratio() -> None:
    assert _resource_findings(resources({"cpu": "2"}, {"cpu": "1"}), require={"limits": ["cpu"]}) == [
        (
            "resources.limits.cpu",
            "resources.limits.cpu 1 is below resources.requests.cpu 2 — raise the limit or lower the request",
        )
    ]
    ratio = {"maxLimitRequestRatio": {"memory": "2"}}
    assert _resource_findings(resources({"memory": "256Mi"}, {"memory": "512Mi"}), **ratio) == []
    assert _resource_findings(resources({"memory": "256Mi"}, {"memory": "1Gi"}), **ratio) == [
        (
            "resources.limits.memory",
            "resources.limits.memory 1Gi / resources.requests.memory 256Mi exceeds "
            "maxLimitRequestRatio 2 — lower the limit or raise the request",
        )
    ]
    assert (
        _resource_findings(resources({"memory": "0"}, {"memory": "1Gi"}), **ratio)[0][0]
        == "resources.limits.memory"
    )


def test_invalid_quantities_are_reported() -> None:
    assert _resource_findings(resources({"cpu": "lots"}), require={"requests": ["cpu"]}) == [
        (
            "resources.requests.cpu",
            'resources.requests.cpu "lots" is not a valid quantity — fix resources.requests.cpu',
        )
    ]


def test_policies_without_container_resource_rules_do_not_judge_resources() -> None:
    assert _resource_findings(resources({"cpu": "2"}, {"cpu": "1"}), defaultRequest={"memory": "1Gi"}) == []


def test_init_containers_are_held_to_resource_rules() -> None:
    found = _found(
        pod(container(resources=resources({"cpu": "1"})), init=(container("setup"),)),
        policy(resources={"require": {"requests": ["cpu"]}}),
    )
    assert found == [
        ("setup", "resources.requests.cpu", "no resources.requests.cpu — add resources.requests.cpu")
    ]


# --- QoS -------------------------------------------------------------------------------------------

GUARANTEED = resources({"cpu": "1", "memory": "1Gi"}, {"cpu": "1", "memory": "1Gi"})


QOS_CASES: list[tuple[dict[str, Any], str]] = [
    ({"containers": [container()]}, "BestEffort"),
    ({"containers": [container(resources={})]}, "BestEffort"),
    ({"containers": [container(resources=resources({"cpu": "0"}))]}, "BestEffort"),
    ({"containers": [container(resources=resources({"cpu": "100m"}))]}, "Burstable"),
    ({"containers": [container(resources=GUARANTEED)]}, "Guaranteed"),
    # Limits alone: requests default to them, so the container is Guaranteed.
    (
        {"containers": [container(resources=resources(limits={"cpu": "1", "memory": "1Gi"}))]},
        "Guaranteed",
    ),
    ({"containers": [container(resources=resources(limits={"cpu": "1"}))]}, "Burstable"),
    (
        {
            "containers": [
                container(resources=resources({"cpu": "1", "memory": "1Gi"}, {"cpu": "2", "memory": "1Gi"}))
            ]
        },
        "Burstable",
    ),
    (
        {"containers": [container(resources=GUARANTEED), container("b")]},
        "Burstable",
    ),  # Guaranteed + BestEffort
    (
        {"containers": [container(resources=GUARANTEED)], "initContainers": [container("init")]},
        "Burstable",
    ),
    (
        {
            "containers": [container(resources=GUARANTEED)],
            "initContainers": [container("i", resources=GUARANTEED)],
        },
        "Guaranteed",
    ),
    ({"containers": [], "initContainers": []}, "BestEffort"),
    # Pod-level resources replace the containers'.
    ({"resources": {"limits": {"cpu": "2", "memory": "2Gi"}}, "containers": [container()]}, "Guaranteed"),
    (
        {"resources": {"requests": {"cpu": "1"}}, "containers": [container(resources=GUARANTEED)]},
        "Burstable",
    ),
    ({"resources": {}, "containers": [container(resources=GUARANTEED)]}, "Guaranteed"),
    # A missing pod-level request is the containers' aggregated request.
    (
        {
            "resources": {"limits": {"cpu": "2", "memory": "2Gi"}},
            "containers": [container(resources=resources({"cpu": "1"}))],
        },
        "Burstable",
    ),
    (
        {
            "resources": {"limits": {"cpu": "2", "memory": "2Gi"}},
            "containers": [
                container("a", resources=resources({"cpu": "1", "memory": "1Gi"})),
                container("b", resources=resources({"cpu": "1", "memory": "1Gi"})),
            ],
        },
        "Guaranteed",
    ),
    (
        {
            "resources": {"limits": {"cpu": "2", "memory": "2Gi"}},
            "containers": [container(resources=resources({"cpu": "1", "memory": "1Gi"}))],
            "initContainers": [
                container("sidecar", restartPolicy="Always", resources=resources({"cpu": "1"})),
                container("init", resources=resources({"cpu": "1", "memory": "2Gi"})),
            ],
        },
        "Guaranteed",
    ),
]
"""(pod spec, its QoS class)."""


@pytest.mark.parametrize(("spec", "qos"), QOS_CASES)
def test_qos_class_as_kubernetes_computes_it(spec: dict[str, Any], qos: str) -> None:
    assert pod_qos_class(spec) == qos


MIN_QOS_CASES: list[tuple[str, dict[str, Any] | None, str | None]] = [
    (
        "Burstable",
        None,
        "QoS class BestEffort is below minQoSClass Burstable — set resources.requests on the containers",
    ),
    (
        "Guaranteed",
        resources({"cpu": "1"}),
        "QoS class Burstable is below minQoSClass Guaranteed — set cpu and memory "
        "limits on every container, with requests equal to limits",
    ),
    ("Guaranteed", GUARANTEED, None),
    ("BestEffort", None, None),
]
"""(minQoSClass, container resources, the violation message or None)."""


@pytest.mark.parametrize(("wanted", "res", "message"), MIN_QOS_CASES)
def test_min_qos_class(wanted: str, res: dict[str, Any] | None, message: str | None) -> None:
    fields: dict[str, Any] = {} if res is None else {"resources": res}
    found = _found(pod(container(**fields)), policy(resources={"minQoSClass": wanted}))
    assert found == ([("", "qosClass", message)] if message else [])


# --- verdicts --------------------------------------------------------------------------------------


def test_one_consolidated_message_per_request() -> None:
    web = policy(
        "web-baseline",
        probes={"readiness": {"required": True, "default": TCP_AUTO}},
        resources={"max": {"memory": "8Gi"}},
    )
    verdict = _verdict(deployment(container(port=None, resources=resources(limits={"memory": "16Gi"}))), web)
    assert verdict.denied
    assert verdict.message == (
        'production policy "web-baseline" (Enforce): container "app": no readinessProbe and port "auto"'
        " has no declared port — add a readinessProbe or a containerPort;"
        ' container "app": resources.limits.memory 16Gi exceeds max 8Gi — set at most 8Gi'
    )
    assert verdict.warnings == [] and verdict.audit == []


def test_enforcement_levels() -> None:
    rule = {"probes": {"readiness": {"required": True}}}
    enforce, warn, audit = (
        policy(name, enforcement=name.capitalize(), **rule) for name in ("enforce", "warn", "audit")
    )
    verdict = _verdict(pod(), audit, warn, enforce)
    assert verdict.denied
    assert [v.policy for v in verdict.violations] == [
        "audit",
        "enforce",
        "warn",
    ]  # by precedence: priority, name
    # One channel per mode, as the compiled VAPs: the refusal names the Enforce violations, and the
    # Warn ones are warnings, on a denial too.
    assert verdict.message == (
        'production policy "enforce" (Enforce): container "app": no readinessProbe — add a readinessProbe'
    )
    assert verdict.warnings == [
        'production policy "warn" (Warn): container "app": no readinessProbe — add a readinessProbe'
    ]
    assert verdict.audit == [
        Violation(
            "app",
            "readinessProbe",
            "no readinessProbe — add a readinessProbe",
            "audit",
            "Audit",
            "probes.required",
        )
    ]
    only_warn = _verdict(pod(), warn)
    assert not only_warn.denied and len(only_warn.warnings) == 1 and only_warn.message == ""
    assert _verdict(pod(), audit).message == ""


WARN_PROBES = policy("warn-probes", enforcement="Warn", probes=REQUIRE_PROBES)
LONG_NAMED_WARN = policy("long-" + "w" * 240, enforcement="Warn", probes={"readiness": {"required": True}})
ENFORCE_PROBES = policy("all-probes", probes=REQUIRE_PROBES)


def many_containers(count: int) -> dict[str, Any]:
    """A pod of ``count`` containers with no port and no probe: three probe violations each."""
    return pod(*(container(f"c{i:02}", port=None) for i in range(count)))


TCP_8080 = {"tcpSocket": {"port": 8080}}
SIXTEEN_WARNINGS = many_containers(5)
SIXTEEN_WARNINGS["spec"]["containers"].append(
    container("c05", port=None, readinessProbe=TCP_8080, startupProbe=TCP_8080)
)


def test_at_most_sixteen_warnings_the_last_saying_how_many_more() -> None:
    five = _verdict(many_containers(5), WARN_PROBES).warnings  # 15 violations
    assert len(five) == 15 and all(w.startswith('production policy "warn-probes" (Warn): ') for w in five)
    sixteen = _verdict(SIXTEEN_WARNINGS, WARN_PROBES).warnings
    assert sixteen[:15] == five and len(sixteen) == MAX_WARNINGS and "livenessProbe" in sixteen[15]
    six = _verdict(many_containers(6), WARN_PROBES).warnings  # 18: 15 listed, 3 more
    assert six == [*five, MORE_WARNINGS.format(3)] and len(six) == MAX_WARNINGS
    (cut,) = _verdict(pod(), LONG_NAMED_WARN).warnings
    assert len(cut) == MAX_WARNING_LENGTH and cut.endswith("w…")


def test_a_long_denial_message_is_cut() -> None:
    verdict = _verdict(many_containers(12), ENFORCE_PROBES)  # 36 violations
    assert verdict.denied and len(verdict.message) == MAX_MESSAGE and verdict.message.endswith("…")
    assert verdict.message.startswith(
        'production policy "all-probes" (Enforce): container "c00": no readinessProbe'
    )
    assert len(verdict.violations) == 36


def test_policies_that_do_not_match_are_not_applied() -> None:
    elsewhere = policy(match={"namespaces": ["other"]}, probes={"readiness": {"required": True}})
    assert _verdict(pod(), elsewhere) == Verdict()


def test_a_pods_own_labels_select_the_policies() -> None:
    web_only = policy(
        match={"podSelector": {"matchLabels": {"tier": "web"}}}, probes={"readiness": {"required": True}}
    )
    assert _verdict(deployment(container(), labels={"tier": "web"}), web_only).denied
    assert not _verdict(deployment(container(), labels={"tier": "db"}), web_only).violations


# --- ratcheting ------------------------------------------------------------------------------------

STRICT = policy("strict", probes={"readiness": {"required": True}}, resources={"max": {"memory": "1Gi"}})


def test_update_keeps_violations_the_old_template_already_had() -> None:
    legacy = deployment(container(resources=resources(limits={"memory": "4Gi"})))
    scaled = copy.deepcopy(legacy)
    scaled["spec"]["replicas"] = 5
    assert _verdict(legacy, STRICT).denied
    assert _verdict(scaled, STRICT, old=legacy) == Verdict()
    # The same rules still broken, with other values: the change did not make anything worse.
    assert (
        _verdict(
            with_container_change(legacy, resources=resources(limits={"memory": "8Gi"})), STRICT, old=legacy
        )
        == Verdict()
    )


def test_update_counts_violations_the_change_introduced() -> None:
    fine = deployment(container(readinessProbe=TCP_AUTO, resources=resources(limits={"memory": "512Mi"})))
    worse = with_container_change(fine, resources=resources(limits={"memory": "2Gi"}))
    verdict = _verdict(worse, STRICT, old=fine)
    assert [(v.field, v.rule) for v in verdict.violations] == [("resources.limits.memory", "resources.max")]
    added = copy.deepcopy(worse)
    added["spec"]["template"]["spec"]["containers"].append(container("new"))
    assert {v.container for v in _verdict(added, STRICT, old=worse).violations} == {"new"}


def test_an_old_object_without_a_template_ratchets_nothing() -> None:
    assert _verdict(pod(), STRICT, old={"kind": "ConfigMap"}).denied
