"""What the controller keeps per workload, counted with tracemalloc, by structure.

``python -m bench.state [--workloads 10000]`` (no cluster: it all happens in this process; scenario
4 records it too).

A restarted controller over scenario 4's workloads (:mod:`bench.objects`: each Deployment
references its own ConfigMap key and Secret, and already carries its baseline) is rebuilt in
this process with the product's own classes and code paths: the ConfigMap and Secret caches are
filled from list items, every Deployment body (as the API server returns it, freshly decoded from
JSON) is reduced to its rollout facts and indexed, given to the audit, and the controller's loop
looks at each workload once. Each structure is built in a phase of its own, and what a phase
leaves allocated is that structure's; what the structures keep of the bodies themselves (strings,
the template's labels, container fields) is split by which of them reach it. The same state built
as the process builds it (both handlers on each body, the body dropped after its event) is counted
as a whole too: the check on the sum. RSS cannot show any of this exactly: it moves by more
between two runs of one process.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import tracemalloc
import uuid
from collections.abc import Callable, Iterable, Mapping
from types import SimpleNamespace
from typing import Any, cast
from unittest import mock

from bench import objects
from production_policy import kube
from production_policy.audit.auditor import Auditor
from production_policy.engine import audit, rollout
from production_policy.processes.clusterview import ClusterView
from production_policy.processes.options import ControllerOptions
from production_policy.rollout.controller import Controller

NAMESPACE = "apps"
HMAC_KEY = b"bench-state-key-".ljust(32, b"k")
NO_API = cast(kube.ApiClient, SimpleNamespace(close=lambda: None))
"""Nothing here calls the API server: a restarted controller over baselined workloads writes nothing."""


def _decoded(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` as a watch or list hands it over: freshly decoded from JSON."""
    return cast(dict[str, Any], json.loads(json.dumps(obj)))


_KIND_IDS = {"ConfigMap": 1, "Secret": 2, "Deployment": 3}


def _listed(obj: dict[str, Any], kind: str, index: int) -> dict[str, Any]:
    body = dict(obj)
    body["metadata"] = {
        **obj["metadata"],
        "namespace": NAMESPACE,
        "uid": str(uuid.UUID(int=(_KIND_IDS[kind] << 64) + index)),
        "resourceVersion": str(100_000 + index),
        "creationTimestamp": "2026-12-02T04:00:00Z",
    }
    return body


def deployment_body(index: int, baseline: str | None, distinct: bool = False) -> dict[str, Any]:
    """Deployment ``dep-N`` of :func:`bench.objects.deployment` as the API server returns it:
    defaulted, with managed fields, a status, and (when given) its baseline annotation.

    ``distinct``: its container's port is its own (``8000 + N``), so that no two workloads' pods
    are alike to the policy rules (the audit then shares nothing of their containers).
    """
    body = objects.deployment(index, shared=False)
    body = _listed(body, "Deployment", index)
    metadata = body["metadata"]
    metadata["generation"] = 1
    metadata["annotations"] = {"deployment.kubernetes.io/revision": "1"}
    if baseline is not None:
        metadata["annotations"][objects.BASELINE] = baseline
    metadata["managedFields"] = [
        {
            "manager": "production-policy-bench",
            "operation": "Update",
            "apiVersion": "apps/v1",
            "time": "2026-12-02T04:00:00Z",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {}}}}},
        }
    ]
    spec = body["spec"]
    spec.update(
        strategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
        revisionHistoryLimit=10,
        progressDeadlineSeconds=600,
    )
    template = spec["template"]
    template["metadata"]["creationTimestamp"] = None
    pod = template["spec"]
    pod["volumes"][0]["secret"]["defaultMode"] = 420
    pod.update(
        restartPolicy="Always",
        terminationGracePeriodSeconds=30,
        dnsPolicy="ClusterFirst",
        securityContext={},
        schedulerName="default-scheduler",
    )
    container = pod["containers"][0]
    container["ports"][0]["protocol"] = "TCP"
    if distinct:
        container["ports"][0]["containerPort"] = 8000 + index
    container.update(
        resources={},
        terminationMessagePath="/dev/termination-log",
        terminationMessagePolicy="File",
        imagePullPolicy="IfNotPresent",
    )
    body["status"] = {
        "observedGeneration": 1,
        "conditions": [
            {
                "type": "Available",
                "status": "True",
                "lastUpdateTime": "2026-12-02T04:00:01Z",
                "lastTransitionTime": "2026-12-02T04:00:01Z",
                "reason": "MinimumReplicasAvailable",
                "message": "Deployment has minimum availability.",
            },
            {
                "type": "Progressing",
                "status": "True",
                "lastUpdateTime": "2026-12-02T04:00:01Z",
                "lastTransitionTime": "2026-12-02T04:00:01Z",
                "reason": "NewReplicaSetAvailable",
                "message": f'ReplicaSet "dep-{index}-5d8f7c9b4f" has successfully progressed.',
            },
        ],
    }
    return _decoded(body)


