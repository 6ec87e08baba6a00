"""The ProductionPolicy models: what parses, and the field-level messages for what does not."""

from __future__ import annotations

from typing import Any

import pytest

from production_policy.api import PolicyError, parse_policy
from production_policy.engine import validate_policy
from tests.support.engine import policy_dict

DESIGN_EXAMPLE: dict[str, Any] = {
    "match": {
        "namespaceSelector": {"matchLabels": {"env": "prod"}},
        "namespaces": ["shop"],
        "podSelector": {"matchLabels": {"tier": "web"}},
    },
    "exclude": {"namespaces": ["legacy"]},
    "enforcement": "Enforce",
    "priority": 100,
    "probes": {
        "readiness": {
            "required": True,
            "default": {
                "tcpSocket": {"port": "auto"},
                "initialDelaySeconds": 5,
                "periodSeconds": 10,
                "timeoutSeconds": 1,
            },
        },
        "liveness": {
            "required": True,
            "default": {
                "httpGet": {"path": "/healthz", "port": "auto"},
                "initialDelaySeconds": 15,
                "periodSeconds": 10,
            },
        },
        "startup": {"required": False},
    },
    "resources": {
        "defaultRequest": {"cpu": "100m", "memory": "128Mi"},
        "default": {"memory": "256Mi"},
        "require": {"requests": ["cpu", "memory"], "limits": ["memory"]},
        "min": {"cpu": "10m", "memory": "16Mi"},
        "max": {"cpu": "4", "memory": "8Gi"},
        "maxLimitRequestRatio": {"memory": "2"},
        "minQoSClass": "Burstable",
    },
    "configRollout": {"enabled": True, "debounceSeconds": 2, "minIntervalSeconds": 30, "maxConcurrent": 5},
}


def test_the_design_documents_example_parses() -> None:
    parsed = parse_policy(policy_dict("web-baseline", **DESIGN_EXAMPLE))
    assert parsed.name == "web-baseline"
    assert (
        parsed.spec.resources.default_limits is not None
        and parsed.spec.resources.default_limits.memory == "256Mi"
    )
    assert parsed.spec.probes.liveness.default_probe is not None
    assert parsed.spec.config_rollout.window_seconds == 600  # defaults fill what is left out


def test_an_empty_spec_is_a_policy_that_matches_everything_and_requires_nothing() -> None:
    parsed = parse_policy(policy_dict())
    assert parsed.spec.enforcement == "Enforce"
    assert parsed.spec.match.is_empty() and parsed.spec.exclude.is_empty()
    assert not parsed.spec.probes.readiness.required


def test_integer_quantities_are_kept_as_text() -> None:
    assert parse_policy(policy_dict(resources={"max": {"cpu": 2}})).spec.resources.max.cpu == "2"  # type: ignore[union-attr]


