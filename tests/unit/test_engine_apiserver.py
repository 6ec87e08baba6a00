"""The compiler to in-apiserver admission policies: names, shape, selectors, determinism, what it leaves out.

What the compiled CEL does is proven against the real API server by tests/e2e/test_apiserver_parity.py;
these tests pin the plumbing around it.
"""

from __future__ import annotations

import json
import random
from typing import Any

from production_policy.admission.configuration import (
    WebhookSettings,
    build_configurations,
    namespace_selector,
    url_client_config,
)
from production_policy.api.base import LabelSelector
from production_policy.engine import CompiledPolicy
from production_policy.engine.apiserver import (
    AUDIT_NOTE,
    DEFAULTS_NAME,
    ENFORCE_NAME,
    QOS_NOTE,
    WARN_NAME,
    InstallSettings,
    compile_policies,
    not_compiled,
)
from production_policy.engine.apiserver.canary import (
    CANARY_NAME,
    CANARY_WARNING,
    CanaryResult,
    canary_objects,
    canary_probe,
    read_canary,
)
from production_policy.engine.apiserver.cel import lit, policy_match, selector
from production_policy.engine.apiserver.report import EngineState, compiled_condition
from production_policy.engine.audit import PolicyFacts, Tally, compiled_event, desired_status
from production_policy.engine.names import CANARY_ANNOTATION, CANARY_LABEL
from tests.support.engine import TCP_AUTO, policy

SETTINGS = InstallSettings("production-policy", ("legacy",), labels={"app.kubernetes.io/name": "pp"})
POLICIES = [
    policy("web", priority=10, probes={"readiness": {"required": True, "default": TCP_AUTO}}),
    policy("warn", enforcement="Warn", resources={"max": {"memory": "8Gi"}}),
    policy(
        "audit",
        enforcement="Audit",
        resources={"defaultRequest": {"cpu": "100m"}, "minQoSClass": "Burstable"},
    ),
]


def _objects(
    policies: list[CompiledPolicy] = POLICIES, settings: InstallSettings = SETTINGS
) -> list[dict[str, Any]]:
    return compile_policies(policies, settings).objects


def test_fixed_names_kinds_and_order() -> None:
    objects = _objects()
    assert [(o["kind"], o["metadata"]["name"]) for o in objects] == [
        ("MutatingAdmissionPolicy", DEFAULTS_NAME),
        ("MutatingAdmissionPolicyBinding", DEFAULTS_NAME),
        ("ValidatingAdmissionPolicy", ENFORCE_NAME),
        ("ValidatingAdmissionPolicyBinding", ENFORCE_NAME),
        ("ValidatingAdmissionPolicy", WARN_NAME),
        ("ValidatingAdmissionPolicyBinding", WARN_NAME),
    ]
    assert {o["apiVersion"] for o in objects} == {"admissionregistration.k8s.io/v1"}
    assert all(o["metadata"]["labels"] == {"app.kubernetes.io/name": "pp"} for o in objects)
    bindings = objects[1::2]
    assert [b["spec"]["policyName"] for b in bindings] == [DEFAULTS_NAME, ENFORCE_NAME, WARN_NAME]
    assert [b["spec"].get("validationActions") for b in bindings] == [None, ["Deny"], ["Warn"]]


def test_the_map_runs_on_pod_create_fails_open_and_is_reinvoked() -> None:
    spec = _objects()[0]["spec"]
    assert spec["failurePolicy"] == "Ignore" and spec["reinvocationPolicy"] == "IfNeeded"
    assert spec["matchConstraints"]["resourceRules"] == [
        {
            "apiGroups": [""],
            "apiVersions": ["v1"],
            "operations": ["CREATE"],
            "resources": ["pods"],
            "scope": "Namespaced",
        }
    ]
    assert [m["patchType"] for m in spec["mutations"]] == [
        "JSONPatch"
    ]  # one mutation: requests and limits together
    # Its second run (IfNeeded) stops at the match condition once nothing a policy defaults is missing.
    condition = spec["matchConditions"][0]["expression"]
    assert (
        "!has(c.readinessProbe)" in condition
        and '!("cpu" in c.?resources.?requests.orValue({}))' in condition
    )
    assert "livenessProbe" not in condition and "limits" not in condition  # no policy defaults them
    nothing = compile_policies([policy("plain", resources={"max": {"cpu": "1"}})], SETTINGS).objects[0]
    assert nothing["spec"]["matchConditions"][0]["expression"] == "false"


