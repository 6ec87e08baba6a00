"""Which Events the audit posts about workloads, and what they say.

A workload whose pods need injected defaults gets one ``DefaultsInjected`` Event when it is
created or its pod template changes (and the set of defaults differs from the one last reported),
so ``kubectl describe deployment`` explains why its pods differ from its template. Never for the
objects of the controller's initial listing (or a re-listing): restarting the controller must not
flood the cluster with Events about workloads nobody touched. Nor when a *policy* change alters
what many workloads need: that would be one Event per workload in the cluster at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from production_policy.engine.audit.subjects import Subject, WorkloadRef
from production_policy.engine.compiled import CompiledPolicy
from production_policy.engine.mutation import needed_defaults

DEFAULTS_INJECTED = "DefaultsInjected"
NOTE_MAX_BYTES = 1024  # events.k8s.io/v1 refuses a longer note


def template_changed(before: Subject | None, after: Subject) -> bool:
    """Whether a workload event brings a new workload (or a new uid), or a new judged pod template."""
    return before is None or before.uid != after.uid or before.pod != after.pod


def injected_to_report(
    before: Subject | None,
    after: Subject,
    *,
    listing: bool,
    last_reported: tuple[str, ...] | None,
    namespace_labels: Mapping[str, str],
    policies: Sequence[CompiledPolicy],
) -> tuple[str, ...] | None:
    """The defaults a ``DefaultsInjected`` Event about a workload event names; None: no Event.

    ``before`` is the workload as last seen (None: new); ``listing``: the event comes from a
    (re-)listing, not a change; ``last_reported``: the defaults the last such Event named. A bare
    Pod's defaults are those the webhook recorded on it, a template's those the webhook will
    inject into its pods (worked out only when an Event is possible at all: it costs a defaulting).
    """
    if listing or not template_changed(before, after):
        return None
    if after.ref.kind == "Pod":
        injected = after.injected
    else:
        injected = needed_defaults(after.pod, after.ref.namespace, namespace_labels, policies)
    return injected if injected and injected != last_reported else None


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
