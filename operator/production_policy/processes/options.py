"""How the config-rollout controller is configured."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from production_policy.engine.names import SYSTEM_NAMESPACES
from production_policy.engine.probewatch import Thresholds

DEFAULT_OPERATOR_NAMESPACE = "production-policy"
DIGEST_KEY_SECRET = "production-policy-digest-key"


@dataclass(frozen=True)
class ControllerOptions:
    """What the controller needs to know about its installation.

    ``operator_namespace`` holds the Secret with the HMAC key of the digests (created if missing)
    and is never managed itself, like every namespace in ``ignored_namespaces``.
    """

    operator_namespace: str = field(
        default_factory=lambda: os.environ.get("POD_NAMESPACE", DEFAULT_OPERATOR_NAMESPACE)
    )
    ignored_namespaces: frozenset[str] = SYSTEM_NAMESPACES
    key_secret: str = DIGEST_KEY_SECRET
    instance: str = field(default_factory=lambda: os.environ.get("POD_NAME") or os.uname().nodename)
    """``reportingInstance`` of the controller's Events, and its identity in leader election."""
    leader_election: bool = True
    """Act only while holding the controller's Lease (``production-policy controller``)."""
    admission_engine: str = "webhook"
    """``webhook``, ``apiserver`` or ``both``: with the last two, the controller keeps the compiled
    admission policies applied in the API server (see ``production_policy.apiserver``)."""
    validating_failure_policy: str = "Fail"
    """failurePolicy of the compiled ValidatingAdmissionPolicies."""
    probe_watch: bool = True
    """Watch what the injected probes do (``production_policy.probewatch``): pods and kubelet Events."""
    probe_thresholds: Thresholds = field(default_factory=Thresholds)
    """When an injected probe counts as failing its workload."""

    @property
    def all_ignored_namespaces(self) -> frozenset[str]:
        """The ignored namespaces, the operator's own included."""
        return self.ignored_namespaces | {self.operator_namespace}
