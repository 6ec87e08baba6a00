"""Builders for the engine's unit tests: policies from short spec dicts, pods and workloads."""

from __future__ import annotations

import copy
from typing import Any

from production_policy.api import parse_policy
from production_policy.engine import CompiledPolicy, compile_policy
from production_policy.engine.compiled import default_digest

TCP_AUTO = {"tcpSocket": {"port": "auto"}}


def policy(name: str = "p", **spec: Any) -> CompiledPolicy:
    """A valid ProductionPolicy with this spec (keys in wire form: ``enforcement``, ``probes``...),
    compiled as the processes hand it to the engine."""
    return compile_policy(parse_policy(policy_dict(name, **spec)))


def with_withdrawals(compiled: CompiledPolicy, *where: tuple[str, str, str, str, str]) -> CompiledPolicy:
    """The policy as the view holds it once the controller has written to its status that its
    current default is withdrawn from each (namespace, kind, name, container, probe)."""
    body = policy_dict(compiled.name, **compiled.policy.spec.model_dump(by_alias=True, exclude_none=True))
    body["status"] = {
        "withdrawnProbes": [
            {
                "workload": {"kind": kind, "namespace": namespace, "name": name},
                "container": container_name,
                "probe": probe,
                "defaultDigest": default_digest(compiled.default_probes[probe]),  # type: ignore[index]
                "since": "2027-01-15T08:00:00Z",
                "lastFailure": "Liveness probe failed: HTTP probe failed with statuscode: 404",
            }
            for namespace, kind, name, container_name, probe in where
        ]
    }
    return compile_policy(parse_policy(body))


def policy_dict(name: str = "p", **spec: Any) -> dict[str, Any]:
    """The raw object of a ProductionPolicy, for validation tests."""
    return {
        "apiVersion": "productionpolicy.dev/v1alpha1",
        "kind": "ProductionPolicy",
        "metadata": {"name": name},
        "spec": spec,
    }


def container(name: str = "app", port: int | None = 8080, **fields: Any) -> dict[str, Any]:
    """A container with an image, one TCP port (unless ``port=None``) and any other fields."""
    result: dict[str, Any] = {"name": name, "image": "example/app:1"}
    if port is not None:
        result["ports"] = [{"containerPort": port}]
    result.update(fields)
    return result


def pod(
    *containers: dict[str, Any],
    init: tuple[dict[str, Any], ...] = (),
    labels: dict[str, str] | None = None,
    **metadata: Any,
) -> dict[str, Any]:
    """A Pod with these containers (default: one ``container()``), init containers and labels."""
    spec: dict[str, Any] = {"containers": list(containers) or [container()]}
    if init:
        spec["initContainers"] = list(init)
    meta: dict[str, Any] = {"name": "pod", **metadata}
    if labels is not None:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def deployment(*containers: dict[str, Any], labels: dict[str, str] | None = None) -> dict[str, Any]:
    """A Deployment whose template holds these containers."""
    template = pod(*containers, labels=labels or {"app": "web"})
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {"template": {"metadata": template["metadata"], "spec": template["spec"]}},
    }


def with_container_change(workload: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A copy of a Deployment whose first container has ``fields`` set."""
    changed = copy.deepcopy(workload)
    changed["spec"]["template"]["spec"]["containers"][0].update(fields)
    return changed


def resources(requests: dict[str, str] | None = None, limits: dict[str, str] | None = None) -> dict[str, Any]:
    """A container ``resources`` field."""
    result: dict[str, Any] = {}
    if requests is not None:
        result["requests"] = requests
    if limits is not None:
        result["limits"] = limits
    return result
