"""The calls the compiled admission policies need: server-side apply, a dry-run create, a status read.

(Error answers are returned whole here, Status body included: the API server's message says which
expression of a compiled policy it refused, and these objects hold no user data.)

Raw requests whose answers keep the response's Warning headers (the API server's answer to a dry
run, and its type-check findings). Blocking; run them in a worker thread.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import urllib3

from production_policy.engine.names import FIELD_MANAGER
from production_policy.kube.client import TIMEOUT, ApiClient

ADMISSION_API = "/apis/admissionregistration.k8s.io/v1"
_WARNING = re.compile(r'^\d{3} \S+ "(?P<text>(?:[^"\\]|\\.)*)"')


@dataclass
class Answer:
    """The API server's answer: HTTP status, the object (or a Status), the warnings it sent."""

    status: int
    body: dict[str, Any]
    warnings: list[str] = field(default_factory=list)

    @property
    def message(self) -> str:
        """The Status message of an error answer ("" otherwise)."""
        return str(self.body.get("message", "")) if self.status >= 400 else ""


def warnings_of(headers: Any) -> list[str]:
    """The texts of the ``Warning`` headers (RFC 7234: ``299 - "text"``)."""
    texts = []
    for value in headers.getlist("Warning") if hasattr(headers, "getlist") else []:
        value = value.encode("latin-1").decode("utf-8", errors="replace")  # http.client decodes latin-1
        match = _WARNING.match(value)
        texts.append(re.sub(r"\\(.)", r"\1", match["text"]) if match else value)
    return texts


APPLY_TIMEOUT = 60.0
"""Seconds for a write of a compiled admission policy: the API server compiles every CEL expression
of the object before it answers, which on a loaded machine takes far longer than a plain write (a
timeout would only make the controller send it again, and the API server compile it again)."""


def timed_out(exc: BaseException | None = None, answer: Answer | None = None) -> bool:
    """Whether a call failed for want of an answer in time: our read timeout (urllib3's, raised
    as it is or inside a MaxRetryError), or the API server's own request timeout (HTTP 504)."""
    if answer is not None:
        return answer.status == 504
    reason = exc.reason if isinstance(exc, urllib3.exceptions.MaxRetryError) else exc
    return isinstance(reason, urllib3.exceptions.TimeoutError | TimeoutError)


def call(
    api: ApiClient,
    method: str,
    path: str,
    body: Any = None,
    timeout: float = TIMEOUT,
    content_type: str = "",
    **query: str,
) -> Answer:
    """One request; an error status is an answer too (network errors raise). A PATCH is a
    server-side apply unless ``content_type`` says otherwise."""
    content_type = content_type or (
        "application/apply-patch+yaml" if method == "PATCH" else "application/json"
    )
    response = api.exchange(method, path, query=query, body=body, content_type=content_type, timeout=timeout)
    try:
        decoded = json.loads(response.data or b"{}")
    except ValueError:
        decoded = {"message": str(response.reason)}
    return Answer(
        response.status, decoded if isinstance(decoded, dict) else {}, warnings_of(response.headers)
    )


def plural(kind: str) -> str:
    """The resource of an admission kind: MutatingAdmissionPolicy -> mutatingadmissionpolicies."""
    lowered = kind.lower()
    return lowered[:-1] + "ies" if lowered.endswith("policy") else lowered + "s"


def apply_admission_object(api: ApiClient, obj: Mapping[str, Any]) -> Answer:
    """Server-side apply of a compiled object with our field manager (forced: the fields are ours)."""
    name = obj["metadata"]["name"]
    return call(
        api,
        "PATCH",
        f"{ADMISSION_API}/{plural(obj['kind'])}/{name}",
        dict(obj),
        timeout=APPLY_TIMEOUT,
        fieldManager=FIELD_MANAGER,
        force="true",
    )


def read_admission_object(api: ApiClient, kind: str, name: str) -> Answer:
    """The admission object as the API server holds it (404 when absent)."""
    return call(api, "GET", f"{ADMISSION_API}/{plural(kind)}/{name}")


def set_managed_fields(
    api: ApiClient, live: Mapping[str, Any], managed_fields: list[dict[str, Any]]
) -> Answer:
    """Replace the object's ``managedFields`` (who owns which field), if it is still at the live
    ``resourceVersion`` (else 409): a write of nothing else, by our field manager."""
    metadata = live["metadata"]
    patch = {"metadata": {"resourceVersion": metadata["resourceVersion"], "managedFields": managed_fields}}
    return call(
        api,
        "PATCH",
        f"{ADMISSION_API}/{plural(live['kind'])}/{metadata['name']}",
        patch,
        timeout=APPLY_TIMEOUT,
        content_type="application/merge-patch+json",
        fieldManager=FIELD_MANAGER,
    )


def dry_run_create(api: ApiClient, namespace: str, obj: Mapping[str, Any]) -> Answer:
    """A server-side dry-run create of a namespaced object: admission runs, nothing is stored."""
    group_version = obj["apiVersion"]
    base = f"/apis/{group_version}" if "/" in group_version else f"/api/{group_version}"
    resource = obj["kind"].lower() + "s"
    return call(api, "POST", f"{base}/namespaces/{namespace}/{resource}", dict(obj), dryRun="All")


def type_warnings(api: ApiClient, name: str) -> tuple[bool, list[str]]:
    """(checked, warnings) of a ValidatingAdmissionPolicy's ``status.typeChecking``: checked once
    kube-controller-manager has type-checked its current generation."""
    answer = call(api, "GET", f"{ADMISSION_API}/validatingadmissionpolicies/{name}")
    if answer.status >= 400:
        return False, []
    generation = answer.body.get("metadata", {}).get("generation")
    status = answer.body.get("status") or {}
    checked = status.get("observedGeneration") == generation
    found = (status.get("typeChecking") or {}).get("expressionWarnings") or []
    return checked, [f"{w.get('fieldRef')}: {w.get('warning')}" for w in found if isinstance(w, dict)]
