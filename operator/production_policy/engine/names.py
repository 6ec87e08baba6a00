"""Every name the operator reads or writes on Kubernetes objects, and what counts as "ignored".

Every ``productionpolicy.dev/*`` annotation and label is defined here and nowhere else, with the
system namespaces and the namespace-name label the webhooks select on. Nothing written under these
names ever holds a ConfigMap or Secret value: only keyed digests, times and key names.

The opt-out, ``productionpolicy.dev/ignore``, means one thing everywhere (admission, audit,
rollouts): the value, stripped of surrounding spaces, is one of :data:`TRUE_VALUES`. Those are the
spellings YAML itself reads as true (``true``, ``True``, ``TRUE``), so a value that would be
true in a manifest is true here too. The webhooks' ``namespaceSelector`` can only compare label
values exactly, so it excludes exactly those three; a label value cannot hold a space, so the
stripping only matters for annotations (a ConfigMap's ``" true "``) and the selector and
:func:`is_ignored` agree on every label a namespace can have.
"""

from __future__ import annotations

from production_policy import PREFIX

IGNORE = f"{PREFIX}ignore"
"""Label on a namespace (never matched by any policy, never audited or rolled), or annotation on a
ConfigMap/Secret (never triggers a rollout), when its value is true (see :func:`is_ignored`)."""

TRUE_VALUES = ("true", "True", "TRUE")
"""The values of :data:`IGNORE` that mean "ignored" (after stripping spaces): YAML's spellings of true."""

INJECTED_ANNOTATION = f"{PREFIX}injected"
"""On a pod: the defaults the mutating webhook injected ("app:readiness,app:resources.requests.cpu")."""

BASELINE_ANNOTATION = f"{PREFIX}config-baseline"
"""On the workload's metadata: the keyed per-key digests of the data its pods run with (JSON)."""

ROLLED_AT_ANNOTATION = f"{PREFIX}config-rolled-at"
"""On the workload's metadata: when the controller last rolled it (RFC 3339), for the minimum interval."""

TEMPLATE_DIGEST_ANNOTATION = f"{PREFIX}config-digest"
"""On the pod template (so on every pod): one digest of the referenced data. Changing it is the rollout."""

WITHDRAWN_ANNOTATION = f"{PREFIX}withdrawn"
"""On the pod template (so on every pod): the default probes withdrawn from its containers
("app:liveness"), written when the controller rolls the workload so that its pods go without them."""

WORKLOAD_OPT_OUT_ANNOTATION = f"{PREFIX}config-rollout"
"""On a workload: ``disabled`` means it is never rolled (nor given a baseline)."""

WORKLOAD_OPT_OUT_VALUE = "disabled"

CANARY_LABEL = f"{PREFIX}canary"
"""On a ConfigMap in the operator's namespace: the canary admission policies apply to it."""

CANARY_ANNOTATION = f"{PREFIX}canary"
"""Set by the canary MutatingAdmissionPolicy: proof that the API server runs admission policies."""

COMPILED_DIGEST_ANNOTATION = f"{PREFIX}compiled-digest"
"""On a compiled admission object: a digest of its content, so an unchanged object is not sent again."""

REPORTING_CONTROLLER = f"{PREFIX}controller"
"""``reportingController`` of the controller's Events."""

FIELD_MANAGER = "production-policy-controller"
"""The field manager of every write the controller makes."""

LEASE_NAME = "production-policy-controller"
"""The Lease, in the operator's namespace, that the controller's replicas elect their leader on."""

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
"""The label the API server gives every namespace, holding its name (immutable)."""

HELM_RELEASE_ANNOTATION = "meta.helm.sh/release-name"
"""The annotation Helm puts on every object of a release it installs (``helm template`` does not)."""

SYSTEM_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease"})
"""The control plane's namespaces: never seen by the webhooks, never audited or rolled."""


def is_ignored(value: str | None) -> bool:
    """Whether a value of the :data:`IGNORE` label or annotation means "ignored" (None: absent)."""
    return value is not None and value.strip() in TRUE_VALUES
