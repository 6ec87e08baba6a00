"""Which workload events deserve a DefaultsInjected Event, and what it says."""

from __future__ import annotations

from typing import Any

from production_policy.engine.audit import (
    Subject,
    WorkloadRef,
    audit_subject,
    injected_note,
    injected_to_report,
    template_changed,
)
from production_policy.engine.audit.events import NOTE_MAX_BYTES, bounded_bytes
from production_policy.engine.names import INJECTED_ANNOTATION
from tests.support.engine import TCP_AUTO, container, deployment, pod, policy

WEB = WorkloadRef("shop", "Deployment", "web")
INJECTED = ("app:readiness", "app:resources.requests.cpu")
DEFAULTS = [policy("defaults", match={"namespaces": ["shop"]}, probes={"readiness": {"default": TCP_AUTO}})]


def subject(kind: str = "Deployment", uid: str = "u1", **container_fields: Any) -> Subject:
    body = (
        deployment(container(**container_fields))
        if kind == "Deployment"
        else pod(container(**container_fields))
    )
    annotations = {INJECTED_ANNOTATION: ",".join(INJECTED)} if kind == "Pod" else {}
    body["metadata"] = {"name": "web", "namespace": "shop", "uid": uid, "annotations": annotations}
    found = audit_subject(body)
    assert found is not None
    return found


def report(before: Subject | None, after: Subject, listing: bool = False, last: Any = None) -> Any:
    return injected_to_report(
        before, after, listing=listing, last_reported=last, namespace_labels={}, policies=DEFAULTS
    )


def test_a_new_workload_or_a_new_template_is_a_change() -> None:
    web = subject()
    assert template_changed(None, web)
    assert not template_changed(web, subject())
    assert template_changed(web, subject(uid="u2"))  # deleted and created again
    assert template_changed(web, subject(ports=[{"containerPort": 80}]))


def test_reported_when_created_or_changed_and_defaults_are_needed() -> None:
    assert report(None, subject()) == ("app:readiness",)
    assert report(None, subject("Pod")) == INJECTED  # a Pod: what the webhook recorded on it


def test_never_for_a_listing_an_unchanged_template_or_nothing_injected() -> None:
    assert report(None, subject(), listing=True) is None
    assert report(subject(), subject()) is None
    probed = subject(readinessProbe=TCP_AUTO)
    assert report(None, probed) is None


def test_not_again_for_the_same_defaults() -> None:
    assert report(None, subject(), last=("app:readiness",)) is None
    assert report(None, subject("Pod"), last=INJECTED[:1]) == INJECTED


def test_notes_name_the_defaults_and_fit() -> None:
    note = injected_note(WEB, INJECTED)
    assert "app:readiness, app:resources.requests.cpu" in note and "Deployment" in note
    assert "into this pod" in injected_note(WorkloadRef("shop", "Pod", "p"), INJECTED)
    long = injected_note(WEB, tuple(f"container-{i}:readiness" for i in range(200)))
    assert len(long.encode()) <= NOTE_MAX_BYTES and long.endswith("...")
    assert bounded_bytes("—" * 400, 10) == "—" * 2 + "..."