def test_the_vaps_cover_pods_and_every_workload_kind_and_follow_the_failure_policy() -> None:
    for settings, failure in (
        (SETTINGS, "Fail"),
        (InstallSettings("pp", validating_failure_policy="Ignore"), "Ignore"),
    ):
        for vap in _objects(settings=settings)[2::2]:
            rules = vap["spec"]["matchConstraints"]["resourceRules"]
            assert {r for rule in rules for r in rule["resources"]} == {
                "pods",
                "deployments",
                "statefulsets",
                "daemonsets",
                "replicasets",
                "jobs",
                "cronjobs",
            }
            assert rules[0]["operations"] == ["CREATE"]  # pods: their owner's template was judged on UPDATE
            assert all(rule["operations"] == ["CREATE", "UPDATE"] for rule in rules[1:])
            assert vap["spec"]["failurePolicy"] == failure


def test_bindings_leave_out_the_namespaces_the_webhooks_never_see() -> None:
    webhook = namespace_selector(WebhookSettings("production-policy", ("legacy",)))
    for binding in _objects()[1::2]:
        assert binding["spec"]["matchResources"]["namespaceSelector"] == webhook
    never = webhook["matchExpressions"][0]["values"]
    assert never == ["kube-node-lease", "kube-public", "kube-system", "legacy", "production-policy"]
    assert webhook["matchExpressions"][1] == {
        "key": "productionpolicy.dev/ignore",
        "operator": "NotIn",
        "values": ["true", "True", "TRUE"],
    }


def test_output_is_deterministic_whatever_the_order_of_the_policies() -> None:
    reference = json.dumps(_objects(), sort_keys=False)
    for seed in range(5):
        shuffled = list(POLICIES)
        random.Random(seed).shuffle(shuffled)
        assert json.dumps(_objects(shuffled), sort_keys=False) == reference


def test_a_policy_edit_changes_the_compiled_objects() -> None:
    edited = [
        policy(
            "web",
            priority=10,
            probes={"readiness": {"required": True, "default": {"tcpSocket": {"port": 81}}}},
        ),
        *POLICIES[1:],
    ]
    assert _objects(edited)[0] != _objects()[0]
    assert _objects(edited)[2:] != _objects()[2:]  # the VAPs simulate the defaults on templates


def test_no_policy_still_gives_every_object() -> None:
    objects = _objects([])
    assert len(objects) == 6
    enforce, warn = objects[2], objects[4]
    for vap in (enforce, warn):  # nothing to refuse or warn about: nothing for the API server to compile
        assert vap["spec"]["validations"] == [{"expression": "true"}]
        assert vap["spec"]["variables"] == [] and "matchConditions" not in vap["spec"]


def test_a_mode_no_policy_uses_gets_a_vap_with_no_rules() -> None:
    enforce_only = [POLICIES[0]]
    enforce, warn = _objects(enforce_only)[2], _objects(enforce_only)[4]
    assert enforce["spec"]["validations"][0]["expression"] == "variables.enforced == 0"
    assert warn["spec"]["validations"] == [{"expression": "true"}]
    warn_only = [POLICIES[1]]
    enforce, warn = _objects(warn_only)[2], _objects(warn_only)[4]
    assert enforce["spec"]["validations"] == [{"expression": "true"}]
    assert len(warn["spec"]["validations"]) == 16


