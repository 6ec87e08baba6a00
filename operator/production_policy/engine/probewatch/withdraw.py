"""The safety valve, ``probes.<kind>.onInjectedFailure: Withdraw``: which failing defaults to withdraw,
which withdrawals to lift, and which workloads to roll once.

A withdrawal (an :class:`Exemption`) is recorded only in the status of the policy whose default
it is (``status.withdrawnProbes``), where only the controller writes; the mutating side reads it
there (:attr:`CompiledPolicy.withdrawn <production_policy.engine.compiled.CompiledPolicy.withdrawn>`).
A failing injected liveness or startup probe (:class:`~.detect.Failure`) is withdrawn from that
container of that workload when the policy giving it says ``Withdraw``, unless:

- a matching policy *requires* the probe: a withdrawal must never make the workload one the
  validating side refuses, so the failure stays reported, with why (:attr:`Decision.held`);
- the audit does not know the workload's template (a Job made by a CronJob has none of its
  own), so which policies require the probe cannot be told;
- the policy's list is full (:data:`MAX_STATUS_WITHDRAWN_PROBES`).

A withdrawal holds while the policy still says ``Withdraw`` for that probe, its default keeps the
digest recorded, it still gives this workload that default, no matching policy requires the
probe, the container has no such probe of its own and the workload exists; otherwise it is
lifted (:attr:`Decision.lifted`), with the reason. A workload gets one roll, when a withdrawal
of it is first recorded (:attr:`Decision.roll`), so its new pods run without the probe.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from production_policy.api import MAX_STATUS_WITHDRAWN_PROBES, StatusWithdrawnProbe, WorkloadIdentity
from production_policy.engine import kinds
from production_policy.engine.audit.events import NOTE_MAX_BYTES, bounded_bytes
from production_policy.engine.audit.subjects import WorkloadRef
from production_policy.engine.compiled import (
    WITHDRAWABLE,
    CompiledPolicy,
    ProbeKind,
    default_digest,
    probe_field,
)
from production_policy.engine.matching import matching_policies
from production_policy.engine.merge import merge_defaults
from production_policy.engine.names import WITHDRAWN_ANNOTATION
from production_policy.engine.pods import PodView, container_slots
from production_policy.engine.probewatch.book import describe_probe, status_message
from production_policy.engine.probewatch.detect import Failure, FailureKey

PROBE_WITHDRAWN = "InjectedProbeWithdrawn"
"""Reason of the Event on the workload and on the policy when a failing default is withdrawn."""
PROBE_RESTORED = "InjectedProbeRestored"
"""Reason of the Event on the workload and on the policy when a withdrawal is lifted."""


@dataclass(frozen=True)
class Exemption:
    """A policy's default probe withdrawn from one container of one workload."""

    policy: str
    workload: WorkloadRef
    container: str
    probe: ProbeKind
    default_digest: str
    """Of the policy's default when it was withdrawn (:func:`default_digest`)."""
    since: str
    """RFC 3339."""
    last_failure: str
    """The failure that made it: the injected probe, what the kubelet did, its last message."""

    @property
    def key(self) -> FailureKey:
        return (self.workload, self.container, self.probe)

    def status_entry(self) -> StatusWithdrawnProbe:
        """The entry of the policy's ``status.withdrawnProbes``."""
        ref = self.workload
        return StatusWithdrawnProbe(
            workload=WorkloadIdentity(kind=ref.kind, namespace=ref.namespace, name=ref.name),
            container=self.container,
            probe=self.probe,
            default_digest=self.default_digest,
            since=self.since,
            last_failure=self.last_failure,
        )


@dataclass(frozen=True)
class Lifted:
    """A withdrawal that no longer holds, and why."""

    exemption: Exemption
    reason: str


@dataclass(frozen=True)
class Decision:
    """What to do about one workload's withdrawals."""

    new: tuple[Exemption, ...] = ()
    """To record now (one Event each)."""
    lifted: tuple[Lifted, ...] = ()
    """To remove (one Event each)."""
    held: Mapping[FailureKey, str] = field(default_factory=dict)
    """Failures whose policy says Withdraw but which are not withdrawn: why."""
    roll: bool = False
    """Roll the workload once it is recorded: a withdrawal of it is new, and its kind can be rolled."""


def recorded(policy: CompiledPolicy) -> tuple[Exemption, ...]:
    """The withdrawals the policy's stored status lists (valid or not: :func:`decide` judges them)."""
    status = policy.policy.status
    return tuple(
        Exemption(
            policy.name,
            WorkloadRef(entry.workload.namespace, entry.workload.kind, entry.workload.name),
            entry.container,
            entry.probe,
            entry.default_digest,
            entry.since,
            entry.last_failure,
        )
        for entry in (status.withdrawn_probes or () if status is not None else ())
    )


