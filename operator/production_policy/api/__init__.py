"""The ProductionPolicy API (productionpolicy.dev/v1alpha1) as pydantic models.

The CRD in ``crds/`` is generated from them (``api.crd``).
"""

from production_policy.api.errors import PolicyError
from production_policy.api.parse import parse_policy
from production_policy.api.policy import (
    API_VERSION,
    ENFORCEMENTS,
    ConfigRollout,
    Enforcement,
    ProductionPolicy,
    ProductionPolicySpec,
    WorkloadSelector,
)
from production_policy.api.probes import AUTO_PORT, OnInjectedFailure, ProbePolicy, ProbeRule, ProbeTemplate
from production_policy.api.resources import QOS_ORDER, RESOURCE_NAMES, QoSClass, ResourceName, ResourcePolicy
from production_policy.api.status import (
    MAX_STATUS_PROBE_FAILURES,
    MAX_STATUS_VIOLATIONS,
    MAX_STATUS_WITHDRAWN_PROBES,
    ProductionPolicyStatus,
    StatusProbeFailure,
    StatusViolation,
    StatusWithdrawnProbe,
    WorkloadIdentity,
)

__all__ = [
    "API_VERSION",
    "AUTO_PORT",
    "ENFORCEMENTS",
    "MAX_STATUS_PROBE_FAILURES",
    "MAX_STATUS_VIOLATIONS",
    "MAX_STATUS_WITHDRAWN_PROBES",
    "QOS_ORDER",
    "RESOURCE_NAMES",
    "ConfigRollout",
    "Enforcement",
    "OnInjectedFailure",
    "PolicyError",
    "ProbePolicy",
    "ProbeRule",
    "ProbeTemplate",
    "ProductionPolicy",
    "ProductionPolicySpec",
    "ProductionPolicyStatus",
    "QoSClass",
    "ResourceName",
    "ResourcePolicy",
    "StatusProbeFailure",
    "StatusViolation",
    "StatusWithdrawnProbe",
    "WorkloadIdentity",
    "WorkloadSelector",
    "parse_policy",
]
