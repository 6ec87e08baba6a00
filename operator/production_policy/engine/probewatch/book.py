"""The failing injected probes of every workload, what changed, and what the Events and status say.

:class:`FailureBook` keeps the last decision for each workload (:meth:`ProbeWatch.failures
<production_policy.engine.probewatch.detect.ProbeWatch.failures>`), says which failures are new
and which cleared (each gets one Event: a failure is reported once, not at every pod update), and
tallies per policy the failing workloads its status lists.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from production_policy.api import (
    MAX_STATUS_PROBE_FAILURES,
    MAX_STATUS_WITHDRAWN_PROBES,
    StatusProbeFailure,
    StatusWithdrawnProbe,
)
from production_policy.api.status import MESSAGE_MAX
from production_policy.engine.audit.events import NOTE_MAX_BYTES, bounded_bytes
from production_policy.engine.audit.judge import bounded
from production_policy.engine.audit.subjects import WorkloadRef
from production_policy.engine.compiled import probe_field
from production_policy.engine.probewatch.detect import Failure, FailureKey

if TYPE_CHECKING:  # withdraw reads this module's wording: importing it here would be a cycle
    from production_policy.engine.probewatch.withdraw import Exemption

PROBE_FAILING = "InjectedProbeFailing"
"""Reason of the Warning Event on the workload and on the policy when an injected probe fails it."""
PROBE_RECOVERED = "InjectedProbeRecovered"
"""Reason of the Event on the workload when it no longer shows the failure."""


@dataclass(frozen=True)
class Changes:
    """What one new decision about a workload changed."""

    new: tuple[Failure, ...] = ()
    """Failures not reported before: one Event each."""
    cleared: tuple[Failure, ...] = ()
    """Failures reported before that it no longer shows: one Event each."""
    policies: frozenset[str] = frozenset()
    """The policies whose status lists changed."""


@dataclass(frozen=True)
class ProbeTally:
    """What a policy's status says of the failing injected probes its defaults put in workloads."""

    failing_workloads: int = 0
    top: tuple[Failure, ...] = ()
    withdrawn: tuple[Exemption, ...] | None = None
    """Its defaults withdrawn from workloads (None: it is not the probe watch's to say)."""

    def status_entries(self) -> list[StatusProbeFailure]:
        """The status's ``probeFailures``: the first :data:`MAX_STATUS_PROBE_FAILURES` of ``top``."""
        return [
            StatusProbeFailure(
                namespace=failure.workload.namespace,
                kind=failure.workload.kind,
                name=failure.workload.name,
                container=failure.container,
                probe=failure.probe,
                message=status_message(failure),
            )
            for failure in self.top[:MAX_STATUS_PROBE_FAILURES]
        ]

    def withdrawn_entries(self) -> list[StatusWithdrawnProbe]:
        """The status's ``withdrawnProbes``: by workload, container and probe, at most
        :data:`MAX_STATUS_WITHDRAWN_PROBES`."""
        ordered = sorted(self.withdrawn or (), key=lambda e: (e.workload, e.container, e.probe))
        return [exemption.status_entry() for exemption in ordered[:MAX_STATUS_WITHDRAWN_PROBES]]


class FailureBook:
    """The current failures of every workload that has any."""

    def __init__(self) -> None:
        self._by_workload: dict[WorkloadRef, tuple[Failure, ...]] = {}
        self._by_policy: dict[str, dict[FailureKey, Failure]] = {}

    def __len__(self) -> int:
        return len(self._by_workload)

    def failing(self) -> list[WorkloadRef]:
        """The workloads with at least one failure."""
        return list(self._by_workload)

    def of(self, ref: WorkloadRef) -> tuple[Failure, ...]:
        """The workload's current failures."""
        return self._by_workload.get(ref, ())

    def record(self, ref: WorkloadRef, failures: tuple[Failure, ...]) -> Changes:
        """Keep ``ref``'s new failures (empty: it shows none) and say what that changed."""
        before = {failure.key: failure for failure in self._by_workload.get(ref, ())}
        after = {failure.key: failure for failure in failures}
        if failures:
            self._by_workload[ref] = failures
        else:
            self._by_workload.pop(ref, None)
        policies: set[str] = set()
        for key, failure in before.items():
            if failure.policy is not None and _listed(after.get(key)) != _listed(failure):
                policies.add(failure.policy)
                entries = self._by_policy.get(failure.policy, {})
                entries.pop(key, None)
                if not entries:
                    self._by_policy.pop(failure.policy, None)
        for key, failure in after.items():
            if failure.policy is not None and _listed(before.get(key)) != _listed(failure):
                policies.add(failure.policy)
                self._by_policy.setdefault(failure.policy, {})[key] = failure
        return Changes(
            tuple(failure for key, failure in after.items() if key not in before),
            tuple(failure for key, failure in before.items() if key not in after),
            frozenset(policies),
        )

    def tally(self, policy: str, limit: int) -> ProbeTally:
        """The policy's failing workloads: how many, and the first ``limit`` failures by namespace,
        kind, name, container and probe (the same list for the same failures, whenever recorded)."""
        entries = self._by_policy.get(policy, {})
        top = sorted(entries.values(), key=lambda f: (f.workload, f.container, f.probe))[:limit]
        return ProbeTally(len({failure.workload for failure in entries.values()}), tuple(top))


