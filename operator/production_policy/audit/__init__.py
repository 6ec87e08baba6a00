"""Policy status and the audit of existing workloads.

The imperative shell around :mod:`production_policy.engine.audit`: kopf watches of the workloads
in, batched status patches and Events out. ``register_audit`` adds it to any kopf registry (the
processes in :mod:`production_policy.processes`: ``controller`` and ``run --dev``).
"""

from production_policy.audit.auditor import Auditor
from production_policy.audit.wiring import register_audit

__all__ = ["Auditor", "register_audit"]