def _problems(**spec: Any) -> list[str]:
    return validate_policy(policy_dict(**spec))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"enforcement": "Deny"}, "spec.enforcement: input should be 'Enforce', 'Warn' or 'Audit'"),
        ({"priority": 5000}, "spec.priority: input should be less than or equal to 1000"),
        (
            {"probes": {"readiness": {"default": {"tcpSocket": {"port": 80}, "timeoutSeconds": -1}}}},
            "spec.probes.readiness.default.timeoutSeconds: input should be greater than or equal to 1",
        ),
        (
            {"probes": {"readiness": {"default": {"tcpSocket": {"port": 80}, "initialDelaySeconds": -1}}}},
            "spec.probes.readiness.default.initialDelaySeconds: input should be greater than or equal to 0",
        ),
        (
            {"probes": {"readiness": {"default": {"initialDelaySeconds": 1}}}},
            "spec.probes.readiness.default: exactly one of httpGet, tcpSocket or grpc must be set",
        ),
        (
            {"probes": {"readiness": {"default": {"tcpSocket": {"port": 80}, "httpGet": {"port": 80}}}}},
            "spec.probes.readiness.default: exactly one of httpGet, tcpSocket or grpc must be set",
        ),
        (
            {"probes": {"readiness": {"default": {"exec": {"command": ["true"]}}}}},
            "spec.probes.readiness.default.exec: extra inputs are not permitted",
        ),
        (
            {"probes": {"liveness": {"default": {"tcpSocket": {"port": "auto"}, "successThreshold": 2}}}},
            "spec.probes.liveness.default.successThreshold: must be 1 for liveness probes",
        ),
        (
            {"probes": {"startup": {"default": {"tcpSocket": {"port": "auto"}, "successThreshold": 3}}}},
            "spec.probes.startup.default.successThreshold: must be 1 for startup probes",
        ),
        (
            {"probes": {"readiness": {"default": {"grpc": {"port": "grpc"}}}}},
            "spec.probes.readiness.default.grpc.port: must be a port number or auto"
            " (gRPC probes cannot use a named port)",
        ),
        (
            {"probes": {"readiness": {"default": {"tcpSocket": {"port": 70000}}}}},
            "spec.probes.readiness.default.tcpSocket.port: port 70000 must be between 1 and 65535",
        ),
        (
            {"probes": {"readiness": {"default": {"tcpSocket": {"port": "Not_A_Name"}}}}},
            "spec.probes.readiness.default.tcpSocket.port: 'Not_A_Name' must be auto or a port name"
            " (at most 15 lowercase letters, digits and single dashes)",
        ),
        (
            {"probes": {"readiness": {"default": {"tcpSocket": {"port": True}}}}},
            "spec.probes.readiness.default.tcpSocket.port: must be a port number, a port name or auto",
        ),
        (
            {"probes": {"readiness": {"default": {"httpGet": {"port": 80, "path": "healthz"}}}}},
            "spec.probes.readiness.default.httpGet.path: string should match pattern '^/'",
        ),
        (
            {"resources": {"min": {"cpu": "5"}, "max": {"cpu": "4"}}},
            "spec.resources.min.cpu: must be less than or equal to max.cpu (4)",
        ),
        (
            {"resources": {"min": {"memory": "1Gi"}, "defaultRequest": {"memory": "512Mi"}}},
            "spec.resources.min.memory: must be less than or equal to defaultRequest.memory (512Mi)",
        ),
        (
            {"resources": {"defaultRequest": {"cpu": "2"}, "max": {"cpu": "1"}}},
            "spec.resources.defaultRequest.cpu: must be less than or equal to max.cpu (1)",
        ),
        (
            {"resources": {"min": {"ephemeral-storage": "2Gi"}, "default": {"ephemeral-storage": "1Gi"}}},
            "spec.resources.min.ephemeral-storage: must be less than or equal to"
            " default.ephemeral-storage (1Gi)",
        ),
        (
            {"resources": {"default": {"cpu": "2"}, "max": {"cpu": "1500m"}}},
            "spec.resources.default.cpu: must be less than or equal to max.cpu (1500m)",
        ),
        (
            {"resources": {"defaultRequest": {"memory": "1Gi"}, "default": {"memory": "512Mi"}}},
            "spec.resources.defaultRequest.memory: must be less than or equal to default.memory (512Mi)",
        ),
        (
            {"resources": {"maxLimitRequestRatio": {"cpu": "500m"}}},
            "spec.resources.maxLimitRequestRatio.cpu: must be at least 1",
        ),
        (
            {
                "resources": {
                    "defaultRequest": {"memory": "100Mi"},
                    "default": {"memory": "1Gi"},
                    "maxLimitRequestRatio": {"memory": "2"},
                }
            },
            "spec.resources.default.memory: 1Gi / defaultRequest.memory (100Mi)"
            " exceeds maxLimitRequestRatio.memory (2)",
        ),
        (
            {"resources": {"max": {"cpu": "-1"}}},
            "spec.resources.max.cpu: '-1' is not a non-negative quantity such as 100m, 128Mi or 2",
        ),
        (
            {"resources": {"max": {"cpu": 0.5}}},
            "spec.resources.max.cpu: must be a quantity such as 100m, 128Mi or 2",
        ),
        ({"resources": {"max": {"cpu": "1e99999999999999999999"}}}, "spec.resources.max.cpu: quantity "),
        ({"resources": {"max": {"gpu": "1"}}}, "spec.resources.max.gpu: extra inputs are not permitted"),
        (
            {"resources": {"require": {"requests": ["cpu", "cpu"]}}},
            "spec.resources.require.requests: must not list a resource twice",
        ),
        (
            {"resources": {"require": {"limits": ["gpu"]}}},
            "spec.resources.require.limits[0]: input should be 'cpu', 'memory' or 'ephemeral-storage'",
        ),
        (
            {"resources": {"minQoSClass": "Platinum"}},
            "spec.resources.minQoSClass: input should be 'BestEffort', 'Burstable' or 'Guaranteed'",
        ),
        (
            {"match": {"podSelector": {"matchExpressions": [{"key": "tier", "operator": "In"}]}}},
            "spec.match.podSelector.matchExpressions[0].values: must be non-empty for operator In",
        ),
        (
            {
                "exclude": {
                    "namespaceSelector": {
                        "matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]
                    }
                }
            },
            "spec.exclude.namespaceSelector.matchExpressions[0].values: must be empty for operator Exists",
        ),
        (
            {"match": {"namespaces": [""]}},
            "spec.match.namespaces[0]: string should have at least 1 character",
        ),
        (
            {"configRollout": {"maxConcurrent": 0}},
            "spec.configRollout.maxConcurrent: input should be greater than or equal to 1",
        ),
        ({"probes": {"readines": {}}}, "spec.probes.readines: extra inputs are not permitted"),
    ],
)
def test_problems_name_the_field(spec: dict[str, Any], message: str) -> None:
    problems = _problems(**spec)
    assert any(problem.startswith(message) for problem in problems), problems


