"""What our processes know of the cluster: the policies and the namespaces' labels.

An AdmissionReview carries neither, so the webhook keeps both, fed by watch events; the
controller uses the same view. Only compiled policies and label maps are held, never whole objects.
Whoever must know what changed (the audit) listens to the view: it is told each change with the
versions before and after, once the view holds the new one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import kopf

from production_policy import GROUP, PLURAL, VERSION, kube, metrics
from production_policy.api import PolicyError, parse_policy
from production_policy.engine import CompiledPolicy, compile_policy
from production_policy.engine.names import NAMESPACE_NAME_LABEL

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PolicyChange:
    """A policy event as the view took it: the usable versions before and after (None: absent or unusable)."""

    event: str | None
    """kopf's event type: None for the initial listing, else ADDED, MODIFIED or DELETED."""
    name: str
    body: Mapping[str, Any]
    before: CompiledPolicy | None
    after: CompiledPolicy | None


@dataclass(frozen=True)
class NamespaceChange:
    """A namespace event as the view took it: its labels before and after (None: not seen, or deleted)."""

    event: str | None
    name: str
    before: Mapping[str, str] | None
    after: Mapping[str, str] | None


@dataclass
class ClusterView:
    """Policies by name (compiled as they arrive) and namespace labels by namespace name, updated in place."""

    policies: dict[str, CompiledPolicy] = field(default_factory=dict)
    namespace_labels: dict[str, dict[str, str]] = field(default_factory=dict)
    synced: bool = False
    problems: dict[str, str] = field(default_factory=dict)
    """Why each stored-but-unusable policy is left out of ``policies`` (its status reports it)."""
    _sorted: list[CompiledPolicy] | None = field(default=None, repr=False)
    _policy_listeners: list[Callable[[PolicyChange], None]] = field(default_factory=list, repr=False)
    _namespace_listeners: list[Callable[[NamespaceChange], None]] = field(default_factory=list, repr=False)

    def on_policy_change(self, listener: Callable[[PolicyChange], None]) -> None:
        """Call ``listener`` after each policy event the view takes."""
        self._policy_listeners.append(listener)

    def on_namespace_change(self, listener: Callable[[NamespaceChange], None]) -> None:
        """Call ``listener`` after each namespace event the view takes."""
        self._namespace_listeners.append(listener)

    def policy_event(self, event: str | None, name: str, body: Mapping[str, Any]) -> None:
        """Take a policy event from the watch, then tell the listeners."""
        before = self.policies.get(name)
        if event == "DELETED":
            self.delete_policy(name)
        else:
            self.put_policy(body)
        change = PolicyChange(event, name, body, before, self.policies.get(name))
        for listener in self._policy_listeners:
            listener(change)

    def namespace_event(self, event: str | None, name: str, labels: Mapping[str, str] | None) -> None:
        """Take a namespace event from the watch, then tell the listeners."""
        before = self.namespace_labels.get(name)
        if event == "DELETED":
            self.delete_namespace(name)
        else:
            self.put_namespace(name, labels)
        change = NamespaceChange(event, name, before, self.namespace_labels.get(name))
        for listener in self._namespace_listeners:
            listener(change)

    def sorted_policies(self) -> list[CompiledPolicy]:
        """The policies in name order; cached, since every admission request asks."""
        if self._sorted is None:
            self._sorted = [self.policies[name] for name in sorted(self.policies)]
        return self._sorted

    def _policies_changed(self) -> None:
        self._sorted = None
        metrics.INDEX_ENTRIES.labels("policies").set(len(self.policies))

    def labels_of(self, namespace: str) -> Mapping[str, str]:
        # A namespace we have not seen yet still has its immutable name label.
        return self.namespace_labels.get(namespace, {NAMESPACE_NAME_LABEL: namespace})

    def put_policy(self, body: Mapping[str, Any]) -> str | None:
        """Store a policy; return why it is unusable, if it is."""
        name = str(body.get("metadata", {}).get("name", ""))
        try:
            self.policies[name] = compile_policy(parse_policy(dict(body)))
            self._policies_changed()
        except PolicyError as exc:
            # The API server and our validating webhook refuse such objects; one written before
            # either existed is left out rather than enforced half-understood.
            self.policies.pop(name, None)
            self._policies_changed()
            if self.problems.get(name) != str(exc):  # once per problem, not once per status write
                log.error("policy %s is not usable and is ignored: %s", name, exc)
            self.problems[name] = str(exc)
            return str(exc)
        self.problems.pop(name, None)
        return None

    def delete_policy(self, name: str) -> None:
        self.policies.pop(name, None)
        self.problems.pop(name, None)
        self._policies_changed()

    def put_namespace(self, name: str, labels: Mapping[str, str] | None) -> None:
        self.namespace_labels[name] = dict(labels or {})
        metrics.INDEX_ENTRIES.labels("namespaces").set(len(self.namespace_labels))

    def delete_namespace(self, name: str) -> None:
        self.namespace_labels.pop(name, None)
        metrics.INDEX_ENTRIES.labels("namespaces").set(len(self.namespace_labels))


def register_views(registry: kopf.OperatorRegistry, view: ClusterView) -> None:
    """The watches that keep ``view`` current."""

    # Async on purpose: kopf runs sync handlers in a thread pool, and the view is read from the event
    # loop (admission, rollout, audit) — mutating it from another thread could break an iteration.
    @kopf.on.event(GROUP, VERSION, PLURAL, registry=registry, id="policy-view")
    async def policy_event(type: str | None, body: kopf.Body, name: str, **_: Any) -> None:
        view.policy_event(type, name, body)

    @kopf.on.event("", "v1", "namespaces", registry=registry, id="namespace-view")
    async def namespace_event(type: str | None, name: str, labels: kopf.Labels, **_: Any) -> None:
        view.namespace_event(type, name, labels)


def initial_sync(view: ClusterView) -> None:
    """Load every policy and namespace before serving, so the first answer is already right."""
    api = kube.api_client()
    try:
        for item in kube.list_policies(api):
            view.put_policy(item)
        for name, labels in kube.list_namespaces(api):
            view.put_namespace(name, labels)
    finally:
        api.close()
    view.synced = True
    log.info("loaded %d policies and %d namespaces", len(view.policies), len(view.namespace_labels))
