"""The policy engine: pure functions over plain dicts — no I/O, no kopf, no Kubernetes client.

Which policies apply to a pod, what defaults to inject (as a JSON patch), what still violates,
which ConfigMaps/Secrets and keys a pod spec references, and keyed digests of that data. The
admission webhooks and the rollout controller only translate to and from these functions.
"""

from production_policy.engine.compiled import CompiledPolicy, compile_policy
from production_policy.engine.digests import key_digests
from production_policy.engine.matching import matching_policies
from production_policy.engine.mutation import MutationPlan, needed_defaults, plan_mutation
from production_policy.engine.names import IGNORE, INJECTED_ANNOTATION, is_ignored
from production_policy.engine.pods import WORKLOAD_KINDS, PodView, pod_from_template, pod_template
from production_policy.engine.policies import validate_policy
from production_policy.engine.references import SourceRef, referenced_sources
from production_policy.engine.rules import Violation
from production_policy.engine.validation import Verdict, evaluate_workload

__all__ = [
    "IGNORE",
    "INJECTED_ANNOTATION",
    "WORKLOAD_KINDS",
    "CompiledPolicy",
    "MutationPlan",
    "PodView",
    "SourceRef",
    "Verdict",
    "Violation",
    "compile_policy",
    "evaluate_workload",
    "is_ignored",
    "key_digests",
    "matching_policies",
    "needed_defaults",
    "plan_mutation",
    "pod_from_template",
    "pod_template",
    "referenced_sources",
    "validate_policy",
]