def _list(controller: Controller, workloads: int) -> None:
    """The controller's caches fill from the listings of ConfigMaps and Secrets, page by page,
    each page decoded from JSON, as in the process."""
    made = {
        "ConfigMap": lambda index: objects.config_map(f"cm-{index}"),
        "Secret": lambda index: objects.secret(f"sec-{index}"),
    }
    for kind, make in made.items():
        cache = controller.sources[kind]
        with mock.patch.object(kube, "list_page", _pages(kind, make, workloads)):
            entries, version = cache._list_all()
        cache._replace(entries, version)


def _pages(kind: str, make: Callable[[int], dict[str, Any]], count: int) -> Callable[..., dict[str, Any]]:
    """``kube.list_page`` over ``count`` objects ``make`` makes."""

    def page(_api: object, _kind: str, limit: int, token: str | None, _selector: str) -> dict[str, Any]:
        start = int(token or 0)
        stop = min(start + limit, count)
        items = [_listed(make(index), kind, index) for index in range(start, stop)]
        return _decoded(
            {
                "items": items,
                "metadata": {"continue": str(stop) if stop < count else "", "resourceVersion": "1"},
            }
        )

    return page


def _baseline(controller: Controller, index: int) -> str:
    """The baseline annotation the controller itself would have written on ``dep-N`` (first sight)."""
    facts = rollout.workload_facts(deployment_body(index, None))
    assert facts is not None
    found: dict[rollout.SourceId, rollout.SourceData] = {
        (ref.kind, ref.name): data
        for ref in facts.references
        if (data := controller.sources[ref.kind].get(NAMESPACE, ref.name)) is not None
    }
    observation = rollout.observe(facts.references, found)
    return rollout.encode(rollout.compare(None, observation, controller.key_id).next_baseline)


def _grown(before: tracemalloc.Snapshot) -> tuple[int, tracemalloc.Snapshot]:
    """Bytes allocated and still alive since ``before``, and the snapshot to count the next phase from."""
    gc.collect()
    after = tracemalloc.take_snapshot()
    return sum(stat.size_diff for stat in after.compare_to(before, "filename")), after


def _reachable(roots: Iterable[object], among: Mapping[int, int]) -> set[int]:
    """The ids in ``among`` of the objects reachable from ``roots`` (through containers and instances)."""
    found: set[int] = set()
    seen: set[int] = set()
    stack = list(roots)
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, type):
            continue
        seen.add(id(obj))
        if id(obj) in among:
            found.add(id(obj))
        stack.extend(gc.get_referents(obj))
    return found


def _body_parts(bodies: Iterable[object]) -> dict[int, int]:
    """id -> size of every object in the decoded bodies (dicts, lists, strings, numbers)."""
    parts: dict[int, int] = {}
    stack = list(bodies)
    while stack:
        obj = stack.pop()
        if id(obj) not in parts:
            parts[id(obj)] = sys.getsizeof(obj)
            stack.extend(gc.get_referents(obj))
    return parts


def _shells() -> tuple[Controller, Auditor]:
    """The controller's two shells over one policy that matches the bench namespace, with no API."""
    view = ClusterView()
    name, spec = objects.rollout_policy("bench-rollout", [NAMESPACE])
    view.put_policy(
        {
            "apiVersion": "productionpolicy.dev/v1alpha1",
            "kind": "ProductionPolicy",
            "metadata": {"name": name},
            "spec": spec,
        }
    )
    view.put_namespace(NAMESPACE, {"kubernetes.io/metadata.name": NAMESPACE})
    options = ControllerOptions(operator_namespace="production-policy")
    return Controller(view, options, NO_API, HMAC_KEY), Auditor(view, options, NO_API)


