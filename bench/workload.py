"""The policies and the pod every admission scenario uses: 10 policies, a realistic multi-container pod.

Five of the ten policies match the pod (through every kind of criterion: all namespaces, namespace
labels, namespace names, pod labels), five do not; the pod passes once defaults are injected, so
every create is admitted and the benchmark measures the usual path, not the error path.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

NAMESPACE_LABELS = {"env": "prod", "team": "shop"}

_RESOURCES_DEFAULTS = {
    "defaultRequest": {"cpu": "100m", "memory": "128Mi"},
    "default": {"memory": "256Mi"},
    "require": {"requests": ["cpu", "memory"], "limits": ["memory"]},
    "min": {"cpu": "10m", "memory": "16Mi"},
    "max": {"cpu": "4", "memory": "8Gi"},
}


def policies(*namespaces: str) -> dict[str, dict[str, Any]]:
    """Ten ProductionPolicy specs by name; the first five match pods of ``pod()`` in ``namespaces``
    (labelled NAMESPACE_LABELS)."""
    return {
        # --- these match ---
        "bench-baseline": {
            "enforcement": "Enforce",
            "exclude": {"podSelector": {"matchLabels": {"workload-type": "batch"}}},
            "probes": {
                "readiness": {
                    "required": True,
                    "default": {"tcpSocket": {"port": "auto"}, "initialDelaySeconds": 5, "periodSeconds": 10},
                },
                "liveness": {"default": {"tcpSocket": {"port": "auto"}, "initialDelaySeconds": 15}},
            },
            "resources": _RESOURCES_DEFAULTS,
        },
        "bench-web": {
            "enforcement": "Enforce",
            "priority": 100,
            "match": {"podSelector": {"matchLabels": {"tier": "web"}}},
            "exclude": {"namespaces": ["legacy"]},
            "probes": {
                "readiness": {
                    "required": True,
                    "default": {"httpGet": {"path": "/ready", "port": "auto"}, "timeoutSeconds": 1},
                },
                "liveness": {
                    "required": True,
                    "default": {"httpGet": {"path": "/healthz", "port": "auto"}, "initialDelaySeconds": 15},
                },
            },
            "resources": {
                "defaultRequest": {"cpu": "200m", "memory": "100Mi"},
                "default": {"cpu": "300m", "memory": "200Mi"},
                "require": {"requests": ["cpu", "memory"], "limits": ["memory"]},
            },
        },
        "bench-prod-audit": {
            "enforcement": "Audit",
            "match": {"namespaceSelector": {"matchLabels": {"env": "prod"}}},
            "resources": {"maxLimitRequestRatio": {"memory": "4"}, "minQoSClass": "Burstable"},
        },
        "bench-shop-limits": {
            "enforcement": "Warn",
            "match": {
                "namespaces": list(namespaces),
                "podSelector": {
                    "matchExpressions": [{"key": "tier", "operator": "In", "values": ["web", "api"]}]
                },
            },
            "resources": {"max": {"cpu": "8", "memory": "16Gi"}},
        },
        "bench-rollout": {
            "enforcement": "Audit",
            "match": {"namespaceSelector": {"matchLabels": {"env": "prod"}}},
            "configRollout": {"enabled": True},
        },
        # --- these do not ---
        "bench-jvm": {
            "enforcement": "Warn",
            "match": {"podSelector": {"matchLabels": {"runtime": "jvm"}}},
            "probes": {"startup": {"required": True}},
        },
        "bench-payments": {
            "enforcement": "Enforce",
            "priority": 200,
            "match": {"namespaces": ["payments"]},
            "resources": {
                "require": {"requests": ["cpu", "memory"], "limits": ["cpu", "memory"]},
                "minQoSClass": "Guaranteed",
            },
        },
        "bench-batch": {
            "enforcement": "Enforce",
            "match": {"podSelector": {"matchLabels": {"workload-type": "batch"}}},
            "resources": _RESOURCES_DEFAULTS,
        },
        "bench-data-team": {
            "enforcement": "Enforce",
            "match": {"namespaceSelector": {"matchLabels": {"team": "data"}}},
            "probes": {"readiness": {"required": True}},
        },
        "bench-legacy": {
            "enforcement": "Warn",
            "match": {"namespaces": ["legacy"]},
            "probes": {"liveness": {"required": True}},
        },
    }


def pod(name: str = "", generate_name: str = "cart-", containers: int = 3) -> dict[str, Any]:
    """A web pod as a Deployment would make it: app + proxy sidecar + log shipper + an init container.

    The app has no probes and partial resources (defaults fill them in); the sidecars are complete.
    With ``containers`` above 3, more copies of the three follow in turn (``app-1``, ``proxy-1``,
    ``logs-1``, ``app-2``...), each on ports of its own: a big pod with as many containers to
    default and to judge in proportion.
    """
    metadata: dict[str, Any] = {
        "labels": {"app": "cart", "tier": "web", "version": "v42", "pod-template-hash": "5d8f9c7b6"},
        "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "9090"},
    }
    if name:
        metadata["name"] = name
    else:
        metadata["generateName"] = generate_name
    env: list[dict[str, Any]] = [{"name": f"SETTING_{i}", "value": f"value-{i}"} for i in range(8)]
    env += [
        {"name": "DB_HOST", "valueFrom": {"configMapKeyRef": {"name": "cart-config", "key": "db.host"}}},
        {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "cart-db", "key": "password"}}},
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
    ]
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": {
            "schedulerName": "bench-unscheduled",  # see admission_e2e: stays Pending, no node work
            "initContainers": [
                {
                    "name": "migrate",
                    "image": "registry.example/cart-migrate:v42",
                    "command": ["/migrate", "--wait"],
                    "envFrom": [{"configMapRef": {"name": "cart-config"}}],
                    "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "64Mi"}},
                }
            ],
            "containers": [
                {
                    "name": "app",
                    "image": "registry.example/cart:v42",
                    "args": ["--port=8080", "--metrics-port=9090"],
                    "ports": [
                        {"name": "http", "containerPort": 8080},
                        {"name": "metrics", "containerPort": 9090},
                    ],
                    "env": env,
                    "envFrom": [{"configMapRef": {"name": "cart-config"}}],
                    "resources": {"requests": {"cpu": "250m"}},
                    "volumeMounts": [
                        {"name": "config", "mountPath": "/etc/cart"},
                        {"name": "tls", "mountPath": "/etc/tls", "readOnly": True},
                    ],
                    "securityContext": {
                        "runAsNonRoot": True,
                        "readOnlyRootFilesystem": True,
                        "allowPrivilegeEscalation": False,
                    },
                },
                {
                    "name": "proxy",
                    "image": "registry.example/envoy:v1.31",
                    "args": ["--config-path", "/etc/envoy/envoy.yaml"],
                    "ports": [
                        {"name": "proxy", "containerPort": 15001},
                        {"name": "admin", "containerPort": 15090},
                    ],
                    "readinessProbe": {"httpGet": {"path": "/ready", "port": 15090}, "periodSeconds": 5},
                    "livenessProbe": {"tcpSocket": {"port": 15001}},
                    "resources": {
                        "requests": {"cpu": "100m", "memory": "128Mi"},
                        "limits": {"cpu": "1", "memory": "256Mi"},
                    },
                    "volumeMounts": [{"name": "envoy", "mountPath": "/etc/envoy"}],
                },
                {
                    "name": "logs",
                    "image": "registry.example/fluent-bit:3.1",
                    "readinessProbe": {"exec": {"command": ["/bin/true"]}},
                    "livenessProbe": {"exec": {"command": ["/bin/true"]}},
                    "resources": {"requests": {"cpu": "20m", "memory": "32Mi"}, "limits": {"memory": "64Mi"}},
                    "volumeMounts": [{"name": "varlog", "mountPath": "/var/log"}],
                },
            ],
            "volumes": [
                {"name": "config", "configMap": {"name": "cart-config"}},
                {"name": "tls", "secret": {"secretName": "cart-tls"}},
                {"name": "envoy", "configMap": {"name": "cart-envoy"}},
                {"name": "varlog", "emptyDir": {}},
            ],
            "terminationGracePeriodSeconds": 30,
        },
    }
    three = body["spec"]["containers"]
    for i in range(3, containers):
        three.append(_renumbered(three[i % 3], i // 3))
    return body


def _renumbered(container: dict[str, Any], n: int) -> dict[str, Any]:
    """A copy of one of the pod's containers as its ``n``-th repeat: its name, its ports' names and
    numbers (and the probes and arguments naming them) unique in the pod."""
    shift = 100 * n
    copied = copy.deepcopy(container)
    copied["name"] = f"{container['name']}-{n}"
    for port in copied.get("ports", []):
        port["name"] = f"{port['name']}-{n}"
        port["containerPort"] += shift
    for probe in ("readinessProbe", "livenessProbe"):
        for handler in ("httpGet", "tcpSocket"):
            if handler in copied.get(probe, {}):
                copied[probe][handler]["port"] += shift
    if "args" in copied:  # --port=8080 and the like
        copied["args"] = [re.sub(r"=(\d+)$", lambda m: f"={int(m[1]) + shift}", a) for a in copied["args"]]
    return copied


def admission_review(uid: str, namespace: str, obj: dict[str, Any]) -> dict[str, Any]:
    """The AdmissionReview the API server sends for a Pod CREATE."""
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "name": obj.get("metadata", {}).get("name", ""),
            "namespace": namespace,
            "operation": "CREATE",
            "userInfo": {
                "username": "system:serviceaccount:kube-system:replicaset-controller",
                "uid": "5b1f0b9e-1d2c-4c0e-9a57-0f1f1f1f1f1f",
                "groups": [
                    "system:serviceaccounts",
                    "system:serviceaccounts:kube-system",
                    "system:authenticated",
                ],
            },
            "object": obj,
            "oldObject": None,
            "dryRun": False,
            "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"},
        },
    }


def mutated(obj: dict[str, Any], namespace: str, policy_specs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The pod after our mutating webhook's patch: what the validating webhook is sent."""
    import jsonpatch

    from production_policy import engine
    from production_policy.api import parse_policy

    parsed = [
        engine.compile_policy(
            parse_policy(
                {
                    "apiVersion": "productionpolicy.dev/v1alpha1",
                    "kind": "ProductionPolicy",
                    "metadata": {"name": name},
                    "spec": spec,
                }
            )
        )
        for name, spec in sorted(policy_specs.items())
    ]
    labels = {"kubernetes.io/metadata.name": namespace, **NAMESPACE_LABELS}
    plan = engine.plan_mutation(copy.deepcopy(obj), namespace, labels, parsed)
    result: dict[str, Any] = jsonpatch.apply_patch(obj, plan.patch) if plan.patch else copy.deepcopy(obj)
    verdict = engine.evaluate_workload(result, namespace, labels, parsed)
    if verdict.denied:
        raise AssertionError(f"the bench pod would be refused: {verdict.message}")
    return result


def size(obj: Any) -> int:
    return len(json.dumps(obj))
