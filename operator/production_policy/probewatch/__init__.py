"""The probe watch: what the injected probes do to the workloads they went into.

The imperative shell around :mod:`production_policy.engine.probewatch`: pods (from the audit's
handler of pods) and the kubelet's ``Unhealthy``/``Killing`` Events (:mod:`.kubelet`) in; Events
on the workload and the policy, and the failing workloads in the policy's status (through the
audit), out. ``register_probewatch`` adds it to a kopf registry (``controller`` and ``run --dev``).
"""

from production_policy.probewatch.watcher import ProbeWatcher
from production_policy.probewatch.wiring import register_probewatch

__all__ = ["ProbeWatcher", "register_probewatch"]