def _listed(failure: Failure | None) -> tuple[str | None, str] | None:
    """What a policy's status shows of a failure: its policy and its message."""
    return None if failure is None else (failure.policy, status_message(failure))


def describe_probe(definition: Mapping[str, Any]) -> str:
    """A probe in one line: ``httpGet /healthz on port 8080, periodSeconds 10``."""
    if isinstance(http := definition.get("httpGet"), Mapping):
        handler = f"httpGet {http.get('path', '/')} on port {http.get('port')}"
    elif isinstance(tcp := definition.get("tcpSocket"), Mapping):
        handler = f"tcpSocket on port {tcp.get('port')}"
    elif isinstance(grpc := definition.get("grpc"), Mapping):
        handler = f"grpc on port {grpc.get('port')}"
    else:
        handler = json.dumps(dict(definition), sort_keys=True)
    timing = [f"{key} {value}" for key, value in definition.items() if key.endswith(("Seconds", "Threshold"))]
    return ", ".join([handler, *timing])


def remedy(failure: Failure) -> str:
    """What to do about a failure: write the probe, or change (or withdraw) the policy's default."""
    field = probe_field(failure.probe)
    fix = f'write a {field} for container "{failure.container}" in the pod template'
    if failure.policy is None:
        return f"{fix}."
    default = f"probes.{failure.probe}.default"
    if failure.probe == "readiness":
        return f"{fix}, or change {default} of policy {failure.policy} (a tcpSocket on port auto is safe)."
    if failure.held:  # its policy already says Withdraw, and another requires the probe
        return f"{fix}, or change {default} of policy {failure.policy} (a tcpSocket on port auto)."
    return (
        f"{fix}, or change {default} of policy {failure.policy} (a tcpSocket on port auto; a startupProbe"
        f" for a slow starter), or set probes.{failure.probe}.onInjectedFailure: Withdraw."
    )


def status_message(failure: Failure) -> str:
    """The failure as the policy's status lists it: probe, symptom, the kubelet's word."""
    held = f" ({failure.held})" if failure.held else ""
    return bounded(
        f"injected {failure.probe} probe ({describe_probe(failure.definition)}) {failure.symptom}: "
        f"{failure.kubelet_message}{held}",
        MESSAGE_MAX,
    )


def failing_note(failure: Failure) -> str:
    """The note of the ``InjectedProbeFailing`` Event (on the workload and on the policy)."""
    pods = f" in {failure.pods} pods" if failure.pods > 1 else ""
    source = f" from policy {failure.policy}" if failure.policy is not None else ""
    text = (
        f'{failure.workload.describe()}, container "{failure.container}": the injected {failure.probe} probe'
        f"{source} ({describe_probe(failure.definition)}) {failure.symptom}{pods}. "
        f"Kubelet: {failure.kubelet_message}. "
        + (f"It is {failure.held}. " if failure.held else "")
        + f"To fix: {remedy(failure)}"
    )
    return bounded_bytes(text, NOTE_MAX_BYTES)


def recovered_note(failure: Failure) -> str:
    """The note of the ``InjectedProbeRecovered`` Event on the workload."""
    return bounded_bytes(
        f'Container "{failure.container}": the injected {failure.probe} probe no longer fails this '
        f"{failure.workload.kind}.",
        NOTE_MAX_BYTES,
    )