def measure(workloads: int = 10_000) -> dict[str, Any]:
    """Bytes kept per workload (with its ConfigMap and Secret), by structure.

    Each structure is built in a phase of its own, from the same decoded bodies, so that what a
    phase leaves allocated is that structure's; the bodies are dropped last, and what the
    structures keep of them (strings, the template's labels, container fields) is split by which
    structures reach it.
    """
    controller, auditor = _shells()
    grown: dict[str, int] = {}

    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    _list(controller, workloads)
    grown["ConfigMap and Secret digests (rollout/sources.py)"], before = _grown(before)
    tracemalloc.stop()

    # The bodies, baselined as the controller itself would have done at first sight.
    bodies = [deployment_body(index, _baseline(controller, index)) for index in range(workloads)]
    parts = _body_parts(bodies)
    # Made before counting, so that neither they nor their freeing counts.
    facts: list[rollout.WorkloadFacts | None] = [None] * workloads
    subjects: list[audit.Subject | None] = [None] * workloads
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    # kopf hands one body to the rollout handler, then to the audit's (registration order).
    for index, body in enumerate(bodies):
        facts[index] = rollout.workload_facts(body)
    grown["rollout facts (engine/rollout/facts.py)"], before = _grown(before)
    for one in facts:
        assert one is not None
        controller.workloads.put(one)
    grown["rollout index (rollout/store.py)"], before = _grown(before)
    for index, body in enumerate(bodies):
        subjects[index] = audit.audit_subject(body)
    grown["audit subjects (engine/audit/subjects.py)"], before = _grown(before)
    made = iter(subjects)
    with mock.patch.object(audit, "audit_subject", lambda _body: next(made)):
        for body in bodies:
            auditor.workload_event(None, body)
    grown["audit subjects by workload, judgements (audit/auditor.py, engine/audit/book.py)"], before = _grown(
        before
    )
    controller.look_at(controller.workloads.keys())
    asyncio.run(controller._look_at_marked_and_due())
    assert not controller._writes, "a restarted controller over baselined workloads writes nothing"
    grown["rollout schedule states (engine/rollout/fleet.py)"], before = _grown(before)
    del facts, subjects, one
    by_facts = _reachable([controller.workloads], parts)
    by_audit = _reachable([auditor.subjects, auditor.book], parts)
    tracemalloc.stop()

    assert len(controller.workloads) == workloads and len(auditor.subjects) == workloads
    kept = {
        "by the rollout facts only": sum(parts[i] for i in by_facts - by_audit),
        "by the audit subjects only": sum(parts[i] for i in by_audit - by_facts),
        "by both": sum(parts[i] for i in by_facts & by_audit),
    }
    kept_total = sum(kept.values())
    grown["what is kept of the bodies"] = kept_total
    total = sum(grown.values())
    return {
        "workloads": workloads,
        "bytes_per_workload": round(total / workloads),
        "by_structure": {what: round(size / workloads) for what, size in grown.items()},
        "kept_of_the_bodies": {what: round(size / workloads) for what, size in kept.items()},
        "bytes_per_workload_all_at_once": _all_at_once(workloads),
        "bytes_per_workload_all_at_once_no_two_pods_alike": _all_at_once(workloads, distinct=True),
    }


def _all_at_once(workloads: int, distinct: bool = False) -> int:
    """The same state built as the process builds it (both handlers on each body, the body dropped
    after its event, then the loop), counted as a whole: the check on the sum of the structures."""
    controller, auditor = _shells()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    _list(controller, workloads)
    sources, _ = _grown(before)
    tracemalloc.stop()  # and forgets what it counted: the two parts are added
    baselines = [_baseline(controller, index) for index in range(workloads)]
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for index in range(workloads):
        body = deployment_body(index, baselines[index], distinct)
        baselines[index] = ""
        facts = rollout.workload_facts(body)
        assert facts is not None
        controller.workload_seen(facts)
        auditor.workload_event(None, body)
        del body, facts
    asyncio.run(controller._look_at_marked_and_due())
    events, _ = _grown(before)
    tracemalloc.stop()
    return round((sources + events) / workloads)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.state", description=__doc__.split("\n\n")[1])
    parser.add_argument("--workloads", type=int, default=10_000)
    args = parser.parse_args(argv)
    json.dump(measure(args.workloads), sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
