"""The door's plumbing, without a cluster: what each call sends, and how API errors come out.

The client's one seam (``ApiClient.request``) is replaced by a recorder; the real calls are proven
against the API server by the e2e suites (rollouts, status, admission, the chart, leader election).
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any, cast

import pytest

from production_policy import kube
from production_policy.engine import kinds
from production_policy.engine.names import FIELD_MANAGER
from production_policy.kube.client import Watching


class Recorder:
    """Stands in for the HTTP client: records each call, answers or raises as told."""

    def __init__(self, answer: Any = None, error: kube.ApiError | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.answer, self.error = answer, error

    def request(self, method: str, path: str, **kw: Any) -> Any:
        self.calls.append({"method": method, "path": path, **kw})
        if self.error is not None:
            raise self.error
        return self.answer


def _api(recorder: Recorder) -> kube.ApiClient:
    return cast(kube.ApiClient, recorder)


def test_errors_are_described_without_their_body() -> None:
    refusal = kube.ApiError(422, "Refused")
    assert kube.describe_error(refusal) == "HTTP 422 Refused"
    assert kube.describe_error(ConnectionError("reset")) == "ConnectionError: reset"
    assert kube.is_api_error(refusal) and not kube.is_api_error(ValueError())


@pytest.mark.parametrize("kind", [kind.kind for kind in kinds.ROLLABLE])
def test_a_workload_patch_is_a_merge_patch_by_our_field_manager_to_its_kind(kind: str) -> None:
    recorder = Recorder({"metadata": {"resourceVersion": "42", "generation": 7}})
    patch = {"metadata": {"resourceVersion": "41", "annotations": {"a": "b"}}}
    assert kube.patch_workload(_api(recorder), kind, "shop", "web", patch) == kube.Patched("42", 7)
    (call,) = recorder.calls
    row = kinds.BY_KIND[kind]
    assert call["path"] == f"/apis/{row.group}/{row.version}/namespaces/shop/{row.plural}/web"
    assert (call["method"], call["body"], call["query"]) == ("PATCH", patch, {"fieldManager": FIELD_MANAGER})
    assert call["content_type"] == "application/merge-patch+json"


def test_names_are_quoted_into_paths() -> None:
    recorder = Recorder({"metadata": {"resourceVersion": "1"}})
    kube.patch_workload(_api(recorder), "Deployment", "shop", "web/../../x?y", {})
    assert recorder.calls[0]["path"].endswith("/deployments/web%2F..%2F..%2Fx%3Fy")


@pytest.mark.parametrize("status", [404, 409])
def test_a_workload_changed_or_gone_is_a_conflict(status: int) -> None:
    with pytest.raises(kube.Conflict):
        kube.patch_workload(_api(Recorder(error=kube.ApiError(status, "x"))), "Deployment", "shop", "web", {})


def test_other_api_errors_pass_through_and_only_rollable_kinds_are_written() -> None:
    with pytest.raises(kube.ApiError):
        kube.patch_workload(_api(Recorder(error=kube.ApiError(500, "x"))), "Deployment", "shop", "web", {})
    with pytest.raises(ValueError, match="CronJob"):
        kube.patch_workload(_api(Recorder()), "CronJob", "shop", "nightly", {})


def test_a_status_patch_of_a_deleted_policy_is_gone() -> None:
    with pytest.raises(kube.Gone):
        kube.patch_status(_api(Recorder(error=kube.ApiError(404, "x"))), "p", {"status": {}})


def test_an_expired_listing_says_so() -> None:
    with pytest.raises(kube.Expired):
        kube.list_page(_api(Recorder(error=kube.ApiError(410, "Gone"))), "Secret", 50, "token", "")
    with pytest.raises(kube.ApiError):
        kube.list_page(_api(Recorder(error=kube.ApiError(403, "x"))), "Secret", 50, None, "")


def test_a_listing_page_asks_for_its_page() -> None:
    recorder = Recorder({"items": [], "metadata": {}})
    kube.list_page(_api(recorder), "ConfigMap", 50, "next", "metadata.namespace!=kube-system")
    (call,) = recorder.calls
    assert call["path"] == "/api/v1/configmaps"
    assert call["query"] == {
        "limit": "50",
        "continue": "next",
        "fieldSelector": "metadata.namespace!=kube-system",
    }


class Lines:
    """A streamed response: the given bytes in awkward chunks."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.released = False

    def stream(self, _amount: int) -> Any:
        yield from (self.data[i : i + 7] for i in range(0, len(self.data), 7))

    def release_conn(self) -> None:
        self.released = True


def test_a_watch_yields_each_event_and_an_expired_one_says_so() -> None:
    events = [
        {"type": "ADDED", "object": {"metadata": {"name": "a"}}},
        {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "9"}}},
    ]
    data = b"".join(json.dumps(e).encode() + b"\n" for e in events)
    response = Lines(
        data + b'{"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired"}}\n'
    )
    watching = Watching(cast(Any, response))
    seen = []
    with pytest.raises(kube.Expired):
        for event in watching:
            seen.append(event)
    assert seen == [(e["type"], e["object"]) for e in events]
    assert response.released


def test_an_event_regards_its_object_and_names_our_controller() -> None:
    recorder = Recorder()
    event = kube.EventSpec.about_workload(
        "StatefulSet", "shop", "db", "uid-1", "ConfigRollout", "rolled", False, action="RollingRestart"
    )
    kube.post_event(_api(recorder), event, "controller-0")
    (call,) = recorder.calls
    body = call["body"]
    assert call["path"] == "/apis/events.k8s.io/v1/namespaces/shop/events"
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


def test_the_long_running_processes_never_load_an_optional_client() -> None:
    """kopf would import every model class of ``kubernetes.client`` (some 40 MiB), and pykube with
    requests (8 MiB), if let."""
    code = (
        "import sys\n"
        "from production_policy import processes\n"
        "processes.import_kopf()\n"
        "import production_policy.processes.controller, production_policy.processes.webhook\n"
        "import production_policy.processes.dev\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('kubernetes', 'pykube', 'requests')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout


def test_a_write_not_answered_in_time_is_told_from_a_refusal() -> None:
    import urllib3

    read = urllib3.exceptions.ReadTimeoutError(None, "/x", "read timed out")  # type: ignore[arg-type]
    assert kube.timed_out(read)
    assert kube.timed_out(urllib3.exceptions.MaxRetryError(None, "/x", read))  # type: ignore[arg-type]
    assert not kube.timed_out(urllib3.exceptions.MaxRetryError(None, "/x", OSError("refused")))  # type: ignore[arg-type]
    assert not kube.timed_out(ValueError("no"))
    assert kube.timed_out(answer=kube.Answer(504, {"message": "Timeout: request did not complete"}))
    assert not kube.timed_out(answer=kube.Answer(422, {"message": "bad CEL"}))
