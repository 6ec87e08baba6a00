"""The admission server's failure modes: every answer is a valid AdmissionReview or a 4xx."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from production_policy.admission import review, server
from production_policy.processes.clusterview import ClusterView
from tests.support.engine import pod, policy_dict


def _review_of(
    obj: dict[str, Any], kind: str = "Pod", operation: review.Operation = "CREATE"
) -> review.Review:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "u-1",
            "kind": {"group": "", "version": "v1", "kind": kind},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "operation": operation,
            "namespace": "shop",
            "name": "p",
            "object": obj,
            "userInfo": {"username": "alice"},
            "dryRun": False,
        },
    }


def _with_client(
    test: Callable[[TestClient[Any, Any]], Awaitable[None]], view: ClusterView | None = None
) -> None:
    async def main() -> None:
        client = TestClient(TestServer(server.build_app(view or ClusterView())))
        await client.start_server()
        try:
            await test(client)
        finally:
            await client.close()

    asyncio.run(main())


def test_an_unknown_path_is_refused_not_admitted() -> None:
    async def test(client: TestClient[Any, Any]) -> None:
        answer = await client.post("/mutate-everything", json=_review_of({"metadata": {}}))
        body = await answer.json()
        assert answer.status == 200
        assert body["response"] == {
            "uid": "u-1",
            "allowed": False,
            "status": {
                "code": 404,
                "reason": "NotFound",
                "message": "path /mutate-everything is not served by production-policy",
            },
        }

    _with_client(test)


def test_a_body_that_is_not_json_gets_400() -> None:
    async def test(client: TestClient[Any, Any]) -> None:
        answer = await client.post("/validate-pods", data=b"\xff{not json")
        assert answer.status == 400

    _with_client(test)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ([], "not a JSON object"),
        ({"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1"}, "request is missing"),
        ({**_review_of({}), "apiVersion": "admission.k8s.io/v1beta1"}, "apiVersion must be"),
        ({**_review_of({}), "kind": "Pod"}, "kind must be AdmissionReview"),
        (_review_of({}, operation="PATCH"), "request.operation 'PATCH'"),  # type: ignore[arg-type]
        (_review_of("not an object"), "request.object is missing"),  # type: ignore[arg-type]
        (_review_of({}, operation="UPDATE"), "request.oldObject is missing"),
    ],
)
def test_a_malformed_review_gets_a_valid_denial(body: Any, problem: str) -> None:
    async def test(client: TestClient[Any, Any]) -> None:
        answer = await client.post("/validate-pods", data=json.dumps(body))
        assert answer.status == 200
        reply = await answer.json()
        assert reply["apiVersion"] == "admission.k8s.io/v1" and reply["kind"] == "AdmissionReview"
        assert reply["response"]["allowed"] is False
        assert reply["response"]["status"]["code"] == 400
        assert problem in reply["response"]["status"]["message"]

    _with_client(test)


def test_readiness_waits_for_the_initial_sync() -> None:
    view = ClusterView()

    async def test(client: TestClient[Any, Any]) -> None:
        assert (await client.get("/healthz")).status == 200
        assert (await client.get("/readyz")).status == 503
        view.synced = True
        assert (await client.get("/readyz")).status == 200

    _with_client(test, view)


def test_allow_encodes_a_json_patch() -> None:
    patch = [{"op": "add", "path": "/metadata/annotations", "value": {"a": "b"}}]
    answer = review.allow("u", patch=patch, warnings=["w"])["response"]
    assert json.loads(base64.b64decode(answer["patch"])) == patch
    assert answer["patchType"] == "JSONPatch"
    assert answer["warnings"] == ["w"]


def test_a_denial_names_the_enforce_violations_and_warns_of_the_warn_ones() -> None:
    view = ClusterView()
    rule = {"probes": {"readiness": {"required": True}}}
    for name, enforcement in (("enforce", "Enforce"), ("warn", "Warn")):
        view.put_policy(policy_dict(name, enforcement=enforcement, **rule))

    async def test(client: TestClient[Any, Any]) -> None:
        answer = await client.post("/validate-pods", json=_review_of(pod()))
        assert (await answer.json())["response"] == {
            "uid": "u-1",
            "allowed": False,
            "status": {
                "code": 403,
                "reason": "Forbidden",
                "message": 'production policy "enforce" (Enforce): container "app": no readinessProbe'
                " — add a readinessProbe",
            },
            "warnings": [
                'production policy "warn" (Warn): container "app": no readinessProbe — add a readinessProbe'
            ],
        }

    _with_client(test, view)


def test_uid_of_survives_any_shape() -> None:
    assert review.uid_of({"request": {"uid": "abc"}}) == "abc"
    shapes: list[object] = [None, [], "x", {"request": []}, {"request": {"uid": 5}}]
    for shape in shapes:
        assert review.uid_of(shape) == ""
