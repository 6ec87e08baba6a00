"""Which workload events deserve a DefaultsInjected Event, and what it says."""

from __future__ import annotations

from production_policy.engine.audit import WorkloadRef, injected_note, report_injected
from production_policy.engine.audit.events import NOTE_MAX_BYTES, bounded_bytes

WEB = WorkloadRef("shop", "Deployment", "web")
INJECTED = ("app:readiness", "app:resources.requests.cpu")


def test_reported_when_created_or_changed_and_defaults_are_needed() -> None:
    assert report_injected(listing=False, template_changed=True, injected=INJECTED, last_reported=None)


def test_never_for_a_listing_an_unchanged_template_or_nothing_injected() -> None:
    assert not report_injected(listing=True, template_changed=True, injected=INJECTED, last_reported=None)
    assert not report_injected(listing=False, template_changed=False, injected=INJECTED, last_reported=None)
    assert not report_injected(listing=False, template_changed=True, injected=(), last_reported=None)


def test_not_again_for_the_same_defaults() -> None:
    assert not report_injected(
        listing=False, template_changed=True, injected=INJECTED, last_reported=INJECTED
    )
    assert report_injected(
        listing=False, template_changed=True, injected=INJECTED[:1], last_reported=INJECTED
    )


def test_notes_name_the_defaults_and_fit() -> None:
    note = injected_note(WEB, INJECTED)
    assert "app:readiness, app:resources.requests.cpu" in note and "Deployment" in note
    assert "into this pod" in injected_note(WorkloadRef("shop", "Pod", "p"), INJECTED)
    long = injected_note(WEB, tuple(f"container-{i}:readiness" for i in range(200)))
    assert len(long.encode()) <= NOTE_MAX_BYTES and long.endswith("...")
    assert bounded_bytes("—" * 400, 10) == "—" * 2 + "..."