def test_audit_policies_give_defaults_but_no_rules() -> None:
    objects = _objects()
    mutating = {v["name"]: v["expression"] for v in objects[0]["spec"]["variables"]}
    # The audit policy's default request is injected, as the webhook does.
    assert mutating["dreq_cpu"] == 'variables.m1 ? "100m" : ""'
    # precedence: web (priority 10), then audit, warn by name: indexes 0, 1, 2
    enforce = {v["name"] for v in objects[2]["spec"]["variables"]}
    warn = {v["name"] for v in objects[4]["spec"]["variables"]}
    assert "f0" in enforce and "f1" not in enforce | warn and "f2" in warn


def test_each_vap_holds_only_its_own_modes_rules() -> None:
    enforce, warn = _objects()[2], _objects()[4]
    names = [{v["name"] for v in vap["spec"]["variables"]} for vap in (enforce, warn)]
    assert {"f0", "v0", "enforced", "message"} <= names[0] and not {"f2", "v2", "warned"} & names[0]
    assert {"f2", "v2", "warned"} <= names[1] and not {"f0", "v0", "enforced", "message"} & names[1]
    # the Warn policy's rule is nowhere in the Enforce VAP, the Enforce one's nowhere in the Warn VAP
    assert '"Warn"' not in json.dumps(enforce) and "8Gi" not in json.dumps(enforce)
    assert "(Enforce)" not in json.dumps(warn) and "readinessProbe" not in json.dumps(warn)


def test_an_edit_of_one_mode_leaves_the_other_modes_vap_byte_identical() -> None:
    before = [json.dumps(o) for o in _objects()]
    enforce_edit = [  # its rules change, its defaults do not
        policy(
            "web",
            priority=10,
            probes={"readiness": {"required": True, "default": TCP_AUTO}, "liveness": {"required": True}},
        ),
        *POLICIES[1:],
    ]
    after = [json.dumps(o) for o in _objects(enforce_edit)]
    assert after[2] != before[2] and after[4] == before[4]
    assert after[0] == before[0]  # the defaults are the same: nor the MAP
    warn_edit = [
        POLICIES[0],
        policy("warn", enforcement="Warn", resources={"max": {"memory": "4Gi"}}),
        POLICIES[2],
    ]
    after = [json.dumps(o) for o in _objects(warn_edit)]
    assert after[4] != before[4] and after[2] == before[2] and after[0] == before[0]
    # A default both VAPs simulate is in both, and in the MAP.
    default_edit = [
        POLICIES[0],
        POLICIES[1],
        policy(
            "audit",
            enforcement="Audit",
            resources={"defaultRequest": {"cpu": "200m"}, "minQoSClass": "Burstable"},
        ),
    ]
    after = [json.dumps(o) for o in _objects(default_edit)]
    assert after[0] != before[0] and after[2] != before[2] and after[4] != before[4]


def test_the_warn_vap_has_one_validation_per_warning_the_last_counting_the_rest() -> None:
    validations = _objects()[4]["spec"]["validations"]
    assert len(validations) == 16
    assert validations[3] == {
        "expression": "size(variables.warned) <= 3",
        "messageExpression": "string(variables.warned[3])",
        "message": "a production policy warns",
    }
    assert validations[15]["expression"] == "size(variables.warned) <= 15"
    assert validations[15]["messageExpression"] == (
        "size(variables.warned) == 16 ? string(variables.warned[15]) : "
        '"… and " + string(size(variables.warned) - 15) + " more Warn violations"'
    )


def test_what_is_not_compiled_is_reported_per_policy() -> None:
    assert compile_policies(POLICIES, SETTINGS).not_compiled == {"web": [], "audit": [AUDIT_NOTE], "warn": []}
    assert not_compiled(policy(resources={"minQoSClass": "Guaranteed"}).policy) == [QOS_NOTE]
    assert not_compiled(policy(resources={"minQoSClass": "BestEffort"}).policy) == []
    assert not_compiled(policy(enforcement="Audit", resources={"defaultRequest": {"cpu": "1"}}).policy) == []


