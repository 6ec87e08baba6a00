"""Talking to the API server the way the parity tests need: raw requests that keep the Warning headers,
server-side apply of the compiled admission policies, and knowing when the API server runs them."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from production_policy.engine.apiserver import DEFAULTS_NAME, ENFORCE_NAME, WARN_NAME
from production_policy.engine.names import FIELD_MANAGER
from production_policy.kube.admissionpolicies import Answer, warnings_of

MARKER_ANNOTATION = "parity.test/generation"
MARKER_WARNING = "parity-generation "
ENFORCE_SENTINEL = "sentinel-enforce"


def call(api: client.ApiClient, method: str, path: str, body: Any = None, **query: str) -> Answer:
    """One request; the answer whatever its status (an error is an answer too)."""
    content_type = "application/apply-patch+yaml" if method == "PATCH" else "application/json"
    try:
        response = api.call_api(
            path,
            method,
            query_params=list(query.items()),
            header_params={"Content-Type": content_type, "Accept": "application/json"},
            body=body,
            auth_settings=["BearerToken"],
            _preload_content=False,
            _return_http_data_only=False,
        )
    except ApiException as exc:
        return Answer(exc.status, json.loads(exc.body or "{}"), warnings_of(exc.headers))
    return Answer(response.status, json.loads(response.data or b"{}"), warnings_of(response.headers))


def object_path(obj: dict[str, Any], namespace: str | None = None, name: str | None = None) -> str:
    """The REST path of an object's collection (or of the object, with ``name``)."""
    group, _, version = obj["apiVersion"].rpartition("/")
    kind = obj["kind"].lower()
    plural = kind[:-1] + "ies" if kind.endswith("policy") else kind + "s"
    base = f"/apis/{group}/{version}" if group else f"/api/{version}"
    if namespace:
        base += f"/namespaces/{namespace}"
    path = f"{base}/{plural}"
    return f"{path}/{name}" if name else path


def dry_run_create(api: client.ApiClient, namespace: str, obj: dict[str, Any]) -> Answer:
    """A server-side dry-run create: the full admission chain runs, nothing is stored."""
    return call(api, "POST", object_path(obj, namespace), obj, dryRun="All")


def apply(api: client.ApiClient, obj: dict[str, Any]) -> Answer:
    """Server-side apply (field manager ``production-policy``, forced) of a cluster-scoped object."""
    answer = call(
        api,
        "PATCH",
        object_path(obj, name=obj["metadata"]["name"]),
        obj,
        fieldManager=FIELD_MANAGER,
        force="true",
    )
    if answer.status >= 400:
        raise AssertionError(
            f"apply {obj['kind']}/{obj['metadata']['name']}: {answer.status} {answer.message}"
        )
    return answer


def with_markers(objects: list[dict[str, Any]], generation: str) -> list[dict[str, Any]]:
    """The compiled objects plus a tell-tale of this generation: the MAP annotates every pod with it,
    the Warn VAP warns it on every request. A harness addition, not part of what is compared."""
    marked: list[dict[str, Any]] = json.loads(json.dumps(objects))
    for obj in marked:
        name = obj["metadata"]["name"]
        if obj["kind"] == "MutatingAdmissionPolicy" and name == DEFAULTS_NAME:
            key = MARKER_ANNOTATION.replace("/", "~1")
            obj["spec"]["mutations"].append(
                {
                    "patchType": "JSONPatch",
                    "jsonPatch": {
                        "expression": "has(object.metadata.annotations) ? "
                        f'[JSONPatch{{op: "add", path: "/metadata/annotations/{key}", '
                        f'value: "{generation}"}}] : '
                        f'[JSONPatch{{op: "add", path: "/metadata/annotations", '
                        f'value: {{"{MARKER_ANNOTATION}": "{generation}"}}}}]'
                    },
                }
            )
            # The sentinel pod always gets the tell-tale, even where the MAP's own match condition
            # (nothing to default: with no policy, say) skips every pod.
            for condition in obj["spec"].get("matchConditions", []):
                condition["expression"] = (
                    f'object.metadata.?name.orValue("") == "sentinel" || ({condition["expression"]})'
                )
        if obj["kind"] == "ValidatingAdmissionPolicy" and name == WARN_NAME:
            obj["spec"]["validations"].append({"expression": "false", "message": MARKER_WARNING + generation})
        if obj["kind"] == "ValidatingAdmissionPolicy" and name == ENFORCE_NAME:
            # The Enforce VAP is loaded on its own: only its own tell-tale says which generation it runs.
            # First, so that it is the refusal the API server reports for the sentinel.
            obj["spec"].setdefault("validations", []).insert(
                0,
                {
                    "expression": f'object.metadata.name != "{ENFORCE_SENTINEL}"',
                    "message": MARKER_WARNING + generation,
                },
            )
    return marked