def decide(
    ref: WorkloadRef,
    failures: Iterable[Failure],
    current: Iterable[Exemption],
    policies: Sequence[CompiledPolicy],
    template: PodView | None,
    gone: bool,
    namespace_labels: Mapping[str, str],
    listed: Mapping[str, int],
    now: str,
) -> Decision:
    """The withdrawals of ``ref`` to record and to lift, given its failures now, its ``current``
    withdrawals, the ``policies``, its pod ``template`` as the audit keeps it (None: not known),
    whether it is ``gone`` (the audit knew it and no longer does), and how many withdrawals each
    policy's status already lists (``listed``); ``now`` (RFC 3339) dates the new ones."""
    by_name = {policy.name: policy for policy in policies}
    matched = (
        matching_policies(policies, ref.namespace, namespace_labels, template.labels, template.kinds)
        if template is not None
        else []
    )
    lifted: list[Lifted] = []
    kept: dict[FailureKey, Exemption] = {}
    for exemption in current:
        reason = _lift_reason(exemption, by_name, template, matched, gone)
        if reason is None:
            kept[exemption.key] = exemption
        else:
            lifted.append(Lifted(exemption, reason))
    new: list[Exemption] = []
    held: dict[FailureKey, str] = {}
    room = dict(listed)
    for failure in failures:
        policy = by_name.get(failure.policy) if failure.policy is not None else None
        if (
            policy is None
            or failure.probe not in WITHDRAWABLE
            or getattr(policy.policy.spec.probes, failure.probe).on_injected_failure != "Withdraw"
            or failure.key in kept
        ):
            continue
        why = _why_not(failure, policy, template, matched, room.get(policy.name, 0))
        if why is not None:
            held[failure.key] = why
            continue
        exemption = Exemption(
            policy.name,
            ref,
            failure.container,
            failure.probe,
            default_digest(policy.default_probes[failure.probe]),
            now,
            status_message(failure),
        )
        new.append(exemption)
        kept[exemption.key] = exemption
        room[policy.name] = room.get(policy.name, 0) + 1
    rollable = ref.kind in {kind.kind for kind in kinds.ROLLABLE}
    return Decision(tuple(new), tuple(lifted), held, bool(new) and rollable)


def _requiring(matched: Sequence[CompiledPolicy], kind: ProbeKind) -> list[str]:
    return [policy.name for policy in matched if any(k == kind for k, _ in policy.rules.required_probes)]


def _why_not(
    failure: Failure,
    policy: CompiledPolicy,
    template: PodView | None,
    matched: Sequence[CompiledPolicy],
    listed: int,
) -> str | None:
    write = f'write a {probe_field(failure.probe)} for container "{failure.container}"'
    if template is None:
        return f"not withdrawn: the {failure.workload.kind}'s own pod template is not known: {write}"
    requiring = _requiring(matched, failure.probe)
    if requiring:
        names = ", ".join(requiring)
        return f"not withdrawn: policy {names} requires {failure.probe}: {write}"
    if listed >= MAX_STATUS_WITHDRAWN_PROBES:
        return f"not withdrawn: policy {policy.name} lists {MAX_STATUS_WITHDRAWN_PROBES} withdrawals already"
    return None


def _lift_reason(
    exemption: Exemption,
    policies: Mapping[str, CompiledPolicy],
    template: PodView | None,
    matched: Sequence[CompiledPolicy],
    gone: bool,
) -> str | None:
    policy = policies.get(exemption.policy)
    kind = exemption.probe
    if policy is None:
        return f"policy {exemption.policy} is gone"
    if getattr(policy.policy.spec.probes, kind).on_injected_failure != "Withdraw":
        return f"policy {policy.name} no longer says probes.{kind}.onInjectedFailure: Withdraw"
    default = policy.default_probes.get(kind)
    if default is None:
        return f"policy {policy.name} no longer has a {kind} default"
    if default_digest(default) != exemption.default_digest:
        return f"policy {policy.name} changed its {kind} default (now {describe_probe(default)})"
    if gone:
        return "the workload is gone"
    if template is None:
        return None  # not known (yet): nothing more can be told
    requiring = _requiring(matched, kind)
    if requiring:
        return f"policy {', '.join(requiring)} requires {kind}"
    slots = container_slots(template.spec)
    container = next((slot.container for slot in slots if slot.name == exemption.container), None)
    if container is None:
        return f'the workload has no container "{exemption.container}" any more'
    # A bare Pod is its own template: the probe injected into it before the withdrawal is not the user's.
    if (
        container.get(probe_field(kind)) is not None
        and f"{exemption.container}:{kind}" not in template.injected
    ):
        return f'container "{exemption.container}" now has a {probe_field(kind)} of its own'
    giver = merge_defaults(matched).probes.get(kind) if matched else None
    if giver is None or giver.policy != policy.name:
        return f"policy {policy.name} no longer gives this workload its {kind} default"
    return None


def withdrawn_note(exemption: Exemption, rolled: bool) -> str:
    """The note of the ``InjectedProbeWithdrawn`` Event (on the workload and on the policy)."""
    ref = exemption.workload
    then = (
        f"{ref.kind} {ref.name} is rolled once so that its pods run without it"
        if rolled
        else "pods created from now on go without it"
    )
    return bounded_bytes(
        f'{ref.describe()}, container "{exemption.container}": the {exemption.probe} default of policy '
        f"{exemption.policy} is withdrawn (probes.{exemption.probe}.onInjectedFailure: Withdraw); {then}. "
        f"It failed: {exemption.last_failure}. To restore it: write a {probe_field(exemption.probe)}, "
        f"or change the policy's default (a tcpSocket on port auto; a startupProbe for a slow starter).",
        NOTE_MAX_BYTES,
    )


def restored_note(lifted: Lifted) -> str:
    """The note of the ``InjectedProbeRestored`` Event (on the workload and on the policy)."""
    exemption = lifted.exemption
    return bounded_bytes(
        f'{exemption.workload.describe()}, container "{exemption.container}": the withdrawal of the '
        f"{exemption.probe} default of policy {exemption.policy} is lifted: {lifted.reason}. Pods created "
        f"from now on get the policy's defaults again.",
        NOTE_MAX_BYTES,
    )


def roll_patch(exemptions: Iterable[Exemption]) -> dict[str, Any]:
    """The merge patch that rolls a workload for its withdrawals: the pod template's
    ``productionpolicy.dev/withdrawn`` annotation lists them ("app:liveness"). The same withdrawals
    give the same patch, so writing it again rolls nothing."""
    entries = sorted({f"{e.container}:{e.probe}" for e in exemptions})
    return {"spec": {"template": {"metadata": {"annotations": {WITHDRAWN_ANNOTATION: ",".join(entries)}}}}}