def test_label_selectors_compile_to_kubernetes_semantics() -> None:
    sel = LabelSelector.model_validate(
        {
            "matchLabels": {"env": "prod"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["web", "api"]},
                {"key": "team", "operator": "NotIn", "values": ["x"]},
                {"key": "owner", "operator": "Exists"},
                {"key": "legacy", "operator": "DoesNotExist"},
            ],
        }
    )
    assert selector(sel, "L") == (
        '(L[?"env"] == optional.of("prod")) && (("tier" in L && L["tier"] in ["web", "api"])) && '
        '(!("team" in L && L["team"] in ["x"])) && ("owner" in L) && (!("legacy" in L))'
    )
    assert selector(LabelSelector(), "L") == "true"


def test_match_and_exclude() -> None:
    both = policy(
        match={"namespaces": ["shop"], "podSelector": {"matchLabels": {"a": "b"}}},
        exclude={"namespaces": ["x"]},
    )
    assert policy_match(both.policy, "NS", "NL", "PL", "K") == (
        '((NS in ["shop"]) && ((PL[?"a"] == optional.of("b")))) && !((NS in ["x"]))'
    )
    assert policy_match(policy().policy, "NS", "NL", "PL", "K") == "true"


def test_string_literals_are_escaped() -> None:
    assert lit('a"b\\c\n—') == '"a\\"b\\\\c\\n—"'


# --- the canary and the status condition ------------------------------------------------------------


def test_the_canary_is_bound_to_labelled_configmaps_of_the_operator_namespace_only() -> None:
    objects = canary_objects("pp", {})
    assert [(o["kind"], o["metadata"]["name"]) for o in objects] == [
        ("MutatingAdmissionPolicy", CANARY_NAME),
        ("MutatingAdmissionPolicyBinding", CANARY_NAME),
        ("ValidatingAdmissionPolicy", CANARY_NAME),
        ("ValidatingAdmissionPolicyBinding", CANARY_NAME),
    ]
    for binding in objects[1::2]:
        assert binding["spec"]["matchResources"]["namespaceSelector"] == {
            "matchLabels": {"kubernetes.io/metadata.name": "pp"}
        }
    probe = canary_probe("pp", "2026-01-01T00:00:00.000000Z")
    assert probe["kind"] == "Event" and probe["metadata"]["labels"] == {CANARY_LABEL: "probe"}


def test_reading_the_canary() -> None:
    mutated = {"metadata": {"annotations": {CANARY_ANNOTATION: "mutated"}}}
    assert read_canary(mutated, [f"Validation failed for ...: {CANARY_WARNING}"]) == CanaryResult(True, True)
    assert read_canary({"metadata": {}}, []) == CanaryResult(False, False)
    assert read_canary({}, ["something else"]) == CanaryResult(False, False)


def test_the_condition_says_who_enforces() -> None:
    assert compiled_condition(None, [])[:2] == ("Unknown", "Pending")
    assert compiled_condition(EngineState(), [])[:2] == ("Unknown", "Pending")
    status, reason, message = compiled_condition(EngineState(error="HTTP 422: bad CEL"), [])
    assert (status, reason) == ("False", "Rejected") and "HTTP 422: bad CEL" in message
    assert "the webhook enforces this policy" in message
    status, reason, message = compiled_condition(EngineState(error="ReadTimeoutError: x", timed_out=True), [])
    assert (status, reason) == ("False", "TimedOut") and "ReadTimeoutError: x" in message
    assert "the webhook enforces this policy" in message and "short of CPU" in message
    no_map = compiled_condition(EngineState(canary=CanaryResult(False, True)), [])
    assert no_map[:2] == ("False", "MutatingPolicyNotRun") and "admission plugin" in no_map[2]
    assert compiled_condition(EngineState(canary=CanaryResult(True, False)), [])[:2] == (
        "False",
        "ValidatingPolicyNotRun",
    )
    ok = EngineState(canary=CanaryResult(True, True), type_warnings=("x: y",))
    assert compiled_condition(ok, [])[:2] == ("True", "Enforced")
    partly = compiled_condition(ok, [QOS_NOTE])
    assert partly[:2] == ("True", "PartlyEnforced") and QOS_NOTE in partly[2] and "x: y" in partly[2]


