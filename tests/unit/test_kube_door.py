"""The door's plumbing, without a cluster: what each call sends, and how API errors come out.

The client's transport (``ApiClient.call_api``) is replaced by a recorder; the real calls are
proven against the API server by the e2e suites (rollouts, status, admission, the chart).
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from production_policy import kube
from production_policy.engine import kinds
from production_policy.engine.names import FIELD_MANAGER


class Recorder:
    """Stands in for the HTTP transport: records each call, answers or raises as told."""

    def __init__(self, answer: Any = None, error: ApiException | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.answer, self.error = answer, error

    def __call__(
        self, resource_path: str, method: str, path_params: Any, query_params: Any, headers: Any, **kw: Any
    ) -> Any:
        call = {"path": resource_path, "method": method, "params": dict(path_params)}
        self.calls.append({**call, "query": dict(query_params), "headers": dict(headers), **kw})
        if self.error is not None:
            raise self.error
        return self.answer


def _api(recorder: Recorder) -> kube.ApiClient:
    api = client.ApiClient()
    api.call_api = recorder
    return api


def _refusal(status: int) -> ApiException:
    error = ApiException(status=status, reason="Refused")
    error.body = '{"message": "the stored value was hunter2"}'
    return error


def test_errors_are_described_without_their_body() -> None:
    assert kube.describe_error(_refusal(422)) == "HTTP 422 Refused"
    assert "hunter2" not in kube.describe_error(_refusal(422))
    assert kube.describe_error(ConnectionError("reset")) == "ConnectionError: reset"
    assert kube.is_api_error(_refusal(500)) and not kube.is_api_error(ValueError())


@pytest.mark.parametrize("kind", [kind.kind for kind in kinds.ROLLABLE])
def test_a_workload_patch_is_a_merge_patch_by_our_field_manager_to_its_kind(kind: str) -> None:
    answer = SimpleNamespace(data=json.dumps({"metadata": {"resourceVersion": "42", "generation": 7}}))
    recorder = Recorder(answer)
    patch = {"metadata": {"resourceVersion": "41", "annotations": {"a": "b"}}}
    assert kube.patch_workload(_api(recorder), kind, "shop", "web", patch) == kube.Patched("42", 7)
    (call,) = recorder.calls
    row = kinds.BY_KIND[kind]
    assert call["path"] == "/apis/{group}/{version}/namespaces/{namespace}/{plural}/{name}"
    assert call["params"] == {
        "group": row.group,
        "version": row.version,
        "namespace": "shop",
        "plural": row.plural,
        "name": "web",
    }
    assert (call["method"], call["body"], call["query"]) == ("PATCH", patch, {"fieldManager": FIELD_MANAGER})
    assert call["headers"]["Content-Type"] == "application/merge-patch+json"
    assert call["_request_timeout"] == kube.TIMEOUT


@pytest.mark.parametrize("status", [404, 409])
def test_a_workload_changed_or_gone_is_a_conflict(status: int) -> None:
    with pytest.raises(kube.Conflict):
        kube.patch_workload(_api(Recorder(error=_refusal(status))), "Deployment", "shop", "web", {})


def test_other_api_errors_pass_through_and_only_rollable_kinds_are_written() -> None:
    with pytest.raises(ApiException):
        kube.patch_workload(_api(Recorder(error=_refusal(500))), "Deployment", "shop", "web", {})
    with pytest.raises(ValueError, match="CronJob"):
        kube.patch_workload(_api(Recorder()), "CronJob", "shop", "nightly", {})


def test_a_status_patch_of_a_deleted_policy_is_gone() -> None:
    with pytest.raises(kube.Gone):
        kube.patch_status(_api(Recorder(error=_refusal(404))), "p", {"status": {}})


def test_an_expired_listing_says_so() -> None:
    with pytest.raises(kube.Expired):
        kube.list_page(_api(Recorder(error=_refusal(410))), "Secret", 50, "token", "")
    with pytest.raises(ApiException):
        kube.list_page(_api(Recorder(error=_refusal(403))), "Secret", 50, None, "")


def test_an_event_regards_its_object_and_names_our_controller() -> None:
    recorder = Recorder()
    event = kube.EventSpec.about_workload(
        "StatefulSet", "shop", "db", "uid-1", "ConfigRollout", "rolled", False, action="RollingRestart"
    )
    kube.post_event(_api(recorder), event, "controller-0")
    (call,) = recorder.calls
    body = call["body"]
    assert call["params"] == {"namespace": "shop"}
    assert body["regarding"] == {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "namespace": "shop",
        "name": "db",
        "uid": "uid-1",
    }
    assert (body["reason"], body["action"], body["type"], body["reportingInstance"]) == (
        "ConfigRollout",
        "RollingRestart",
        "Normal",
        "controller-0",
    )
    assert body["metadata"]["name"].startswith("db.")
