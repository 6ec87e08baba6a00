"""Config-change rollouts: roll Deployments, StatefulSets and DaemonSets when the data they use changes.

The imperative shell around :mod:`production_policy.engine.rollout`: kopf watches (workloads) and our
own list-then-watch (ConfigMaps, Secrets) in,
patches and Events out. ``register_controller`` adds it to any kopf registry (the ``controller``
process, ``run --dev``); ``run_controller`` is the standalone process.
"""

from __future__ import annotations

from production_policy.rollout.handlers import register_controller
from production_policy.rollout.options import ControllerOptions
from production_policy.rollout.process import run_controller

__all__ = ["ControllerOptions", "register_controller", "run_controller"]