def test_the_condition_is_in_the_status_and_its_changes_are_events() -> None:
    facts = PolicyFacts("p", 3, "Enforce", compiled=("False", "MutatingPolicyNotRun", "the webhook enforces"))
    first = desired_status(facts, Tally(), None, "2026-01-01T00:00:00Z")
    assert [c["type"] for c in first["conditions"]] == ["Ready", "CompiledToAPIServer"]
    assert first["conditions"][1]["observedGeneration"] == 3
    event = compiled_event(None, first)
    assert event is not None and (event.reason, event.warning) == ("MutatingPolicyNotRun", True)
    same = desired_status(facts, Tally(), first, "2026-01-01T00:01:00Z")
    assert same == first and compiled_event(first, same) is None  # transition time carried over
    enforced = PolicyFacts("p", 3, "Enforce", compiled=("True", "Enforced", "the API server enforces"))
    later = desired_status(enforced, Tally(), first, "2026-01-01T00:02:00Z")
    assert later["conditions"][1]["lastTransitionTime"] == "2026-01-01T00:02:00Z"
    event = compiled_event(first, later)
    assert event is not None and (event.reason, event.warning) == ("Enforced", False)
    pending = PolicyFacts("p", 3, "Enforce", compiled=("Unknown", "Pending", "not yet"))
    assert compiled_event(later, desired_status(pending, Tally(), later, "now")) is None
    assert [
        c["type"] for c in desired_status(PolicyFacts("p", 3, "Enforce"), Tally(), None, "now")["conditions"]
    ] == ["Ready"]


def test_webhook_configurations_per_engine() -> None:
    settings = WebhookSettings("pp")

    def shape(engine: str) -> list[list[tuple[str, str]]]:
        configs = build_configurations(settings, url_client_config("https://x", "ca"), engine)
        return [[(w["name"], w["failurePolicy"]) for w in c["webhooks"]] for c in configs]

    assert shape("webhook") == [
        [("pods.mutate.productionpolicy.dev", "Ignore")],
        [
            ("pods.validate.productionpolicy.dev", "Fail"),
            ("workloads.validate.productionpolicy.dev", "Fail"),
            ("policies.validate.productionpolicy.dev", "Fail"),
        ],
    ]
    assert shape("both") == [
        [("pods.mutate.productionpolicy.dev", "Ignore")],
        [
            ("pods.validate.productionpolicy.dev", "Ignore"),  # the VAP enforces: our outage blocks nothing
            ("workloads.validate.productionpolicy.dev", "Ignore"),
            ("policies.validate.productionpolicy.dev", "Fail"),
        ],
    ]
    assert shape("apiserver") == [[], [("policies.validate.productionpolicy.dev", "Fail")]]


def test_a_rule_several_policies_give_is_compiled_once() -> None:
    rules = {"probes": {"readiness": {"required": True}}, "resources": {"max": {"memory": "8Gi"}}}
    teams = [policy(f"team-{n}", match={"namespaces": [n]}, **rules) for n in ("a", "b")]
    other = policy("team-c", match={"namespaces": ["c"]}, resources={"max": {"memory": "4Gi"}})
    enforce = _objects([*teams, other])[2]
    alone = json.dumps(_objects([teams[0], other])[2])
    text = json.dumps(enforce)
    for rule in ("exceeds max 8Gi", "exceeds max 4Gi", "no readinessProbe"):
        assert text.count(rule) == alone.count(rule) > 0
    variables = {v["name"]: v["expression"] for v in enforce["spec"]["variables"]}
    shared = [name for name in variables if name[0] == "c" and name[1:].isdigit()]
    assert len(shared) == 3  # readiness, the 8Gi request and the 8Gi limit; not team-c's 4Gi
    for name in shared:
        assert f"variables.{name}[j]" in variables["f0"] and f"variables.{name}[j]" in variables["f1"]
    assert "variables.c" not in variables["f2"]
