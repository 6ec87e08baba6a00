"""The safety valve ``onInjectedFailure: Withdraw``: the API, what is withdrawn, lifted and rolled,
and the mutating side leaving a withdrawn default out."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from production_policy.api import PolicyError, parse_policy
from production_policy.engine import compile_policy, plan_mutation
from production_policy.engine.apiserver import InstallSettings, compile_policies
from production_policy.engine.audit import WorkloadRef
from production_policy.engine.audit.book import Tally
from production_policy.engine.audit.status import PolicyFacts, desired_status
from production_policy.engine.compiled import CompiledPolicy, default_digest
from production_policy.engine.names import INJECTED_ANNOTATION, WITHDRAWN_ANNOTATION
from production_policy.engine.pods import PodView, pod_from_template
from production_policy.engine.probewatch import (
    Exemption,
    Failure,
    ProbeTally,
    decide,
    recorded,
    restored_note,
    roll_patch,
    withdrawn_note,
)
from production_policy.engine.probewatch.withdraw import Lifted
from tests.support.engine import TCP_AUTO, policy, policy_dict

WEB = WorkloadRef("shop", "Deployment", "web")
HEALTHZ_AUTO = {"httpGet": {"path": "/healthz", "port": "auto"}}
NOW = "2027-01-15T08:00:00Z"


def withdrawing(
    name: str = "baseline", default: dict[str, Any] | None = None, **extra: Any
) -> CompiledPolicy:
    probes: dict[str, Any] = {
        "liveness": {"default": default or HEALTHZ_AUTO, "onInjectedFailure": "Withdraw"},
        "readiness": {"default": TCP_AUTO},
    }
    return policy(name, match={"namespaces": ["shop"]}, probes=probes, **extra)


def requiring(name: str = "strict", kind: str = "liveness") -> CompiledPolicy:
    return policy(
        name, match={"namespaces": ["shop"]}, enforcement="Audit", probes={kind: {"required": True}}
    )


def with_status(compiled: CompiledPolicy, exemptions: list[Exemption]) -> CompiledPolicy:
    """The policy as the view holds it once the controller wrote these withdrawals to its status."""
    body = policy_dict(compiled.name, **compiled.policy.spec.model_dump(by_alias=True, exclude_none=True))
    body["status"] = {"withdrawnProbes": [e.status_entry().model_dump(by_alias=True) for e in exemptions]}
    return compile_policy(parse_policy(body))


def template(**container_fields: Any) -> PodView:
    container = {"name": "app", "image": "example/app:1", "ports": [{"containerPort": 8080}]}
    container.update(container_fields)
    view = pod_from_template(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [container]}}
            },
        }
    )
    assert view is not None
    return view


def failing(probe: str = "liveness", policy_name: str | None = "baseline", ref: WorkloadRef = WEB) -> Failure:
    return Failure(
        ref,
        "app",
        probe,  # type: ignore[arg-type]
        {"httpGet": {"path": "/healthz", "port": 8080}},
        "restarted 3 times within 10m",
        "Liveness probe failed: HTTP probe failed with statuscode: 404",
        policy_name,
    )


def exemption_of(compiled: CompiledPolicy, ref: WorkloadRef = WEB) -> Exemption:
    return Exemption(
        compiled.name, ref, "app", "liveness", default_digest(compiled.default_probes["liveness"]), NOW, "404"
    )


def decided(
    policies: list[CompiledPolicy],
    failures: tuple[Failure, ...] = (),
    current: tuple[Exemption, ...] = (),
    view: PodView | None = None,
    gone: bool = False,
    ref: WorkloadRef = WEB,
) -> Any:
    return decide(ref, failures, current, policies, view or template(), gone, {}, {}, NOW)


# The API.


def test_withdraw_is_refused_on_readiness_naming_the_field() -> None:
    body = policy_dict(probes={"readiness": {"default": TCP_AUTO, "onInjectedFailure": "Withdraw"}})
    with pytest.raises(PolicyError) as refused:
        parse_policy(body)
    assert refused.value.problems == [
        "spec.probes.readiness.onInjectedFailure: cannot be Withdraw: a readiness probe is never withdrawn "
        "(an unready pod is not restarted, and it keeps rollouts safe)"
    ]


def test_onInjectedFailure_is_report_by_default_and_withdraw_is_taken_for_liveness_and_startup() -> None:
    assert policy(
        probes={"liveness": {"default": TCP_AUTO}}
    ).policy.spec.probes.liveness.on_injected_failure == ("Report")
    spec = policy(probes={k: {"onInjectedFailure": "Withdraw"} for k in ("liveness", "startup")}).policy.spec
    assert (spec.probes.liveness.on_injected_failure, spec.probes.startup.on_injected_failure) == (
        "Withdraw",
        "Withdraw",
    )
    with pytest.raises(PolicyError, match=r"spec\.probes\.liveness\.onInjectedFailure"):
        parse_policy(policy_dict(probes={"liveness": {"onInjectedFailure": "Remove"}}))


# What the mutating side reads of the status.


def test_a_recorded_withdrawal_holds_only_while_the_spec_says_withdraw_with_the_same_default() -> None:
    base = withdrawing()
    exemption = exemption_of(base)
    assert with_status(base, [exemption]).withdrawn == {("shop", "Deployment", "web", "app", "liveness")}
    assert with_status(withdrawing(default=TCP_AUTO), [exemption]).withdrawn == frozenset()
    reporting = policy(
        "baseline", match={"namespaces": ["shop"]}, probes={"liveness": {"default": HEALTHZ_AUTO}}
    )
    assert with_status(reporting, [exemption]).withdrawn == frozenset()
    assert recorded(with_status(base, [exemption])) == (exemption,)


def a_deployment_pod(deployment: str = "web", **container_fields: Any) -> dict[str, Any]:
    container = {
        "name": "app",
        "image": "example/app:1",
        "ports": [{"containerPort": 8080}],
        **container_fields,
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "namespace": "shop",
            "generateName": f"{deployment}-5d8f7c-",
            "labels": {"app": deployment, "pod-template-hash": "5d8f7c"},
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": f"{deployment}-5d8f7c",
                    "controller": True,
                }
            ],
        },
        "spec": {"containers": [container]},
    }


def test_the_webhook_leaves_a_withdrawn_default_out_of_that_workloads_pods_only() -> None:
    policies = [with_status(withdrawing(), [exemption_of(withdrawing())])]
    plan = plan_mutation(a_deployment_pod("web"), "shop", {}, policies)
    assert plan.injected == ["app:readiness"]
    assert plan_mutation(a_deployment_pod("api"), "shop", {}, policies).injected == [
        "app:readiness",
        "app:liveness",
    ]


def test_the_webhook_injects_a_withdrawn_default_again_as_soon_as_a_policy_requires_it() -> None:
    policies = [with_status(withdrawing(), [exemption_of(withdrawing())]), requiring()]
    assert plan_mutation(a_deployment_pod("web"), "shop", {}, policies).injected == [
        "app:readiness",
        "app:liveness",
    ]


def test_a_withdrawal_by_one_policy_does_not_withdraw_another_policys_default() -> None:
    # "first" outranks "baseline" and now gives the liveness default: baseline's withdrawal is not its.
    first = policy(
        "first", match={"namespaces": ["shop"]}, priority=10, probes={"liveness": {"default": TCP_AUTO}}
    )
    policies = [with_status(withdrawing(), [exemption_of(withdrawing())]), first]
    assert "app:liveness" in plan_mutation(a_deployment_pod("web"), "shop", {}, policies).injected


# Deciding.


def test_a_failing_default_under_withdraw_is_withdrawn_and_the_deployment_rolled_once() -> None:
    decision = decided([withdrawing()], (failing(),))
    (new,) = decision.new
    assert (new.policy, new.workload, new.container, new.probe) == ("baseline", WEB, "app", "liveness")
    assert new.default_digest == default_digest(withdrawing().default_probes["liveness"])
    assert "statuscode: 404" in new.last_failure and new.since == NOW
    assert decision.roll and not decision.lifted and not decision.held
    # Decided again with the withdrawal recorded: nothing new, so no second roll.
    again = decided([withdrawing()], (failing(),), decision.new)
    assert again.new == () and not again.roll and again.lifted == ()


def test_report_withdraws_nothing_and_readiness_is_never_withdrawn() -> None:
    reporting = policy(
        "baseline", match={"namespaces": ["shop"]}, probes={"liveness": {"default": HEALTHZ_AUTO}}
    )
    assert decided([reporting], (failing(),)).new == ()
    assert decided([withdrawing()], (failing("readiness"),)).new == ()
    assert decided([withdrawing()], (failing(policy_name=None),)).new == ()


def test_a_required_probe_is_never_withdrawn_and_the_failure_says_why() -> None:
    decision = decided([withdrawing(), requiring()], (failing(),))
    assert decision.new == () and not decision.roll
    why = 'not withdrawn: policy strict requires liveness: write a livenessProbe for container "app"'
    assert decision.held == {failing().key: why}


def test_without_the_workloads_template_nothing_is_withdrawn() -> None:
    job = WorkloadRef("shop", "Job", "nightly-28000000")
    decision = decide(job, (failing(ref=job),), (), [withdrawing()], None, False, {}, {}, NOW)
    assert decision.new == ()
    assert "pod template is not known" in decision.held[failing(ref=job).key]


def test_a_full_list_holds_the_withdrawal() -> None:
    decision = decide(WEB, (failing(),), (), [withdrawing()], template(), False, {}, {"baseline": 50}, NOW)
    assert decision.new == () and "lists 50 withdrawals already" in decision.held[failing().key]


def test_a_bare_pod_is_exempted_but_not_rolled() -> None:
    pod = WorkloadRef("shop", "Pod", "one-off")
    view = pod_from_template(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "one-off", "namespace": "shop"},
            "spec": {"containers": [{"name": "app", "ports": [{"containerPort": 8080}]}]},
        }
    )
    decision = decide(pod, (failing(ref=pod),), (), [withdrawing()], view, False, {}, {}, NOW)
    assert len(decision.new) == 1 and not decision.roll


@pytest.mark.parametrize(
    ("policies", "view", "gone", "reason"),
    [
        ([withdrawing(default=TCP_AUTO)], None, False, "policy baseline changed its liveness default (now "),
        (
            [
                policy(
                    "baseline", match={"namespaces": ["shop"]}, probes={"liveness": {"default": HEALTHZ_AUTO}}
                )
            ],
            None,
            False,
            "policy baseline no longer says probes.liveness.onInjectedFailure: Withdraw",
        ),
        ([withdrawing(), requiring()], None, False, "policy strict requires liveness"),
        (
            [withdrawing()],
            template(livenessProbe={"tcpSocket": {"port": 8080}}),
            False,
            'container "app" now has a livenessProbe of its own',
        ),
        ([withdrawing()], None, True, "the workload is gone"),
        ([], None, False, "policy baseline is gone"),
    ],
)
def test_a_withdrawal_is_lifted_when_it_no_longer_holds(
    policies: list[CompiledPolicy], view: PodView | None, gone: bool, reason: str
) -> None:
    exemption = exemption_of(withdrawing())
    decision = decided(policies, (), (exemption,), view, gone)
    (lifted,) = decision.lifted
    assert lifted.exemption == exemption and lifted.reason.startswith(reason)
    assert reason.rstrip(" (now") in restored_note(lifted)


def test_a_withdrawal_that_holds_is_kept_quietly() -> None:
    decision = decided([withdrawing()], (), (exemption_of(withdrawing()),))
    assert decision == type(decision)()


# What is written and said.


def test_the_roll_patch_names_the_withdrawals_and_is_the_same_for_the_same_ones() -> None:
    exemption = exemption_of(withdrawing())
    patch = roll_patch([exemption])
    assert patch == {
        "spec": {"template": {"metadata": {"annotations": {WITHDRAWN_ANNOTATION: "app:liveness"}}}}
    }
    assert roll_patch([exemption, dataclasses.replace(exemption, since="later")]) == patch


def test_the_status_lists_the_withdrawals_and_the_notes_say_what_happened() -> None:
    exemption = exemption_of(withdrawing())
    status = desired_status(
        PolicyFacts("baseline", 1, "Audit"), Tally(), None, NOW, ProbeTally(withdrawn=(exemption,))
    )
    assert status["withdrawnProbes"] == [
        {
            "workload": {"kind": "Deployment", "namespace": "shop", "name": "web"},
            "container": "app",
            "probe": "liveness",
            "defaultDigest": exemption.default_digest,
            "since": NOW,
            "lastFailure": "404",
        }
    ]
    assert "withdrawnProbes" not in desired_status(
        PolicyFacts("baseline", 1, "Audit"), Tally(), None, NOW, ProbeTally()
    )
    note = withdrawn_note(exemption, rolled=True)
    assert "is withdrawn" in note and "rolled once" in note and "write a livenessProbe" in note
    assert "Pods created from now on" in restored_note(Lifted(exemption, "policy baseline is gone"))


def test_the_compiled_map_carries_the_withdrawals_and_is_unchanged_without_them() -> None:
    settings = InstallSettings("pp")
    plain = compile_policies([withdrawing()], settings).objects[0]
    exempted = compile_policies(
        [with_status(withdrawing(), [exemption_of(withdrawing())])], settings
    ).objects[0]
    assert "workload" not in {v["name"] for v in plain["spec"]["variables"]}
    variables = {v["name"]: v["expression"] for v in exempted["spec"]["variables"]}
    assert '"shop/Deployment/web/app"' in variables["containers_probes"]
    assert "variables.workload" in variables["containers_probes"]
    unexempted = {v["name"]: v["expression"] for v in plain["spec"]["variables"]}
    assert set(variables) - set(unexempted) == {"workload"}


def test_a_bare_pods_own_injected_probe_does_not_lift_its_withdrawal() -> None:
    pod = WorkloadRef("shop", "Pod", "one-off")
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "one-off",
            "namespace": "shop",
            "annotations": {INJECTED_ANNOTATION: "app:liveness"},
        },
        "spec": {
            "containers": [{"name": "app", "ports": [{"containerPort": 8080}], "livenessProbe": HEALTHZ_AUTO}]
        },
    }
    view = pod_from_template(body)
    exemption = exemption_of(withdrawing(), pod)
    assert decide(pod, (), (exemption,), [withdrawing()], view, False, {}, {}, NOW).lifted == ()
    del body["metadata"]["annotations"]  # the user's own probe
    (lifted,) = decide(
        pod, (), (exemption,), [withdrawing()], pod_from_template(body), False, {}, {}, NOW
    ).lifted
    assert "of its own" in lifted.reason
