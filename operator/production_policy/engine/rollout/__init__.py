"""Config-change rollouts, decided purely: no I/O, no clients, no clocks (``now`` is an argument).

- :mod:`.facts` reduces a workload body to :class:`WorkloadFacts`.
- :mod:`.baseline` tracks the referenced keys as keyed digests and compares with the stored baseline.
- :mod:`.settings` merges the ``configRollout`` settings of the matching policies.
- :mod:`.schedule` is the debounce / minimum interval / breaker / cap state machine.
- :mod:`.writes` builds the patches; :mod:`.decide` puts it all together for one workload.
- :mod:`.freshness` says when a new workload's first baseline waits for its sources read afresh,
  and which of two versions of a source is the newer.
- :mod:`.fleet` is the cluster-wide ledger: rollouts in flight under the caps, queue order, what
  is kept of each workload between looks.
"""

from production_policy.engine.rollout.baseline import (
    Baseline,
    Comparison,
    Missing,
    Observation,
    SourceChange,
    SourceData,
    SourceId,
    Tracked,
    compact,
    compare,
    config_digest,
    decode,
    encode,
    key_id,
    observe,
)
from production_policy.engine.rollout.decide import Decision, Write, decide, unmanaged_reason
from production_policy.engine.rollout.facts import (
    WORKLOAD_KINDS,
    WorkloadFacts,
    workload_facts,
)
from production_policy.engine.rollout.fleet import Fleet, Look
from production_policy.engine.rollout.freshness import (
    compare_versions,
    event_is_news,
    needs_fresh_sources,
    newer,
    read_is_news,
)
from production_policy.engine.rollout.schedule import (
    ROLLOUT_TIMEOUT_SECONDS,
    Action,
    InFlight,
    Report,
    Step,
    WorkloadState,
    adopt_running,
    has_capacity,
    still_running,
)
from production_policy.engine.rollout.settings import (
    RolloutSettings,
    merge_settings,
    namespace_ignored,
    source_ignored,
)

__all__ = [
    "ROLLOUT_TIMEOUT_SECONDS",
    "WORKLOAD_KINDS",
    "Action",
    "Baseline",
    "Comparison",
    "Decision",
    "Fleet",
    "InFlight",
    "Look",
    "Missing",
    "Observation",
    "Report",
    "RolloutSettings",
    "SourceChange",
    "SourceData",
    "SourceId",
    "Step",
    "Tracked",
    "WorkloadFacts",
    "WorkloadState",
    "Write",
    "adopt_running",
    "compact",
    "compare",
    "compare_versions",
    "config_digest",
    "decide",
    "decode",
    "encode",
    "event_is_news",
    "has_capacity",
    "key_id",
    "merge_settings",
    "namespace_ignored",
    "needs_fresh_sources",
    "newer",
    "observe",
    "read_is_news",
    "source_ignored",
    "still_running",
    "unmanaged_reason",
    "workload_facts",
]
