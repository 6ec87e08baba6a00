"""One handler per webhook path: translate a review into an engine call and back.

No decision is made here: matching, defaults, violations, ratcheting and the message all come
from the engine. Handlers never write anything, so dry-run requests need no special case.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from production_policy import engine
from production_policy.admission import configuration, review
from production_policy.processes.clusterview import ClusterView

log = logging.getLogger(__name__)

Handler = Callable[[review.ReviewRequest, ClusterView], review.Answer]


def mutate_pod(request: review.ReviewRequest, view: ClusterView) -> review.Answer:
    """Inject the missing probes and resources into a new Pod."""
    if request.kind != "Pod" or request.operation != "CREATE":
        return review.allow(request.uid)
    plan = engine.plan_mutation(
        request.obj, request.namespace, view.labels_of(request.namespace), view.sorted_policies()
    )
    if plan.injected:
        log.info("mutate Pod %s/%s: injected %s", request.namespace, _name(request), ",".join(plan.injected))
    return review.allow(request.uid, patch=plan.patch)


def validate_workload(request: review.ReviewRequest, view: ClusterView) -> review.Answer:
    """Validate a Pod or the pod template of a workload, ratcheting on UPDATE."""
    if request.operation not in ("CREATE", "UPDATE"):
        return review.allow(request.uid)
    verdict = engine.evaluate_workload(
        request.obj,
        request.namespace,
        view.labels_of(request.namespace),
        view.sorted_policies(),
        old_obj=request.old_obj if request.operation == "UPDATE" else None,
    )
    if verdict.denied:
        answer = review.deny(request.uid, verdict.message, warnings=verdict.warnings)
    else:
        answer = review.allow(request.uid, warnings=verdict.warnings)
    if verdict.violations:
        log.info(
            "validate %s %s/%s: %s (%d violation(s))",
            request.kind,
            request.namespace,
            _name(request),
            review.decision(answer),
            len(verdict.violations),
        )
    return answer


def validate_policy(request: review.ReviewRequest, view: ClusterView) -> review.Answer:
    """Refuse a ProductionPolicy the engine could not enforce, naming each wrong field."""
    if request.operation not in ("CREATE", "UPDATE"):
        return review.allow(request.uid)
    errors = engine.validate_policy(request.obj)
    if errors:
        return review.deny(
            request.uid, "invalid ProductionPolicy: " + "; ".join(errors), code=422, reason="Invalid"
        )
    return review.allow(request.uid)


def _name(request: review.ReviewRequest) -> str:
    return request.name or str(request.obj.get("metadata", {}).get("generateName", "")) + "*"


HANDLERS: dict[str, Handler] = {
    configuration.MUTATE_PODS: mutate_pod,
    configuration.VALIDATE_PODS: validate_workload,
    configuration.VALIDATE_WORKLOADS: validate_workload,
    configuration.VALIDATE_POLICIES: validate_policy,
}
