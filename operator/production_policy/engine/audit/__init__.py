"""Policy status and the audit of existing workloads, decided purely: no I/O, no clients, no clocks.

- :mod:`.subjects` says which objects are audited workloads and reduces each to what is judged.
- :mod:`.judge` judges one workload against every policy, as admission would (after defaults).
- :mod:`.book` keeps the judgements and each policy's tally: counts and the top violations.
- :mod:`.status` computes a policy's status, whether it needs writing, and its Ready Events.
- :mod:`.batching` holds the pending work (statuses to write, workloads to judge again), so bursts coalesce.
- :mod:`.events` decides the ``DefaultsInjected`` Events on workloads.
"""

from production_policy.engine.audit.batching import MAX_DELAY_SECONDS, QUIET_SECONDS, PendingWork, Rejudge
from production_policy.engine.audit.book import ComplianceBook, Listed, Tally
from production_policy.engine.audit.events import (
    DEFAULTS_INJECTED,
    injected_note,
    injected_to_report,
    template_changed,
)
from production_policy.engine.audit.judge import (
    Finding,
    Judgement,
    affected_namespaces,
    judge,
)
from production_policy.engine.audit.status import (
    ACTIVE,
    BECAME_INVALID,
    BECAME_READY,
    INVALID,
    READY,
    PolicyEvent,
    PolicyFacts,
    compiled_event,
    desired_status,
    ready_condition,
    ready_event,
    status_patch,
)
from production_policy.engine.audit.subjects import (
    API_VERSIONS,
    AUDITED_KINDS,
    Subject,
    WorkloadRef,
    audit_subject,
    controlled,
    workload_ref,
)
from production_policy.engine.mutation import needed_defaults

__all__ = [
    "ACTIVE",
    "API_VERSIONS",
    "AUDITED_KINDS",
    "BECAME_INVALID",
    "BECAME_READY",
    "DEFAULTS_INJECTED",
    "INVALID",
    "MAX_DELAY_SECONDS",
    "QUIET_SECONDS",
    "READY",
    "ComplianceBook",
    "Finding",
    "Judgement",
    "Listed",
    "PendingWork",
    "PolicyEvent",
    "PolicyFacts",
    "Rejudge",
    "Subject",
    "Tally",
    "WorkloadRef",
    "affected_namespaces",
    "audit_subject",
    "compiled_event",
    "controlled",
    "desired_status",
    "injected_note",
    "injected_to_report",
    "judge",
    "needed_defaults",
    "ready_condition",
    "ready_event",
    "status_patch",
    "template_changed",
    "workload_ref",
]
