"""Names the config-rollout feature reads and writes on Kubernetes objects.

Every name carries the ``productionpolicy.dev/`` prefix. Nothing written under these names ever
holds a ConfigMap or Secret value: only keyed digests, times and key names.
"""

from __future__ import annotations

from production_policy import PREFIX

BASELINE_ANNOTATION = f"{PREFIX}config-baseline"
"""On the workload's metadata: the keyed per-key digests of the data its pods run with (JSON)."""

ROLLED_AT_ANNOTATION = f"{PREFIX}config-rolled-at"
"""On the workload's metadata: when the controller last rolled it (RFC 3339), for the minimum interval."""

TEMPLATE_DIGEST_ANNOTATION = f"{PREFIX}config-digest"
"""On the pod template (so on every pod): one digest of the referenced data. Changing it is the rollout."""

WORKLOAD_OPT_OUT_ANNOTATION = f"{PREFIX}config-rollout"
"""On a workload: ``disabled`` means it is never rolled (nor given a baseline)."""

WORKLOAD_OPT_OUT_VALUE = "disabled"

IGNORE = f"{PREFIX}ignore"
"""Annotation on a ConfigMap/Secret, or label on a namespace: ``"true"`` means it never triggers a rollout."""

FIELD_MANAGER = "production-policy-controller"
"""The field manager of every write the controller makes."""

REPORTING_CONTROLLER = f"{PREFIX}controller"
"""``reportingController`` of the controller's Events."""
