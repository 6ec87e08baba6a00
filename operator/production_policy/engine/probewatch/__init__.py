"""The probe watch: whether the probes the webhook injected are failing the workloads they went into.

No admission tool watches what its own mutations do; this does, decided purely (no I/O, no
clock: times come in as arguments):

- :mod:`.facts` reduces a pod (only if the webhook injected a probe into it) and a kubelet
  ``Unhealthy``/``Killing`` Event to what the decision reads, and finds a pod's workload.
- :mod:`.detect` keeps them (:class:`ProbeWatch`) and decides, per workload, which injected
  probes fail it (:class:`Failure`), under :class:`Thresholds`.
- :mod:`.book` keeps the failures reported (:class:`FailureBook`), says which are new and which
  cleared, tallies them per policy, and words the Events and the status entries.
- :mod:`.withdraw` decides, under ``onInjectedFailure: Withdraw``, which failing defaults to
  withdraw from a workload, which withdrawals to lift, and which workloads to roll once.
"""

from production_policy.engine.probewatch.book import (
    PROBE_FAILING,
    PROBE_RECOVERED,
    Changes,
    FailureBook,
    ProbeTally,
    describe_probe,
    failing_note,
    recovered_note,
    remedy,
    status_message,
)
from production_policy.engine.probewatch.detect import Failure, FailureKey, ProbeWatch, Thresholds, span
from production_policy.engine.probewatch.facts import (
    KILLING,
    KUBELET_REASONS,
    UNHEALTHY,
    ContainerFacts,
    KubeletReport,
    PodFacts,
    injected_probes,
    kubelet_report,
    pod_facts,
    workload_of,
)
from production_policy.engine.probewatch.withdraw import (
    PROBE_RESTORED,
    PROBE_WITHDRAWN,
    Decision,
    Exemption,
    Lifted,
    decide,
    recorded,
    restored_note,
    roll_patch,
    withdrawn_note,
)

__all__ = [
    "KILLING",
    "KUBELET_REASONS",
    "PROBE_FAILING",
    "PROBE_RECOVERED",
    "PROBE_RESTORED",
    "PROBE_WITHDRAWN",
    "UNHEALTHY",
    "Changes",
    "ContainerFacts",
    "Decision",
    "Exemption",
    "Failure",
    "FailureBook",
    "FailureKey",
    "KubeletReport",
    "Lifted",
    "PodFacts",
    "ProbeTally",
    "ProbeWatch",
    "Thresholds",
    "decide",
    "describe_probe",
    "failing_note",
    "injected_probes",
    "kubelet_report",
    "pod_facts",
    "recorded",
    "recovered_note",
    "remedy",
    "restored_note",
    "roll_patch",
    "span",
    "status_message",
    "withdrawn_note",
    "workload_of",
]
