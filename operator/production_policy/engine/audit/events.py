"""Which Events the audit posts about workloads, and what they say.

A workload whose pods need injected defaults gets one ``DefaultsInjected`` Event when it is
created or its pod template changes (and the set of defaults differs from the one last reported),
so ``kubectl describe deployment`` explains why its pods differ from its template. Never for the
objects of the controller's initial listing (or a re-listing): restarting the controller must not
flood the cluster with Events about workloads nobody touched. Nor when a *policy* change alters
what many workloads need: that would be one Event per workload in the cluster at once.
"""

from __future__ import annotations

from production_policy.engine.audit.subjects import WorkloadRef

DEFAULTS_INJECTED = "DefaultsInjected"
NOTE_MAX_BYTES = 1024  # events.k8s.io/v1 refuses a longer note


def report_injected(
    listing: bool,
    template_changed: bool,
    injected: tuple[str, ...],
    last_reported: tuple[str, ...] | None,
) -> bool:
    """Whether to post a ``DefaultsInjected`` Event for a workload event.

    ``listing``: the event comes from a (re-)listing, not a change. ``template_changed``: the
    workload is new or its judged pod template differs from the one seen before.
    """
    return not listing and template_changed and bool(injected) and injected != last_reported


def injected_note(ref: WorkloadRef, injected: tuple[str, ...]) -> str:
    """The note of a ``DefaultsInjected`` Event."""
    if ref.kind == "Pod":
        text = f"Production policies injected defaults into this pod: {', '.join(injected)}."
    else:
        text = (
            f"Production policies inject defaults into the pods of this {ref.kind}: {', '.join(injected)}."
            " Declare them in the pod template to make them explicit."
        )
    return bounded_bytes(text, NOTE_MAX_BYTES)


def bounded_bytes(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes (on a character boundary), ending in "..." when cut."""
    encoded = text.encode()
    if len(encoded) <= limit:
        return text
    return encoded[: limit - 3].decode(errors="ignore") + "..."
