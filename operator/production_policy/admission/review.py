"""AdmissionReview in, AdmissionReview out: the wire format, and nothing else.

Every answer is a valid ``admission.k8s.io/v1`` AdmissionReview, whatever came in: a body that
is JSON but not a review gets a denial that says what is wrong, so the API server (or a person
with curl) always learns why, and nothing is ever admitted by accident.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Literal, NotRequired, TypedDict

from production_policy.admission import wire

API_VERSION = "admission.k8s.io/v1"

Operation = Literal["CREATE", "UPDATE", "DELETE", "CONNECT"]
Decision = Literal["admitted", "warned", "denied", "malformed"]


class GroupVersionKind(TypedDict):
    """``request.kind`` (and ``requestKind``)."""

    group: str
    version: str
    kind: str


class GroupVersionResource(TypedDict):
    """``request.resource`` (and ``requestResource``)."""

    group: str
    version: str
    resource: str


class Request(TypedDict):
    """``request`` of an AdmissionReview, as the API server sends it (the parts we read, and more)."""

    uid: str
    kind: GroupVersionKind
    resource: NotRequired[GroupVersionResource]
    subResource: NotRequired[str]
    operation: Operation
    namespace: NotRequired[str]
    name: NotRequired[str]
    object: NotRequired[dict[str, Any] | None]
    oldObject: NotRequired[dict[str, Any] | None]
    dryRun: NotRequired[bool]
    userInfo: NotRequired[dict[str, Any]]
    options: NotRequired[dict[str, Any] | None]


class Review(TypedDict):
    """An incoming ``admission.k8s.io/v1`` AdmissionReview: the shape :func:`parse` checks."""

    apiVersion: str
    kind: Literal["AdmissionReview"]
    request: Request


class Status(TypedDict):
    """``response.status``: why a request is refused."""

    code: int
    reason: str
    message: str


class Response(TypedDict):
    """``response`` of the AdmissionReview we answer."""

    uid: str
    allowed: bool
    patchType: NotRequired[Literal["JSONPatch"]]
    patch: NotRequired[str]
    """The RFC 6902 patch, JSON then base64."""
    warnings: NotRequired[list[str]]
    status: NotRequired[Status]


class Answer(TypedDict):
    """The AdmissionReview we answer with."""

    apiVersion: str
    kind: Literal["AdmissionReview"]
    response: Response


class MalformedReview(ValueError):
    """The body is JSON, but not an AdmissionReview we can decide on."""


@dataclass(frozen=True)
class ReviewRequest:
    """The parts of an AdmissionReview request that a decision needs."""

    uid: str
    kind: str
    operation: Operation
    namespace: str
    name: str
    obj: dict[str, Any]
    old_obj: dict[str, Any] | None
    dry_run: bool


def uid_of(review: object) -> str:
    """The request uid, if there is one, so even a refusal can be matched to its request."""
    if isinstance(review, dict):
        request = review.get("request")
        if isinstance(request, dict) and isinstance(request.get("uid"), str):
            return str(request["uid"])
    return ""


def parse(review: object) -> ReviewRequest:
    """Check the shape of an AdmissionReview and pull out what the handlers use."""
    if not isinstance(review, dict):
        raise MalformedReview("the body is not a JSON object")
    if review.get("kind") != "AdmissionReview":
        raise MalformedReview(f"kind must be AdmissionReview, not {review.get('kind')!r}")
    if review.get("apiVersion") != API_VERSION:
        raise MalformedReview(f"apiVersion must be {API_VERSION}, not {review.get('apiVersion')!r}")
    request = review.get("request")
    if not isinstance(request, dict):
        raise MalformedReview("request is missing or not an object")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        raise MalformedReview("request.uid is missing")
    kind = request.get("kind")
    if not isinstance(kind, dict) or not isinstance(kind.get("kind"), str):
        raise MalformedReview("request.kind.kind is missing")
    operation = request.get("operation")
    if operation not in ("CREATE", "UPDATE", "DELETE", "CONNECT"):
        raise MalformedReview(f"request.operation {operation!r} is not CREATE, UPDATE, DELETE or CONNECT")
    obj = request.get("object")
    old_obj = request.get("oldObject")
    if operation in ("CREATE", "UPDATE") and not isinstance(obj, dict):
        raise MalformedReview("request.object is missing or not an object")
    if operation == "UPDATE" and not isinstance(old_obj, dict):
        raise MalformedReview("request.oldObject is missing or not an object")
    namespace = request.get("namespace") or ""
    name = request.get("name") or ""
    if not isinstance(namespace, str) or not isinstance(name, str):
        raise MalformedReview("request.namespace and request.name must be strings")
    dry_run = request.get("dryRun", False)
    if not isinstance(dry_run, bool):
        raise MalformedReview("request.dryRun must be a boolean")
    return ReviewRequest(
        uid=uid,
        kind=kind["kind"],
        operation=operation,
        namespace=namespace,
        name=name,
        obj=obj if isinstance(obj, dict) else {},
        old_obj=old_obj if isinstance(old_obj, dict) else None,
        dry_run=dry_run,
    )


def _review(response: Response) -> Answer:
    return {"apiVersion": API_VERSION, "kind": "AdmissionReview", "response": response}


def allow(uid: str, patch: list[dict[str, Any]] | None = None, warnings: list[str] | None = None) -> Answer:
    """Admit, with an optional RFC 6902 patch and admission warnings (which kubectl prints)."""
    response: Response = {"uid": uid, "allowed": True}
    if patch:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(wire.encode(patch)).decode()
    if warnings:
        response["warnings"] = list(warnings)
    return _review(response)


def deny(
    uid: str, message: str, code: int = 403, reason: str = "Forbidden", warnings: list[str] | None = None
) -> Answer:
    """Refuse, with the message the user will see, and warnings, which the API server passes on with
    the refusal."""
    response: Response = {
        "uid": uid,
        "allowed": False,
        "status": {"code": code, "reason": reason, "message": message},
    }
    if warnings:
        response["warnings"] = list(warnings)
    return _review(response)


def decision(answer: Answer | None) -> Decision:
    """What an answer decided, as the log and the metrics name it; ``malformed``: no review answered."""
    if answer is None:
        return "malformed"
    response = answer["response"]
    if not response["allowed"]:
        return "denied"
    return "warned" if response.get("warnings") else "admitted"