def sentinels(generation_namespace: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A Pod only the MAP sees (a fake controller owner keeps the VAPs away) and a Deployment only the
    VAPs see: their answers tell which generation of the compiled objects the API server runs."""
    owned = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "sentinel",
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": "x",
                    "uid": str(uuid.uuid4()),
                    "controller": True,
                }
            ],
        },
        "spec": {"containers": [{"name": "s", "image": "example/sentinel:1"}]},
    }
    workload = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "sentinel"},
        "spec": {
            "selector": {"matchLabels": {"parity": "sentinel"}},
            "template": {
                "metadata": {"labels": {"parity": "sentinel"}},
                "spec": {"containers": [{"name": "s", "image": "example/sentinel:1"}]},
            },
        },
    }
    return owned, workload


def install(
    api: client.ApiClient, objects: list[dict[str, Any]], namespace: str, timeout: float = 30.0
) -> float:
    """Apply the compiled objects (marked) and wait until the API server runs them; the seconds that took."""
    generation = uuid.uuid4().hex[:12]
    started = time.monotonic()
    for obj in with_markers(objects, generation):
        apply(api, obj)
    pod, workload = sentinels(namespace)
    enforced = {**workload, "metadata": {"name": ENFORCE_SENTINEL}}
    # An Enforce VAP that holds no rules (no policy enforces) has no binding to tell by.
    has_enforce = any(
        obj["metadata"]["name"] == ENFORCE_NAME and "matchConditions" in obj["spec"] for obj in objects
    )
    last = ""
    while time.monotonic() - started < timeout:
        mutated = dry_run_create(api, namespace, pod)
        seen_map = (
            mutated.body.get("metadata", {}).get("annotations", {}).get(MARKER_ANNOTATION) == generation
        )
        validated = dry_run_create(api, namespace, workload)
        seen_vap = any(w.endswith(MARKER_WARNING + generation) for w in validated.warnings)
        refused = dry_run_create(api, namespace, enforced) if has_enforce else None
        seen_enforce = refused is None or MARKER_WARNING + generation in refused.message
        if seen_map and seen_vap and seen_enforce:
            return time.monotonic() - started
        last = (
            f"MAP seen: {seen_map}, Warn VAP seen: {seen_vap}, Enforce VAP seen: {seen_enforce}; "
            f"{mutated.message} / {validated.warnings}"
        )
        time.sleep(0.05)
    raise AssertionError(f"the API server did not run the compiled policies within {timeout}s: {last}")


def without_markers(answer: Answer) -> Answer:
    """The answer with the harness's tell-tales taken out."""
    annotations = answer.body.get("metadata", {}).get("annotations")
    if isinstance(annotations, dict):
        annotations.pop(MARKER_ANNOTATION, None)
        if not annotations:
            del answer.body["metadata"]["annotations"]
    answer.warnings = [w for w in answer.warnings if MARKER_WARNING not in w]
    return answer


def delete_compiled(api: client.ApiClient) -> None:
    """Delete the compiled admission policies, the canary's and their bindings: they outlive the
    operator (that is the point), and later tests must not inherit them."""
    from production_policy.engine.apiserver import POLICY_NAMES
    from production_policy.engine.apiserver.canary import CANARY_NAME

    for name in (*POLICY_NAMES, CANARY_NAME):
        for kind in (
            "ValidatingAdmissionPolicyBinding",
            "ValidatingAdmissionPolicy",
            "MutatingAdmissionPolicyBinding",
            "MutatingAdmissionPolicy",
        ):
            call(
                api,
                "DELETE",
                object_path({"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind}, name=name),
            )
