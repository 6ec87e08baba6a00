"""Which workloads the controller manages, and with which settings when several policies match."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from production_policy.api import ProductionPolicy
from production_policy.engine.names import IGNORE, is_ignored


@dataclass(frozen=True)
class RolloutSettings:
    """The merged ``configRollout`` settings for one workload.

    ``max_concurrent`` maps each policy that enables rollouts for the workload to its cap: the cap
    is per policy (cluster-wide), so a rollout must fit under the cap of every one of them.
    """

    debounce_seconds: float
    min_interval_seconds: float
    max_rollouts_per_window: int
    window_seconds: float
    max_concurrent: Mapping[str, int]

    @property
    def policies(self) -> frozenset[str]:
        """Names of the policies that enable rollouts for the workload."""
        return frozenset(self.max_concurrent)


def merge_settings(policies: Iterable[ProductionPolicy]) -> RolloutSettings | None:
    """The strictest combination of the matching policies that enable config rollouts.

    None when none does. Longest debounce, interval and window, fewest rollouts per window, and
    every policy's own concurrency cap: the result does not depend on the order of ``policies``.
    """
    enabled = [p for p in policies if p.spec.config_rollout.enabled]
    if not enabled:
        return None
    rollouts = [p.spec.config_rollout for p in enabled]
    return RolloutSettings(
        debounce_seconds=max(r.debounce_seconds for r in rollouts),
        min_interval_seconds=max(r.min_interval_seconds for r in rollouts),
        max_rollouts_per_window=min(r.max_rollouts_per_window for r in rollouts),
        window_seconds=max(r.window_seconds for r in rollouts),
        max_concurrent={p.name: p.spec.config_rollout.max_concurrent for p in enabled},
    )


def namespace_ignored(namespace: str, labels: Mapping[str, str], ignored: Collection[str]) -> bool:
    """Ignored: listed in the install's options, or labelled ``productionpolicy.dev/ignore=true``
    (see :func:`production_policy.engine.names.is_ignored` for what counts as true)."""
    return namespace in ignored or is_ignored(labels.get(IGNORE))


def source_ignored(annotations: Mapping[str, str] | None) -> bool:
    """A ConfigMap/Secret annotated ``productionpolicy.dev/ignore: "true"`` never triggers a rollout."""
    return is_ignored((annotations or {}).get(IGNORE))
