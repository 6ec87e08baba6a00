"""Config-change rollouts: roll Deployments, StatefulSets and DaemonSets when the data they use changes.

The imperative shell around :mod:`production_policy.engine.rollout`: kopf watches (workloads) and our
own list-then-watch (ConfigMaps, Secrets) in,
patches and Events out. ``register_controller`` adds it to any kopf registry (the processes in
:mod:`production_policy.processes`: ``controller`` and ``run --dev``).
"""

from __future__ import annotations

from production_policy.rollout.wiring import register_controller

__all__ = ["register_controller"]