def test_every_problem_is_reported_at_once() -> None:
    problems = _problems(
        enforcement="Deny",
        resources={"min": {"cpu": "5", "memory": "2Gi"}, "max": {"cpu": "4", "memory": "1Gi"}},
    )
    assert problems == [
        "spec.enforcement: input should be 'Enforce', 'Warn' or 'Audit'",
        "spec.resources.min.cpu: must be less than or equal to max.cpu (4)",
        "spec.resources.min.memory: must be less than or equal to max.memory (1Gi)",
    ]


def test_quantities_compare_by_value_not_by_text() -> None:
    assert _problems(resources={"min": {"cpu": "1000m"}, "max": {"cpu": 1}}) == []
    assert _problems(resources={"min": {"memory": "1Gi"}, "max": {"memory": "1073741824"}}) == []
    assert _problems(resources={"min": {"memory": "1Gi"}, "max": {"memory": "1G"}}) != []


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ({**policy_dict(), "apiVersion": "v1"}, "apiVersion: must be productionpolicy.dev/v1alpha1"),
        ({**policy_dict(), "kind": "LimitRange"}, "kind: must be ProductionPolicy"),
        ({k: v for k, v in policy_dict().items() if k != "spec"}, "spec: field required"),
        ({**policy_dict(), "metadata": {}}, "metadata.name: field required"),
    ],
)
def test_the_object_itself_is_checked(obj: dict[str, Any], message: str) -> None:
    assert message in validate_policy(obj)


def test_a_non_object_is_refused_without_a_path() -> None:
    with pytest.raises(PolicyError) as refused:
        parse_policy([])  # type: ignore[arg-type]
    assert str(refused.value) == "input should be a valid dictionary or instance of ProductionPolicy"


def test_status_is_optional_and_parsed() -> None:
    status = {
        "observedGeneration": 3,
        "conditions": [{"type": "Ready", "status": "True", "reason": "Active"}],
        "matchedWorkloads": 42,
        "nonCompliantWorkloads": 3,
        "violations": [
            {
                "namespace": "shop",
                "kind": "Deployment",
                "name": "cart",
                "message": "container app: no readinessProbe",
            }
        ],
    }
    parsed = parse_policy({**policy_dict(), "status": status})
    assert parsed.status is not None and parsed.status.violations[0].name == "cart"
